"""encode / decode / inspect: the codec's pipeline from image to token and back."""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import avif, encode_v1, encode_v2, environment, klt_ctx, klt_rc, packing, token
from .encode_v1 import (  # noqa: F401  (re-exported: tests, bench, golden tokens)
    DEFAULT_STEP_UNITS, REFINE_STEPS, STEP_LADDER, _header, encode_latent, image_to_tensor, refine_latent,
)
from .errors import CodecError, InvalidToken
from .images import ImageSource, load_rgb
from .limits import DEFAULT_MAX_PIXELS, MAX_CODED_PIXELS, MAX_TOKEN_CHARS, MAX_UPSCALE_PER_SIDE, MIN_CODED_SIDE
from .models import registry
from .models.base import LatentAutoencoder, device

def default_model() -> str:
    """``$EMMM_DEFAULT_MODEL`` (checked against the registered models: ConfigurationError
    naming the variable), or ``taef2`` when it is unset or empty."""
    return environment.value("EMMM_DEFAULT_MODEL")


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


#: What ``kind="vae"`` (the default) writes: "vae-v2" for models with a v2 transform, else
#: "vae-v1" (v2 is shorter, sharper and 2.6x faster to encode: docs/benchmarks.md).
#: ``EMMM_VAE_FORMAT=v1`` keeps writing version 1 tokens.
VAE_FORMAT = environment.value("EMMM_VAE_FORMAT")
KINDS = ("vae", "vae-v1", "vae-v2", "avif")
#: ``refine_steps`` at most (each costs about two decoder passes); EMMM_REFINE_STEPS's bound.
MAX_REFINE_STEPS = int(environment.VARIABLES["EMMM_REFINE_STEPS"].maximum)


