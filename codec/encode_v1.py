"""Token version 1 encoder (``gauss-rc``): kept for the tests, the benchmark and
``kind="vae-v1"``; every v1 token ever issued keeps decoding (core.decode)."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from . import environment, packing, token
from .models.base import LatentAutoencoder, device

#: Global quantisation step for the default quality (per-channel steps scale it). Chosen on
#: Kodak (24 images, long side 316, REFINE_STEPS=8): the coarsest STEP_LADDER entry whose mean
#: PSNR is at least the original project's webp8 packing's (4467: +0.18 dB at 0.356x its
#: characters; the next entry, 4871, is -0.17 dB). See docs/benchmarks-tuning.md.
DEFAULT_STEP_UNITS = environment.value("EMMM_STEP_UNITS")
#: Base step ladder searched by rate control: 2 ** (i / 8 - 6) for i < 80, finest first.
STEP_LADDER = tuple(round(packing.STEP_UNIT * 2 ** (i / 8 - 6)) for i in range(80))
#: Coarsest step rate control uses before it encodes a smaller image instead: past the
#: default step, a downscaled image looks better for the same characters (measured on Kodak).
MAX_STEP_UNITS = DEFAULT_STEP_UNITS
#: Latent refinement: Adam steps on the latent through the decoder (0 disables). 8 rather
#: than 5: about 4% fewer characters at equal PSNR for about 1.5x the encode time (decoding
#: is unaffected); 3 needs a finer step than 4096 to match webp8 (docs/benchmarks-tuning.md).
REFINE_STEPS = environment.value("EMMM_REFINE_STEPS")
REFINE_LR = 0.05
#: Refinement needs decoder activations for backprop; above this many pixels it is skipped.
REFINE_MAX_PIXELS = environment.value("EMMM_REFINE_MAX_PIXELS")
#: Each rate-control downscale shrinks both sides by this factor.
DOWNSCALE_FACTOR = 0.8


def encode(rgb: Image.Image, spec, net: LatentAutoencoder, max_chars: int | None, refine_steps: int | None, *, next_size) -> str:
    """A version 1 token: fixed default step (or the finest that fits ``max_chars``)."""
    exponents = packing.exponents_for(spec.step_weights, spec.latent_channels)
    steps = REFINE_STEPS if refine_steps is None else refine_steps

    coded = rgb.size
    while True:
        source = rgb if coded == rgb.size else rgb.resize(coded, Image.Resampling.LANCZOS)
        latent = encode_latent(net, source, steps)
        if max_chars is None:
            text: str | None = _token(spec, rgb.size, coded, latent, exponents, DEFAULT_STEP_UNITS)
        else:
            text, coarsest = _fit(spec, rgb.size, coded, latent, exponents, max_chars)
        if text is not None:
            return text
        # Characters grow with area at a fixed step: aim straight at the size that fits.
        shrink = min(DOWNSCALE_FACTOR, 0.97 * math.sqrt(max_chars / coarsest))
        coded = next_size(rgb.size, coded, shrink, spec.downscale, max_chars)


def _token(spec, size, coded, latent, exponents, units: int) -> str:
    payload = packing.pack_gauss_rc(latent, packing.Quantiser(units, exponents))
    return token.to_text(token.pack(_header(spec, size, coded, latent.shape, packing.GAUSS_RC, payload), payload))


def _fit(spec, size, coded, latent, exponents, max_chars: int) -> tuple[str | None, int]:
    """The token for the finest step up to MAX_STEP_UNITS that fits (binary search over
    STEP_LADDER), else None and the length at the coarsest allowed step."""
    peak = np.abs(latent).reshape(latent.shape[0], -1).max(axis=1)
    ladder = [
        units for units in STEP_LADDER
        if units <= MAX_STEP_UNITS and np.all(peak / packing.channel_steps(units, np.asarray(exponents)) < 0.9 * packing.MAX_RADIUS)
    ] or [MAX_STEP_UNITS]  # steps fine enough to clip symbols at the radius cap are skipped
    best = _token(spec, size, coded, latent, exponents, ladder[-1])
    coarsest = len(best)
    if coarsest > max_chars:
        return None, coarsest
    lo, hi = 0, len(ladder) - 2
    while lo <= hi:
        mid = (lo + hi) // 2
        text = _token(spec, size, coded, latent, exponents, ladder[mid])
        if len(text) <= max_chars:
            best, hi = text, mid - 1
        else:
            lo = mid + 1
    return best, coarsest


def _header(spec, size, coded, shape, kind: int, payload: bytes) -> token.Header:
    return token.Header(
        version=token.VERSION, model_code=spec.code, width=size[0], height=size[1],
        coded_width=coded[0], coded_height=coded[1], latent_channels=shape[0],
        latent_height=shape[1], latent_width=shape[2], payload_kind=kind, payload_length=len(payload),
    )  # fmt: skip


def image_to_tensor(rgb: Image.Image, multiple: int) -> torch.Tensor:
    """RGB image -> (1, 3, H, W) in [0, 1], edge-padded to a multiple of ``multiple``."""
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    pad_h, pad_w = -array.shape[0] % multiple, -array.shape[1] % multiple
    if pad_h or pad_w:
        array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None].to(device())


def encode_latent(net: LatentAutoencoder, rgb: Image.Image, refine_steps: int = REFINE_STEPS) -> np.ndarray:
    """The model's latent for an RGB image, refined through the decoder when enabled."""
    x = image_to_tensor(rgb, net.downscale)
    with torch.inference_mode():
        latent = net.encode(x)
    if refine_steps > 0 and rgb.width * rgb.height <= REFINE_MAX_PIXELS:
        latent = refine_latent(net, x, latent.clone(), rgb.size, refine_steps)
    return latent[0].float().cpu().numpy()


def refine_latent(net: LatentAutoencoder, x: torch.Tensor, latent: torch.Tensor, size: tuple[int, int], steps: int) -> torch.Tensor:
    """Gradient steps on the latent to minimise the decoder's MSE on the visible area."""
    width, height = size
    target = x[..., :height, :width]
    with torch.inference_mode(False), torch.enable_grad():
        z = latent.detach().clone().requires_grad_(True)
        optimiser = torch.optim.Adam([z], lr=REFINE_LR)
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            loss = torch.mean((net.decode(z)[..., :height, :width] - target) ** 2)
            loss.backward()
            optimiser.step()
    return z.detach()
