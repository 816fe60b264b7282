"""The interface every model adapter implements, and the process-wide torch settings."""

from __future__ import annotations

import threading
from typing import Protocol

import torch

from .. import environment
from ..environment import ConfigurationError
from ..errors import ModelUnavailable

_SETUP_LOCK = threading.Lock()
_SETUP_DONE = False


def device() -> torch.device:
    """The torch device models run on (``EMMM_DEVICE``, default ``cpu``); ModelUnavailable
    when it names no device this torch build and machine have (``gpu``, ``cuda`` on a CPU
    build), so that the site answers 503 and its health check says so, not 500s."""
    try:
        name = environment.value("EMMM_DEVICE")
    except ConfigurationError as exc:
        raise ModelUnavailable(str(exc)) from exc
    try:
        chosen = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ModelUnavailable(f"EMMM_DEVICE={name!r} is not a torch device (cpu, cuda, cuda:<n>, mps)") from exc
    backend = {"cuda": torch.cuda, "mps": getattr(torch.backends, "mps", None), "xpu": getattr(torch, "xpu", None)}.get(chosen.type)
    if chosen.type != "cpu" and (backend is None or not backend.is_available()):
        raise ModelUnavailable(f"EMMM_DEVICE={name!r}: this machine or torch build has no {chosen.type} device")
    if chosen.index is not None and hasattr(backend, "device_count") and chosen.index >= backend.device_count():
        raise ModelUnavailable(f"EMMM_DEVICE={name!r}: this machine has {backend.device_count()} {chosen.type} device(s)")
    return chosen


def configure_torch() -> None:
    """Apply ``EMMM_TORCH_THREADS`` once per process."""
    global _SETUP_DONE
    with _SETUP_LOCK:
        if _SETUP_DONE:
            return
        threads = environment.value("EMMM_TORCH_THREADS")
        if threads:
            torch.set_num_threads(threads)
        _SETUP_DONE = True


class LatentAutoencoder(Protocol):
    """An image autoencoder in the codec's conventions.

    Images are float tensors (N, 3, H, W) in [0, 1] with H, W multiples of ``downscale``;
    latents are (N, C, H/downscale, W/downscale) in the model family's canonical latent
    space (for Stable Diffusion VAEs: the mean scaled by ``scaling_factor``).
    """

    latent_channels: int
    downscale: int

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [0, 1]. Must be differentiable (latent refinement)."""
        ...
