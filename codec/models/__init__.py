"""Models the codec can run. Entries: ``registry``; machinery: ``specs``; weights: ``weights``."""

from . import registry, specs, weights
from .registry import (
    SD_VAE_FT_MSE_SPEC, TAEF2_SPEC, TAESD_SPEC, ModelSpec, _diffusers_builder, available_models, fetch, get_spec,
    is_available, load, register, spec_for_code,
)

__all__ = [
    "SD_VAE_FT_MSE_SPEC", "TAEF2_SPEC", "TAESD_SPEC", "ModelSpec", "_diffusers_builder", "available_models", "fetch",
    "get_spec", "is_available", "load", "register", "registry", "spec_for_code", "specs", "weights",
]  # fmt: skip
