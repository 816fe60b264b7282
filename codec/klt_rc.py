"""Payload kind 3, ``klt-rc`` (token version 2): the latent in a fixed, decoder-sensitivity-
whitened KLT basis, one uniform step, range-coded with integer-built Gaussian tables.

    u = R^T (s * z)        (encoder; s, R: the model's pinned transform, codec/fit/klt.py)
    z = (R û) / s          (decoder)

Payload: u16 base step units (step = units / 4096), then per channel of u: i8 centre,
u8 radius, u16 rho (Q16); then the range coder's u32 words (little-endian). Channel c's
symbols ``q - centre + radius`` (raster order, channel after channel) are coded with the
table ``integer_pmf(radius, rho)``: integers only, so every decoder (any CPU, JavaScript)
builds the same table. Specified in docs/token-format.md.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import constriction
import numpy as np

from .errors import InvalidToken, ModelUnavailable
from .limits import MAX_ALPHABET
from .packing import channel_model

STEP_UNIT = 4096
MAX_RADIUS = 255
_PARAMS = struct.Struct(">H")
_CHANNEL = struct.Struct(">bBH")  # centre, radius, rho (Q16)


@dataclass(frozen=True)
class Transform:
    """Whitening scale ``s`` (C,) and KLT rotation ``R`` (C, C), from a pinned file."""

    scale: np.ndarray
    rotation: np.ndarray

    def forward(self, latent: np.ndarray) -> np.ndarray:
        """(C, H, W) latent z -> coefficients u."""
        c, h, w = latent.shape
        return (self.rotation.T @ (latent.reshape(c, -1) * self.scale[:, None])).reshape(c, h, w)

    def inverse(self, coeffs: np.ndarray) -> np.ndarray:
        """(C, H, W) coefficients u -> latent z."""
        c, h, w = coeffs.shape
        return ((self.rotation @ coeffs.reshape(c, -1)) / self.scale[:, None]).reshape(c, h, w).astype(np.float32)


_TRANSFORMS: dict[str, Transform] = {}


def pinned_arrays(path: Path, sha256: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz file that is part of the token format, after checking its sha256
    (ModelUnavailable when the file differs)."""
    import hashlib
    import io

    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelUnavailable(f"{path} does not match its pinned sha256 {sha256}")
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def load_transform(path: Path, sha256: str) -> Transform:
    """The transform in ``path`` (an .npz of float32 ``scale`` and ``rotation``), verified."""
    key = f"{path}:{sha256}"
    if key not in _TRANSFORMS:
        arrays = pinned_arrays(path, sha256)
        _TRANSFORMS[key] = Transform(arrays["scale"].astype(np.float64), arrays["rotation"].astype(np.float64))
    return _TRANSFORMS[key]


def integer_pmf(radius: int, rho: int) -> list[int]:
    """Frequencies of k = -radius..radius, proportional to (rho/65536) ** (k*k), integers only.

    p(0) = 65536; t(1) = rho; t(k) = (t(k-1) * rho * rho + 2**31) >> 32 (= rho**(2k-1), Q16);
    p(k) = max(1, (p(k-1) * t(k) + 2**15) >> 16); p(-k) = p(k). Every intermediate is below
    2**53, so JavaScript numbers compute it exactly too.
    """
    half, p, t = [], 65536, 0
    for k in range(1, radius + 1):
        t = rho if k == 1 else (t * rho * rho + (1 << 31)) >> 32
        p = max(1, (p * t + (1 << 15)) >> 16)
        half.append(p)
    return half[::-1] + [65536] + half


def _model(radius: int, rho: int):
    return constriction.stream.model.Categorical(np.asarray(integer_pmf(radius, rho), dtype=np.float64), perfect=False)


def quantise(coeffs: np.ndarray, step: float) -> np.ndarray:
    """Integer symbols of the coefficients at one uniform step."""
    return np.rint(coeffs / step).astype(np.int32)


def pack(coeffs: np.ndarray, step_units: int) -> bytes:
    """Quantise and range-code (C, H, W) coefficients u at step ``step_units / 4096``."""
    q = quantise(coeffs, step_units / STEP_UNIT)
    out = [_PARAMS.pack(step_units)]
    encoder = constriction.stream.queue.RangeEncoder()
    for c in range(q.shape[0]):
        centre, offsets, radius, rho = channel_model(q[c].ravel())
        out.append(_CHANNEL.pack(centre, radius, rho))
        if radius:
            encoder.encode((offsets + radius).astype(np.int32), _model(radius, rho))
    return b"".join(out) + encoder.get_compressed().astype("<u4").tobytes()


def table_bytes(channels: int) -> int:
    """Size of the parameter table before the coded words."""
    return _PARAMS.size + channels * _CHANNEL.size


def unpack(payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """The dequantised coefficients û (C, H, W); every declared parameter checked before use."""
    channels, height, width = shape
    size = table_bytes(channels)
    if len(payload) < size or (len(payload) - size) % 4:
        raise InvalidToken("the token's payload has the wrong length for its latent shape")
    (units,) = _PARAMS.unpack_from(payload)
    if units == 0:
        raise InvalidToken("the token declares a zero quantisation step")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4", offset=size).astype(np.uint32))
    q = np.empty((channels, height * width), dtype=np.int32)
    for c in range(channels):
        centre, radius, rho = _CHANNEL.unpack_from(payload, _PARAMS.size + c * _CHANNEL.size)
        if 2 * radius + 1 > MAX_ALPHABET:  # pragma: no cover - u8 radius keeps it <= 511
            raise InvalidToken("the token declares an alphabet over the limits")
        if rho == 0 and radius:
            raise InvalidToken("the token declares an empty probability table")
        q[c] = centre if radius == 0 else decoder.decode(_model(radius, rho), height * width).astype(np.int32) - radius + centre
    return (q.reshape(shape) * (units / STEP_UNIT)).astype(np.float64)
