"""encode / decode / inspect: the codec's pipeline from image to token and back."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from . import packing, token
from .errors import CodecError, InvalidToken
from .images import ImageSource, load_rgb
from .limits import DEFAULT_MAX_PIXELS, MAX_CODED_PIXELS, MAX_UPSCALE_PER_SIDE
from .models import registry
from .models.base import LatentAutoencoder, device

#: Global quantisation step for the default quality (per-channel steps scale it). Chosen on
#: Kodak (24 images, long side 316, REFINE_STEPS=8): the coarsest STEP_LADDER entry whose mean
#: PSNR is at least the original project's webp8 packing's (4467: +0.18 dB at 0.356x its
#: characters; the next entry, 4871, is -0.17 dB). See docs/benchmarks-tuning.md.
DEFAULT_STEP_UNITS = int(os.environ.get("EMMM_STEP_UNITS", 4467))
#: Base step ladder searched by rate control: 2 ** (i / 8 - 6) for i < 80, finest first.
STEP_LADDER = tuple(round(packing.STEP_UNIT * 2 ** (i / 8 - 6)) for i in range(80))
#: Coarsest step rate control uses before it encodes a smaller image instead: past the
#: default step, a downscaled image looks better for the same characters (measured on Kodak).
MAX_STEP_UNITS = DEFAULT_STEP_UNITS
#: Latent refinement: Adam steps on the latent through the decoder (0 disables). 8 rather
#: than 5: about 4% fewer characters at equal PSNR for about 1.5x the encode time (decoding
#: is unaffected); 3 needs a finer step than 4096 to match webp8 (docs/benchmarks-tuning.md).
REFINE_STEPS = int(os.environ.get("EMMM_REFINE_STEPS", 8))
REFINE_LR = 0.05
#: Refinement needs decoder activations for backprop; above this many pixels it is skipped.
REFINE_MAX_PIXELS = int(os.environ.get("EMMM_REFINE_MAX_PIXELS", 1024 * 1024))
#: Each rate-control downscale shrinks both sides by this factor.
DOWNSCALE_FACTOR = 0.8


def default_model() -> str:
    """``$EMMM_DEFAULT_MODEL`` or ``taef2``."""
    return os.environ.get("EMMM_DEFAULT_MODEL", "taef2")


@dataclass(frozen=True)
class EncodeResult:
    """A token and what it decodes to."""

    token: str
    model: str
    width: int
    height: int
    chars: int


@dataclass(frozen=True)
class TokenInfo:
    """A token's header fields, read without running a model."""

    version: int
    model: str
    width: int
    height: int
    coded_width: int
    coded_height: int
    latent_shape: tuple[int, int, int]
    payload_kind: str
    payload_bytes: int
    chars: int


def load_model(name: str | None = None) -> LatentAutoencoder:
    """Load (once per process, from local files only) and return a registered model.

    Never downloads: a model whose weights are not on disk raises ModelUnavailable at once,
    with a plain message (details in ``__cause__``). See ``fetch_model``.
    """
    return registry.load(name or default_model())


def fetch_model(name: str | None = None) -> LatentAutoencoder:
    """Download (from the pinned URL / hub revision) what is missing, verify and load a model.

    For operators and worker start-up (``python -m codec fetch``), never for a web request.
    """
    return registry.fetch(name or default_model())


def model_available(name: str | None = None) -> bool:
    """Whether the model is loaded or its files are on disk (no hashing, no network; fast).

    CodecError for a name that is not registered.
    """
    return registry.is_available(name or default_model())


def encode(
    image: ImageSource,
    *,
    model: str | None = None,
    max_chars: int | None = None,
    max_pixels: int | None = None,
    refine_steps: int | None = None,
) -> EncodeResult:
    """Encode an image into a token.

    With ``max_chars`` the token never exceeds that many characters: the finest
    quantisation step (up to ``MAX_STEP_UNITS``) that fits is chosen, and only if none
    fits is the image encoded smaller (decode() still returns the full size). Raises InvalidImage or CodecError.
    """
    spec = registry.get_spec(model or default_model())
    if max_pixels is not None and max_pixels < 1:
        raise CodecError("max_pixels must be positive")
    if max_chars is not None:
        floor = minimum_chars(spec.name)
        if max_chars < floor:
            raise CodecError(f"max_chars={max_chars} is too small: a {spec.name} token needs at least {floor}")
    rgb = load_rgb(image, max_pixels=min(max_pixels or DEFAULT_MAX_PIXELS, MAX_CODED_PIXELS))
    net = registry.load(spec.name)
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
            return EncodeResult(token=text, model=spec.name, width=rgb.width, height=rgb.height, chars=len(text))
        # Characters grow with area at a fixed step: aim straight at the size that fits.
        shrink = min(DOWNSCALE_FACTOR, 0.97 * math.sqrt(max_chars / coarsest))
        coded = next_coded_size(rgb.size, coded, shrink, spec.downscale, max_chars)


