"""The model registry: every model a token may name, pinned to exact weights.

A model's numeric ``code`` is written into tokens and must never be reused. Models that
share a ``latent_space`` decode each other's tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import CodecError, InvalidToken
from .base import LatentAutoencoder
from .weights import WeightFile


@dataclass(frozen=True)
class ModelSpec:
    """What the codec knows about one model."""

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
    """Names of every registered model."""
    return sorted(_SPECS)


def get_spec(name: str) -> ModelSpec:
    """The spec for a model name, or CodecError."""
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
    """The model, built and loaded once per process (thread-safe), in inference mode."""
    model = _LOADED.get(name)
    if model is not None:
        return model
    spec = get_spec(name)
    with _LOCK:
        model = _LOADED.get(name)
        if model is None:
            model = spec.build(spec)
            _LOADED[name] = model
    return model


def unload_all() -> None:
    """Forget loaded models (tests; after changing settings)."""
    with _LOCK:
        _LOADED.clear()