def encode(
    image: ImageSource,
    *,
    model: str | None = None,
    max_chars: int | None = None,
    max_pixels: int | None = None,
    refine_steps: int | None = None,
    kind: str = "vae",
) -> EncodeResult:
    """Encode an image into a token.

    ``kind``: "vae" (the default VAE format, see VAE_FORMAT), "vae-v1", "vae-v2", or "avif"
    (the image itself as AVIF: sharp text, no model needed to decode). With ``max_chars`` the
    token never exceeds that many characters: the finest quantisation (or best AVIF quality)
    that fits, at the full coded size or a smaller one (v2 codes a smaller size when even a
    coarser step would not fit, and keeps a 0.9x smaller one when it decodes closer; decode()
    still returns the full size). Raises InvalidImage or CodecError.
    """
    if kind not in KINDS:
        raise CodecError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    for name, value in (("max_pixels", max_pixels), ("max_chars", max_chars), ("refine_steps", refine_steps)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise CodecError(f"{name} must be a whole number, not {value!r}")  # nan passes every comparison
    if max_pixels is not None and max_pixels < 1:
        raise CodecError("max_pixels must be positive")
    if refine_steps is not None and not 0 <= refine_steps <= MAX_REFINE_STEPS:
        raise CodecError(f"refine_steps must be from 0 to {MAX_REFINE_STEPS}, not {refine_steps}")
    if max_chars is not None:  # no longer token can be decoded (and 10**400 does not fit a float)
        max_chars = min(int(max_chars), MAX_TOKEN_CHARS)
    if kind == "avif":
        return _encode_avif(image, max_chars, max_pixels)
    spec = registry.get_spec(model or default_model())
    version = _vae_version(spec, kind)
    if max_chars is not None:
        floor = minimum_chars(spec.name, kind=f"vae-v{version}")
        if max_chars < floor:
            raise CodecError(f"max_chars={max_chars} is too small: a {spec.name} token needs at least {floor}")
    rgb = load_rgb(image, max_pixels=min(max_pixels or DEFAULT_MAX_PIXELS, MAX_CODED_PIXELS))
    net = registry.load(spec.name)
    if version == 2:
        text = encode_v2.encode_klt(
            rgb, spec, net, transform_for(spec), max_chars, next_size=next_coded_size,
            image_to_tensor=image_to_tensor, render=lambda text: render_latent(net, *_latent_and_header(text)),
            steps=refine_steps, context=context_for(spec) if spec.ctx else None,
        )  # fmt: skip
        return EncodeResult(token=text, model=spec.name, width=rgb.width, height=rgb.height, chars=len(text))
    text = encode_v1.encode(rgb, spec, net, max_chars, refine_steps, next_size=next_coded_size)
    return EncodeResult(token=text, model=spec.name, width=rgb.width, height=rgb.height, chars=len(text))


def _vae_version(spec: registry.ModelSpec, kind: str) -> int:
    if kind == "vae-v2" and spec.klt is None:
        raise CodecError(f"model {spec.name!r} has no version 2 format; use kind='vae-v1'")
    if kind == "vae-v1" or spec.klt is None or (kind == "vae" and VAE_FORMAT == "v1"):
        return 1
    return 2


def _encode_avif(image: ImageSource, max_chars: int | None, max_pixels: int | None) -> EncodeResult:
    if max_chars is not None and max_chars < (floor := encode_v2.minimum_avif_chars()):
        raise CodecError(f"max_chars={max_chars} is too small: an avif token needs at least {floor}")
    rgb = load_rgb(image, max_pixels=min(max_pixels or DEFAULT_MAX_PIXELS, MAX_CODED_PIXELS))
    text = encode_v2.encode_avif(rgb, max_chars, next_size=next_coded_size)
    return EncodeResult(token=text, model="", width=rgb.width, height=rgb.height, chars=len(text))


def transform_for(spec: registry.ModelSpec) -> klt_rc.Transform:
    """The model's pinned v2 channel transform (ModelUnavailable if the file is wrong)."""
    if spec.klt is None:
        raise InvalidToken(f"model {spec.name!r} has no version 2 format")
    name, sha256 = spec.klt
    return klt_rc.load_transform(Path(__file__).parent / "models" / name, sha256)


def context_for(spec: registry.ModelSpec) -> klt_ctx.ContextModel:
    """The model's pinned ``klt-ctx`` context model (ModelUnavailable if the file is wrong)."""
    if spec.ctx is None:
        raise InvalidToken(f"model {spec.name!r} has no klt-ctx context model")
    name, sha256 = spec.ctx
    return klt_ctx.load_model(Path(__file__).parent / "models" / name, sha256)


def next_coded_size(size: tuple[int, int], coded: tuple[int, int], shrink: float, multiple: int, max_chars: int) -> tuple[int, int]:
    """The next, smaller coded size rate control tries: each side ``coded * shrink``, but never
    more than MAX_UPSCALE_PER_SIDE times smaller than ``size`` nor under ``multiple`` pixels (a
    side already under it stays as it is; the other side still shrinks); CodecError when no
    smaller size is left to try."""
    smaller = tuple(
        max(math.ceil(full / MAX_UPSCALE_PER_SIDE), min(side, multiple), math.floor(side * shrink))
        for full, side in zip(size, coded)
    )
    if smaller == tuple(coded):
        raise CodecError(
            f"max_chars={max_chars} is too small for this image: a token may be decoded at most "
            f"{MAX_UPSCALE_PER_SIDE}x larger than the image it codes; allow more characters or upload a smaller image"
        )
    return smaller


def minimum_chars(model: str | None = None, *, kind: str = "vae") -> int:
    """The smallest ``max_chars`` ``encode`` accepts for a model and kind: framing, the
    parameter table and one coded word. (A token whose symbols need no coded word, a flat
    1x1 picture's, can be a few characters shorter; no budget under this is worth trying.)"""
    if kind not in KINDS:
        raise CodecError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "avif":
        return encode_v2.minimum_avif_chars()
    spec = registry.get_spec(model or default_model())
    if _vae_version(spec, kind) == 2 and spec.ctx is not None:
        return _smallest_klt_ctx_chars(spec.name)
    if _vae_version(spec, kind) == 2:
        table = klt_rc.table_bytes(spec.latent_channels)
    else:
        table = packing.gauss_rc_table_bytes(spec.latent_channels)
    return math.ceil((token.OVERHEAD + table + 4) * 4 / 3)  # + one coded word


@functools.lru_cache(maxsize=8)
def _smallest_klt_ctx_chars(model: str) -> int:
    """The klt-ctx token of the smallest latent the encoder writes (a side under MIN_CODED_SIDE
    is coded at it) with every symbol zero: what rate control reaches at its coarsest step."""
    spec = registry.get_spec(model)
    side = -(-MIN_CODED_SIDE // spec.downscale)
    shape = (spec.latent_channels, side, side)
    payload = klt_ctx.pack(np.zeros(shape), encode_v2.STEP_LADDER[-1], context_for(spec))
    return len(encode_v2.frame(spec.code, (1, 1), (MIN_CODED_SIDE, MIN_CODED_SIDE), shape, encode_v2.KLT_CTX, payload))


#: Payload kinds each token version may carry.
KINDS_BY_VERSION = {1: (packing.GAUSS_RC, packing.WEBP8), 2: (encode_v2.KLT_RC, encode_v2.AVIF, encode_v2.KLT_CTX)}
KIND_NAMES = {**packing.KIND_NAMES, encode_v2.KLT_RC: "klt-rc", encode_v2.AVIF: "avif", encode_v2.KLT_CTX: "klt-ctx"}


def _read(token_text: str) -> tuple[token.Header, bytes, registry.ModelSpec | None]:
    header, payload = token.unpack(token.from_text(token_text))
    if header.payload_kind not in KINDS_BY_VERSION[header.version]:
        raise InvalidToken(f"the token uses an unknown payload kind {header.payload_kind}")
    if header.payload_kind == encode_v2.AVIF:
        if header.model_code != 0 or header.latent_shape != (0, 0, 0):
            raise InvalidToken("an avif token must name no model and no latent shape")
        return header, payload, None
    spec = registry.spec_for_code(header.model_code)
    if header.payload_kind in (encode_v2.KLT_RC, encode_v2.KLT_CTX) and spec.klt is None:
        raise InvalidToken(f"the token's model {spec.name!r} has no version 2 format")
    if header.payload_kind == encode_v2.KLT_CTX and spec.ctx is None:
        raise InvalidToken(f"the token's model {spec.name!r} has no klt-ctx context model")
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
        version=header.version, model=spec.name if spec else "", width=header.width, height=header.height,
        coded_width=header.coded_width, coded_height=header.coded_height,
        latent_shape=header.latent_shape, payload_kind=KIND_NAMES[header.payload_kind],
        payload_bytes=len(payload), chars=len(token_text),
    )  # fmt: skip


def avif_bytes(token_text: str) -> bytes:
    """The AVIF file inside an ``avif`` token (its header checked), to serve as is at the
    coded size (``inspect(token).coded_width`` x ``coded_height``). InvalidToken otherwise."""
    header, payload, _ = _read(token_text)
    if header.payload_kind != encode_v2.AVIF:
        raise InvalidToken("the token is not an avif token")
    avif.check(payload, (header.coded_width, header.coded_height))
    return payload


def decode_latent(token_text: str) -> tuple[token.Header, registry.ModelSpec, np.ndarray]:
    """The dequantised latent of a VAE token (no model run)."""
    header, payload, spec = _read(token_text)
    if spec is None:
        raise InvalidToken("the token holds no latent (an avif token)")
    if header.payload_kind in (encode_v2.KLT_RC, encode_v2.KLT_CTX):
        try:
            if header.payload_kind == encode_v2.KLT_RC:
                coeffs = klt_rc.unpack(payload, header.latent_shape)
            else:
                coeffs = klt_ctx.unpack(payload, header.latent_shape, context_for(spec))
        except InvalidToken:
            raise
        except (ValueError, RuntimeError, AssertionError, OverflowError) as exc:
            raise InvalidToken("the token's payload is corrupt") from exc
        return header, spec, transform_for(spec).inverse(coeffs)
    return header, spec, packing.unpack(header.payload_kind, payload, header.latent_shape)


def _latent_and_header(token_text: str) -> tuple[np.ndarray, token.Header]:
    header, _, latent = decode_latent(token_text)
    return latent, header


def decode(token_text: str, *, model: str | None = None) -> Image.Image:
    """Decode a token into an RGB image at its declared width and height.

    ``model`` may name another model of the same latent space (e.g. ``taesd`` for a
    ``sd-vae-ft-mse`` token); it is ignored for avif tokens. Raises InvalidToken for any bad
    token, ModelUnavailable when the model's weights are not on this machine.
    """
    header, payload, spec = _read(token_text)
    if spec is None:
        image = avif.decode(payload, (header.coded_width, header.coded_height))
        return _resize(image, header)
    header, spec, latent = decode_latent(token_text)
    if model and model != spec.name:
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
    return _resize(Image.fromarray(array, "RGB"), header)


def _resize(image: Image.Image, header: token.Header) -> Image.Image:
    if image.size != (header.width, header.height):
        image = image.resize((header.width, header.height), Image.Resampling.LANCZOS)
    return image
