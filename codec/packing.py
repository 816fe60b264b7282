"""Payload kinds: how a latent tensor becomes bytes and back.

Kind 1, ``gauss-rc`` (token v1's default; v2's is ``klt-ctx``, codec/klt_ctx.py): per-channel uniform quantisation, then range coding
with a per-channel discrete Gaussian whose parameters travel in the payload.
Kind 2, ``webp8``: the original project's packing (global 0.1/99.9 percentile clip, uint8,
channels stacked into one grayscale WebP), kept for comparison and for old links.

Probability tables are built with additions and multiplications only (no ``exp``), so an
encoder and a decoder on different CPUs build bit-identical tables.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
import constriction
from PIL import Image

from .errors import InvalidToken
from .limits import MAX_ALPHABET

GAUSS_RC = 1
WEBP8 = 2
KIND_NAMES = {GAUSS_RC: "gauss-rc", WEBP8: "webp8"}

#: Base step: u16 in units of 1/STEP_UNIT. Channel step = base * 2 ** (exponent / 16).
STEP_UNIT = 4096
EXPONENT_UNIT = 16
MAX_RADIUS = 255
_RC_PARAMS = struct.Struct(">H")
_RC_CHANNEL = struct.Struct(">bbBH")  # exponent, centre, radius, rho (u16 / 65536)
_WEBP_PARAMS = struct.Struct(">ff")
_F32_MAX = float(np.finfo(np.float32).max)  # hi - lo must not overflow float32


@dataclass(frozen=True)
class Quantiser:
    """Encoder-side quantisation settings for ``gauss-rc``."""

    base_step_units: int
    exponents: tuple[int, ...]

    def steps(self) -> np.ndarray:
        return channel_steps(self.base_step_units, np.asarray(self.exponents))


def channel_steps(base_step_units: int, exponents: np.ndarray) -> np.ndarray:
    """Per-channel quantisation step sizes (float32)."""
    return (base_step_units / STEP_UNIT) * np.exp2(exponents.astype(np.float64) / EXPONENT_UNIT)


def exponents_for(weights: tuple[float, ...] | None, channels: int) -> tuple[int, ...]:
    """Step exponents from sensitivity weights: step_c proportional to 1/sqrt(weight_c)."""
    if weights is None or len(weights) != channels:
        return (0,) * channels
    w = np.asarray(weights, dtype=np.float64)
    rel = -0.5 * np.log2(w / np.exp(np.mean(np.log(w))))
    return tuple(int(v) for v in np.clip(np.round(rel * EXPONENT_UNIT), -127, 127))


def _gaussian_pmf(radius: int, rho_units: int) -> np.ndarray:
    """Unnormalised p(k) = rho ** (k**2) for k in [-radius, radius], multiplications only."""
    rho = np.float64(max(rho_units, 1)) / 65536.0
    if radius == 0:
        return np.ones(1)
    odd_powers = np.full(radius, rho * rho)
    odd_powers[0] = rho
    half = np.multiply.accumulate(np.multiply.accumulate(odd_powers))  # rho**(n*n), n>=1
    return np.concatenate([half[::-1], [1.0], half])


def pack_gauss_rc(latent: np.ndarray, quantiser: Quantiser) -> bytes:
    """Quantise and range-code a (C, H, W) float latent."""
    steps = quantiser.steps()
    q = np.rint(latent / steps[:, None, None]).astype(np.int32)
    out = [_RC_PARAMS.pack(quantiser.base_step_units)]
    encoder = constriction.stream.queue.RangeEncoder()
    for c in range(q.shape[0]):
        centre, offsets, radius, rho_units = channel_model(q[c].ravel())
        out.append(_RC_CHANNEL.pack(quantiser.exponents[c], centre, radius, rho_units))
        if radius == 0:  # a constant channel costs no coded data
            continue
        model = constriction.stream.model.Categorical(_gaussian_pmf(radius, rho_units), perfect=False)
        encoder.encode((offsets + radius).astype(np.int32), model)
    return b"".join(out) + encoder.get_compressed().astype("<u4").tobytes()


def channel_model(values: np.ndarray) -> tuple[int, np.ndarray, int, int]:
    """An encoder's Gaussian for one channel's integer symbols: (centre, offsets from it
    clipped to the radius cap, radius, rho in Q16). Not part of any format: tokens carry them."""
    centre = int(np.clip(np.rint(values.mean()), -128, 127))
    offsets = np.clip(values - centre, -MAX_RADIUS, MAX_RADIUS)
    radius = int(np.abs(offsets).max())
    variance = max(float(np.mean(offsets.astype(np.float64) ** 2)), 1e-3)
    rho_units = int(np.clip(np.rint(np.exp(-0.5 / variance) * 65536), 1, 65535))
    return centre, offsets, radius, rho_units


def gauss_rc_table_bytes(channels: int) -> int:
    """Size of a gauss-rc payload's parameter table (before the coded words)."""
    return _RC_PARAMS.size + channels * _RC_CHANNEL.size


