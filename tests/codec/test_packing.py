"""Payload kinds (codec/packing.py): exact gauss-rc round trips, webp8, hostile payloads."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from codec import packing
from codec.errors import InvalidToken

from .imagegen import encoded, photo

SHAPE = (32, 6, 8)


def quantised(latent: np.ndarray, q: packing.Quantiser) -> np.ndarray:
    steps = q.steps()[:, None, None]
    return (np.rint(latent / steps) * steps).astype(np.float32)


@pytest.mark.parametrize("seed, scale, units", [(0, 1.0, 4096), (1, 3.0, 1024), (2, 0.3, 4096), (3, 4.0, 512)])
def test_gauss_rc_round_trip_is_exact(seed, scale, units):
    rng = np.random.default_rng(seed)
    latent = rng.normal(0.5, scale, SHAPE).astype(np.float32)
    q = packing.Quantiser(units, tuple(int(v) for v in rng.integers(-20, 21, SHAPE[0])))
    out = packing.unpack(packing.GAUSS_RC, packing.pack_gauss_rc(latent, q), SHAPE)
    assert out.dtype == np.float32 and out.shape == SHAPE
    np.testing.assert_array_equal(out, quantised(latent, q))


def test_gauss_rc_constant_channels_cost_no_coded_data():
    latent = np.zeros(SHAPE, dtype=np.float32)
    latent[3] = 2.0  # constant but non-zero
    latent[7] = -5.0
    q = packing.Quantiser(4096, (0,) * 32)
    payload = packing.pack_gauss_rc(latent, q)
    assert len(payload) <= 2 + 5 * 32 + 4  # the parameter table and at most one coder word
    np.testing.assert_array_equal(packing.unpack(packing.GAUSS_RC, payload, SHAPE), latent)


def test_gauss_rc_extreme_values_clip_to_radius_but_stay_decodable():
    latent = np.zeros(SHAPE, dtype=np.float32)
    latent[0, 0, 0] = 1e4  # 10000 steps: beyond the u8 radius
    latent[1, 2, 3] = -1e4
    latent[2] = np.linspace(-300, 300, 48).reshape(6, 8)
    latent[4, 0, 0] = 127.0  # centre at the edge of the i8 range
    q = packing.Quantiser(4096, (0,) * 32)
    out = packing.unpack(packing.GAUSS_RC, packing.pack_gauss_rc(latent, q), SHAPE)
    assert np.isfinite(out).all()
    # A channel's centre is its rounded mean clipped to the i8 range, and symbols are
    # clipped to centre +- MAX_RADIUS (255). Channel 0: mean 10000/48 -> centre 127, so 1e4
    # comes back as 382 while its zeros (offset -127) stay exact; channel 1 mirrors it.
    assert out[0, 0, 0] == 127 + 255 and out[0, 0, 1] == 0
    assert out[1, 2, 3] == -128 - 255 and out[1, 0, 0] == 0
    np.testing.assert_array_equal(out[2], np.clip(np.rint(latent[2]), -255, 255))
    np.testing.assert_array_equal(out[5:], 0)


def test_gauss_rc_wrong_payload_length_is_invalid_token():
    payload = packing.pack_gauss_rc(np.ones(SHAPE, np.float32), packing.Quantiser(4096, (0,) * 32))
    with pytest.raises(InvalidToken, match="wrong length for its latent shape"):
        packing.unpack(packing.GAUSS_RC, payload[:-3], SHAPE)
    with pytest.raises(InvalidToken, match="wrong length for its latent shape"):
        packing.unpack(packing.GAUSS_RC, payload, (64, 6, 8))


def test_gauss_rc_zero_step_is_refused():
    payload = b"\x00\x00" + b"\x00\x00\x00\x00\x01" * 32
    with pytest.raises(InvalidToken, match="zero quantisation step"):
        packing.unpack(packing.GAUSS_RC, payload, SHAPE)


def test_unknown_payload_kind():
    with pytest.raises(InvalidToken, match="unknown payload kind 7"):
        packing.unpack(7, b"", SHAPE)


def test_webp8_round_trip():
    rng = np.random.default_rng(5)
    latent = rng.normal(0, 2, SHAPE).astype(np.float32)
    out = packing.unpack(packing.WEBP8, packing.pack_webp8(latent), SHAPE)
    lo, hi = np.percentile(latent, [0.1, 99.9])
    clipped = np.clip(latent, lo, hi)
    # uint8 over [lo, hi] then lossy WebP q95: errors of a few levels of (hi - lo) / 255
    assert np.abs(out - clipped).mean() < 2 * (hi - lo) / 255
    assert np.abs(out - clipped).max() < 16 * (hi - lo) / 255
    assert np.corrcoef(out.ravel(), latent.ravel())[0, 1] > 0.99


def webp_payload(image, lo=-1.0, hi=1.0, fmt="WEBP") -> bytes:
    return struct.pack(">ff", lo, hi) + encoded(image, fmt)


def test_webp8_declared_dimensions_must_match():
    from PIL import Image

    wrong = Image.new("L", (8, 32 * 6 + 1))
    with pytest.raises(InvalidToken, match="embedded picture does not match its declared shape"):
        packing.unpack(packing.WEBP8, webp_payload(wrong), SHAPE)


def test_webp8_refuses_other_formats_even_at_the_right_size():
    """A PNG (or anything not WebP) of exactly the declared size is refused: the payload is
    opened with Pillow restricted to WebP, so no other decoder ever sees token bytes."""
    from PIL import Image

    right_size = Image.new("L", (8, 32 * 6), 128)
    packing.unpack(packing.WEBP8, webp_payload(right_size), SHAPE)  # the WebP itself is fine
    for fmt in ("PNG", "BMP", "GIF", "TIFF", "JPEG"):
        with pytest.raises(InvalidToken, match="embedded picture is corrupt"):
            packing.unpack(packing.WEBP8, webp_payload(right_size, fmt=fmt), SHAPE)


@pytest.mark.parametrize("lo, hi", [(1.0, 1.0), (2.0, -2.0), (float("nan"), 1.0), (0.0, float("inf")), (-3e38, 3e38)])
def test_webp8_invalid_range(lo, hi):
    from PIL import Image

    with pytest.raises(InvalidToken, match="invalid quantisation range"):
        packing.unpack(packing.WEBP8, webp_payload(Image.new("L", (8, 192)), lo, hi), SHAPE)


def test_webp8_corrupt_or_short():
    with pytest.raises(InvalidToken, match="payload is too short"):
        packing.unpack(packing.WEBP8, b"\x00" * 8, SHAPE)
    good = webp_payload(photo(8, 192).convert("L"))
    with pytest.raises(InvalidToken, match="embedded picture is corrupt"):
        packing.unpack(packing.WEBP8, good[: len(good) // 2], SHAPE)


def test_step_exponents_follow_sensitivity():
    exps = packing.exponents_for((4.0, 1.0, 0.25), 3)
    assert exps == (-16, 0, 16)  # 4x the sensitivity: half the step (2 ** (-16/16))
    assert packing.exponents_for(None, 3) == (0, 0, 0)
