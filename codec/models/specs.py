"""Registry machinery: the model spec, registration, look-up, and loading once per process.

The model entries themselves are in ``codec.models.registry``. A model's numeric ``code`` is
written into tokens and must never be reused. Models that share a ``latent_space`` decode
each other's tokens.

Loading (``load``) uses local files only, so a web request never downloads weights: a model
that is not on disk raises ModelUnavailable at once, with a plain message (the details, which
may name files and the model hub, are the exception's ``__cause__`` and are logged).
Downloading is ``fetch``: the explicit ``python -m codec fetch <model>`` command.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import CodecError, InvalidToken, ModelUnavailable
from . import weights
from .base import LatentAutoencoder, device
from .weights import WeightFile

log = logging.getLogger("codec.models")


@dataclass(frozen=True)
class ModelSpec:
    """What the codec knows about one model.

    ``build(spec)`` makes the model from local files. It may carry two optional methods:
    ``build.fetch(spec)`` (make it, downloading what is missing) and ``build.is_local(spec)``
    (are its files on disk?); without them every file in ``files`` is fetched from its URL.
    """

    name: str
    code: int
    latent_space: str
    latent_channels: int
    downscale: int
    build: Callable[["ModelSpec"], LatentAutoencoder] = field(repr=False)
    files: tuple[WeightFile, ...] = ()
    #: Relative decoder sensitivity per latent channel; quantisation steps scale as 1/sqrt(weight);
    #: the encoder's choice only: the token carries the steps it used.
    step_weights: tuple[float, ...] | None = None
    #: Version 2 (``klt-rc``) channel transform: (file in codec/models/, its sha256), or None
    #: when the model has no v2 format. Part of the token format: never change a pinned file.
    klt: tuple[str, str] | None = None
    #: Version 2 ``klt-ctx`` context model (codec/klt_ctx.py): (file in codec/models/, its
    #: sha256), or None. Part of the token format: never change a pinned file.
    ctx: tuple[str, str] | None = None
    description: str = ""


_SPECS: dict[str, ModelSpec] = {}
_LOADED: dict[str, LatentAutoencoder] = {}
_LOCK = threading.Lock()


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model to the registry (its name and code must be new)."""
    for other in _SPECS.values():
        if other.code == spec.code and other.name != spec.name:
            raise ValueError(f"model code {spec.code} already belongs to {other.name}")
    _SPECS[spec.name] = spec
    return spec


def available_models() -> list[str]:
    """Names of every registered model (whether or not its weights are on this machine)."""
    return sorted(_SPECS)


def get_spec(name: str) -> ModelSpec:
    """The spec for a model name, or CodecError."""
    if not isinstance(name, str):
        raise CodecError(f"a model name is text, not {name!r}")
    try:
        return _SPECS[name]
    except KeyError:
        raise CodecError(f"unknown model {name!r}; available: {', '.join(available_models())}") from None


def spec_for_code(code: int) -> ModelSpec:
    """The spec for a model code read from a token, or InvalidToken."""
    for spec in _SPECS.values():
        if spec.code == code:
            return spec
    raise InvalidToken(f"the token names an unknown model (code {code})")


def load(name: str) -> LatentAutoencoder:
    """The model, built from local files once per process (thread-safe), in inference mode.

    Never downloads. ModelUnavailable's message is plain; details are in ``__cause__``.
    """
    spec = get_spec(name)
    device()  # ModelUnavailable, with its own message, for a device this server does not have
    model = _LOADED.get(name)
    if model is not None:
        return model
    with _LOCK:
        model = _LOADED.get(name)
        if model is None:
            model = _plain_errors(spec, spec.build)
            _LOADED[name] = model
    return model


def fetch(name: str) -> LatentAutoencoder:
    """Download what is missing (pinned URLs / hub revisions), verify, and load the model.

    For operators (``python -m codec fetch``): messages say where files come from and go.
    """
    spec = get_spec(name)
    with _LOCK:
        model = _LOADED.get(name)
        if model is None:
            fetcher = getattr(spec.build, "fetch", None)
            if fetcher is not None:
                model = fetcher(spec)
            else:
                for file in spec.files:
                    weights.fetch(spec.name, file)
                model = spec.build(spec)
            _LOADED[name] = model
    return model


def is_available(name: str) -> bool:
    """Whether the model is loaded or its files are on disk, and its device is there (fast: no
    hashing, no network)."""
    spec = get_spec(name)
    try:
        device()
    except ModelUnavailable:
        return False
    if name in _LOADED:
        return True
    is_local = getattr(spec.build, "is_local", None)
    if is_local is not None:
        return bool(is_local(spec))
    return all(weights.local_path(spec.name, file) is not None for file in spec.files)


def _plain_errors(spec: ModelSpec, build: Callable[[ModelSpec], LatentAutoencoder]) -> LatentAutoencoder:
    try:
        return build(spec)
    except ModelUnavailable as exc:
        log.warning("model %s unavailable: %s", spec.name, exc)
        raise ModelUnavailable(f"weights for model {spec.name!r} are missing or unusable on this server") from exc


def unload_all() -> None:
    """Forget loaded models (tests; after changing settings)."""
    with _LOCK:
        _LOADED.clear()