def unpack_gauss_rc(payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of pack_gauss_rc; every declared parameter is checked before use."""
    channels, height, width = shape
    table_size = gauss_rc_table_bytes(channels)
    if len(payload) < table_size or (len(payload) - table_size) % 4:
        raise InvalidToken("the token's payload has the wrong length for its latent shape")
    (base_units,) = _RC_PARAMS.unpack_from(payload)
    if base_units == 0:
        raise InvalidToken("the token declares a zero quantisation step")
    params = [_RC_CHANNEL.unpack_from(payload, _RC_PARAMS.size + c * _RC_CHANNEL.size) for c in range(channels)]
    words = np.frombuffer(payload, dtype="<u4", offset=table_size).astype(np.uint32)
    decoder = constriction.stream.queue.RangeDecoder(words)
    q = np.empty((channels, height * width), dtype=np.int32)
    for c, (_exponent, centre, radius, rho_units) in enumerate(params):
        if 2 * radius + 1 > MAX_ALPHABET:
            raise InvalidToken("the token declares an alphabet over the limits")
        if radius == 0:
            q[c] = centre
            continue
        model = constriction.stream.model.Categorical(_gaussian_pmf(radius, rho_units), perfect=False)
        q[c] = decoder.decode(model, height * width).astype(np.int32) - radius + centre
    steps = channel_steps(base_units, np.array([p[0] for p in params]))
    return (q.reshape(shape) * steps[:, None, None]).astype(np.float32)


def pack_webp8(latent: np.ndarray) -> bytes:
    """The original project's packing: percentile clip, uint8, stacked grayscale WebP q95."""
    lo, hi = (float(v) for v in np.percentile(latent, [0.1, 99.9]))
    hi = max(hi, lo + 1e-6)
    channels, height, width = latent.shape
    u8 = ((np.clip(latent, lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8.reshape(channels * height, width)).save(buf, format="WEBP", quality=95)
    return _WEBP_PARAMS.pack(lo, hi) + buf.getvalue()


def unpack_webp8(payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of pack_webp8; opens only WebP, and only at the declared dimensions."""
    channels, height, width = shape
    if len(payload) <= _WEBP_PARAMS.size:
        raise InvalidToken("the token's payload is too short")
    lo, hi = _WEBP_PARAMS.unpack_from(payload)
    if not (np.isfinite(lo) and np.isfinite(hi)) or not 0 < hi - lo <= _F32_MAX:
        raise InvalidToken("the token declares an invalid quantisation range")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(payload[_WEBP_PARAMS.size :]), formats=["WEBP"])
            if image.size != (width, channels * height):
                raise InvalidToken("the token's embedded picture does not match its declared shape")
            pixels = np.asarray(image.convert("L"), dtype=np.float32)
    except InvalidToken:
        raise
    except Exception as exc:  # Pillow raises many types on corrupt data
        raise InvalidToken("the token's embedded picture is corrupt") from exc
    return (pixels.reshape(shape) / 255 * (hi - lo) + lo).astype(np.float32)


def unpack(kind: int, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Decode a payload of the given kind into a (C, H, W) float32 latent."""
    if kind == GAUSS_RC:
        try:
            return unpack_gauss_rc(payload, shape)
        except InvalidToken:
            raise
        except (ValueError, RuntimeError, AssertionError, OverflowError) as exc:
            raise InvalidToken("the token's payload is corrupt") from exc
    if kind == WEBP8:
        return unpack_webp8(payload, shape)
    raise InvalidToken(f"the token uses an unknown payload kind {kind}")