def next_coded_size(size: tuple[int, int], coded: tuple[int, int], shrink: float, multiple: int, max_chars: int) -> tuple[int, int]:
    """The next, smaller coded size rate control tries: ``coded * shrink``, but never more than
    MAX_UPSCALE_PER_SIDE times smaller than ``size`` nor under ``multiple`` pixels a side;
    CodecError when no smaller size is left to try."""
    least = (math.ceil(size[0] / MAX_UPSCALE_PER_SIDE), math.ceil(size[1] / MAX_UPSCALE_PER_SIDE))
    smaller = (max(least[0], math.floor(coded[0] * shrink)), max(least[1], math.floor(coded[1] * shrink)))
    if smaller == tuple(coded) or min(smaller) < multiple:
        raise CodecError(
            f"max_chars={max_chars} is too small for this image: a token may be decoded at most "
            f"{MAX_UPSCALE_PER_SIDE}x larger than the image it codes; allow more characters or upload a smaller image"
        )
    return smaller


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


def minimum_chars(model: str | None = None) -> int:
    """Length of the shortest possible token for a model (framing and tables, no data)."""
    spec = registry.get_spec(model or default_model())
    nbytes = token.OVERHEAD + packing.gauss_rc_table_bytes(spec.latent_channels) + 4  # + one coded word
    return math.ceil(nbytes * 4 / 3)


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


def _read(token_text: str) -> tuple[token.Header, bytes, registry.ModelSpec]:
    header, payload = token.unpack(token.from_text(token_text))
    spec = registry.spec_for_code(header.model_code)
    if header.payload_kind not in packing.KIND_NAMES:
        raise InvalidToken(f"the token uses an unknown payload kind {header.payload_kind}")
    expected = (
        spec.latent_channels,
        -(-header.coded_height // spec.downscale),
        -(-header.coded_width // spec.downscale),
    )
    if header.latent_shape != expected:
        raise InvalidToken(f"the token's latent shape {header.latent_shape} does not match its image size")
    return header, payload, spec


def inspect(token_text: str) -> TokenInfo:
    """Header fields of a token; validates framing and checksum but runs no model."""
    header, payload, spec = _read(token_text)
    return TokenInfo(
        version=header.version, model=spec.name, width=header.width, height=header.height,
        coded_width=header.coded_width, coded_height=header.coded_height,
        latent_shape=header.latent_shape, payload_kind=packing.KIND_NAMES[header.payload_kind],
        payload_bytes=len(payload), chars=len(token_text),
    )  # fmt: skip


def decode_latent(token_text: str) -> tuple[token.Header, registry.ModelSpec, np.ndarray]:
    """The dequantised latent of a token (no model run)."""
    header, payload, spec = _read(token_text)
    return header, spec, packing.unpack(header.payload_kind, payload, header.latent_shape)


def decode(token_text: str, *, model: str | None = None) -> Image.Image:
    """Decode a token into an RGB image at its declared width and height.

    ``model`` may name another model of the same latent space (e.g. ``taesd`` for a
    ``sd-vae-ft-mse`` token). Raises InvalidToken for any bad token.
    """
    header, spec, latent = decode_latent(token_text)
    if model is not None and model != spec.name:
        other = registry.get_spec(model)
        if other.latent_space != spec.latent_space:
            raise InvalidToken(f"a {spec.name} token cannot be decoded with {model} (different latent space)")
        spec = other
    return render_latent(registry.load(spec.name), latent, header)


def render_latent(net: LatentAutoencoder, latent: np.ndarray, header: token.Header) -> Image.Image:
    """Run the decoder and crop/resize to the token's declared sizes."""
    with torch.inference_mode():
        pixels = net.decode(torch.from_numpy(latent)[None].to(device()))
        pixels = pixels[0, :, : header.coded_height, : header.coded_width].clamp(0, 1)
        array = pixels.mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    image = Image.fromarray(array, "RGB")
    if image.size != (header.width, header.height):
        image = image.resize((header.width, header.height), Image.Resampling.LANCZOS)
    return image
