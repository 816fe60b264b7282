"""Finding, downloading and verifying pinned weight files.

Lookup order for ``<model>/<file>``: ``$EMMM_MODEL_DIR``, then the download cache
(``$EMMM_MODEL_CACHE``, default ``~/.cache/emmmbedding/models``). ``resolve`` looks only
there (what loading a model uses: a request never downloads); ``fetch`` (the explicit
``python -m codec fetch`` command) also downloads from the file's pinned URL into the cache.
Every file is checked against its sha256.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .. import environment
from ..errors import ModelUnavailable

DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class WeightFile:
    """One pinned file: where it lives relative to the model folder, its hash and origin."""

    name: str
    sha256: str
    url: str | None = None


def model_dir() -> Path | None:
    """``$EMMM_MODEL_DIR`` if set."""
    value = os.environ.get("EMMM_MODEL_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """``$EMMM_MODEL_CACHE`` or ``~/.cache/emmmbedding/models``."""
    value = os.environ.get("EMMM_MODEL_CACHE")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "emmmbedding" / "models"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, file: WeightFile) -> Path:
    actual = sha256_of(path)
    if actual != file.sha256:
        raise ModelUnavailable(
            f"{path} has sha256 {actual}, expected {file.sha256}: wrong or corrupted weights"
        )
    return path


def local_path(model: str, file: WeightFile) -> Path | None:
    """Where the file lies locally (model folder first, then the cache), unverified; or None."""
    base = model_dir()
    if base is not None and (base / model / file.name).is_file():
        return base / model / file.name
    cached = cache_dir() / model / file.name
    return cached if cached.is_file() else None


def resolve(model: str, file: WeightFile) -> Path:
    """A verified local path for the file; never downloads (see ``fetch``)."""
    path = local_path(model, file)
    if path is None:
        raise ModelUnavailable(_missing_message(model, file, reason=f"not fetched: run python -m codec fetch {model}"))
    return _verify(path, file)


def fetch(model: str, file: WeightFile) -> Path:
    """A verified local path for the file, downloading it into the cache if needed."""
    path = local_path(model, file)
    if path is not None:
        return _verify(path, file)
    if file.url is None or environment.switch("EMMM_OFFLINE"):
        raise ModelUnavailable(_missing_message(model, file, reason="no download allowed"))
    return _download(model, file, cache_dir() / model / file.name)


def _download(model: str, file: WeightFile, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{file.name}.")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(file.url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        actual = sha256_of(tmp)
        if actual != file.sha256:
            raise ModelUnavailable(
                f"the file downloaded from {file.url} has sha256 {actual}, expected {file.sha256}:"
                f" refusing it. Put a verified {file.name} at $EMMM_MODEL_DIR/{model}/{file.name}"
            )
        os.replace(tmp, target)
        return target
    except ModelUnavailable:
        raise
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
        raise ModelUnavailable(_missing_message(model, file, reason=f"download failed: {exc}")) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _missing_message(model: str, file: WeightFile, *, reason: str) -> str:
    where = f"$EMMM_MODEL_DIR/{model}/{file.name}"
    origin = f" (from {file.url})" if file.url else ""
    return (
        f"weights for model {model!r} are missing ({reason}). Put {file.name}{origin} "
        f"with sha256 {file.sha256} at {where}, or in {cache_dir() / model}/"
    )
