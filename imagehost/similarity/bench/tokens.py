"""Token round trips (``codec.decode(codec.encode(png).token)``) cached on disk.

Encoding a Kodak image takes seconds, so each result is kept under the cache folder,
named by the sha256 of the PNG that was encoded (one folder per ``refine_steps``); a rerun only encodes what is missing,
and ``budget_s`` stops a run early so each piece stays short (run it again to go on).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from PIL import Image

from .variants import png_bytes


class TokenCache:
    """Encoded tokens and their decoded pictures, keyed by the source PNG's sha256."""

    def __init__(self, folder: Path, refine_steps: int | None = None) -> None:
        self.refine_steps = refine_steps  # None: the codec's default
        self.folder = folder / f"refine-{'default' if refine_steps is None else refine_steps}"
        self.folder.mkdir(parents=True, exist_ok=True)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.json", self.folder / f"{key}.png"

    def round_trip(self, image: Image.Image, *, encode: bool = True) -> Image.Image | None:
        """The image as its token decodes; None when not cached and ``encode`` is false."""
        data = png_bytes(image)
        key = hashlib.sha256(data).hexdigest()
        meta_path, png_path = self._paths(key)
        if png_path.exists() and meta_path.exists():
            return Image.open(png_path).convert("RGB")
        if not encode:
            return None
        import codec

        started = time.perf_counter()
        result = codec.encode(data, refine_steps=self.refine_steps)
        encode_s = time.perf_counter() - started
        decoded = codec.decode(result.token)
        decoded.save(png_path, format="PNG")
        meta = {"chars": result.chars, "model": result.model, "encode_s": round(encode_s, 2)}
        meta_path.write_text(json.dumps(meta))
        return decoded

    def token_chars(self, image: Image.Image) -> int | None:
        """Length of the cached token of ``image``, or None."""
        meta_path, _ = self._paths(hashlib.sha256(png_bytes(image)).hexdigest())
        return json.loads(meta_path.read_text())["chars"] if meta_path.exists() else None
