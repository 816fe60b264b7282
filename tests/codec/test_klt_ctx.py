"""Payload kind 5, ``klt-ctx``: the context model's pinned integer tables, its decoding order,
bit-exact round trips, the worked example and encoding through the real model. Synthetic
data and photos only, never Kodak."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

import codec
from codec import core, encode_v2, klt_ctx, klt_rc, token
from codec.errors import InvalidToken, ModelUnavailable
from codec.models import TAEF2_SPEC

from .imagegen import photo, psnr, synthetic_token_ctx

MODEL = core.context_for(TAEF2_SPEC)


# --- the pinned model ------------------------------------------------------------------------
def test_context_model_is_pinned_and_integer():
    name, sha = TAEF2_SPEC.ctx
    path = Path(core.__file__).parent / "models" / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    k = len(klt_ctx.NEIGHBOURS)
    with np.load(path, allow_pickle=False) as arrays:
        assert sorted(arrays.files) == sorted(klt_ctx.FIELDS)
        assert all(arrays[f].dtype == np.int32 for f in klt_ctx.FIELDS)  # integers only
    assert MODEL.mean.shape == (32, 1 + k) and MODEL.scale.shape == (32, 2 + k) and MODEL.energy.shape == (32,)
    assert np.all(np.diff(MODEL.thresholds) > 0)
    assert MODEL.tables.shape == ((len(MODEL.thresholds) + 1) << klt_ctx.FRACTION_BITS, klt_ctx.ESCAPE + 1)
    assert MODEL.escape.shape == (2 * klt_ctx.RADIUS + 1,)
    assert MODEL.tables.min() >= 1 and MODEL.escape.min() >= 1  # every symbol codable
    assert MODEL.tables.sum(axis=1).max() < 1 << 24 and MODEL.escape.sum() < 1 << 24


@pytest.mark.parametrize("field, load", [("klt", klt_rc.load_transform), ("ctx", klt_ctx.load_model)])
def test_a_tampered_pinned_file_is_refused(tmp_path, field, load):
    """Moved here from test_v2 (the transform) and extended to the context model."""
    name, sha = getattr(TAEF2_SPEC, field)
    bad = tmp_path / name
    data = bytearray((Path(core.__file__).parent / "models" / name).read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailable, match="does not match its pinned sha256"):
        load(bad, sha)


# --- decoding order and the integer formulas ------------------------------------------------
@pytest.mark.parametrize("shape", [(32, 5, 7), (3, 1, 1), (4, 6, 2)])
def test_every_neighbour_is_decoded_at_an_earlier_step(shape):
    """Causality of the schedule: t = x + 2y + 4c for every symbol and every neighbour."""
    channels, height, width = shape
    for c in range(channels):
        for y in range(height):
            for x in range(width):
                t = x + 2 * y + 4 * c
                for dc, dy, dx in klt_ctx.NEIGHBOURS:
                    cc, yy, xx = c + dc, y + dy, x + dx
                    if 0 <= cc < channels and 0 <= yy < height and 0 <= xx < width:
                        assert xx + 2 * yy + 4 * cc < t


def reference_contexts(model, q):
    """The documented formulas, symbol by symbol in decoding order, in Python integers."""
    channels, height, width = q.shape
    order = sorted(((x + 2 * y + 4 * c, c, y, x) for c in range(channels) for y in range(height) for x in range(width)))
    decoded, out = set(), []
    for i, (t, c, y, x) in enumerate(order):
        def value(cc, yy, xx):
            inside = 0 <= cc < channels and 0 <= yy < height and 0 <= xx < width
            return int(q[cc, yy, xx]) if inside else 0

        n = [value(c + dc, y + dy, x + dx) for dc, dy, dx in klt_ctx.NEIGHBOURS]
        acc = sum(int(model.energy[cc]) * abs(value(cc, y + dy, x + dx)) for (cc, yy, xx) in decoded
                  for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (yy, xx) == (y + dy, x + dx))  # fmt: skip
        m, s = [int(v) for v in model.mean[c]], [int(v) for v in model.scale[c]]
        fine = (m[0] + sum(w * v for w, v in zip(m[1:], n)) + klt_ctx.HALF_FINE) >> (klt_ctx.SHIFT - klt_ctx.FRACTION_BITS)
        fine = max(-klt_ctx.QMAX << klt_ctx.FRACTION_BITS, min(klt_ctx.QMAX << klt_ctx.FRACTION_BITS, fine))
        a = s[0] + sum(w * abs(v) for w, v in zip(s[1:-1], n)) + s[-1] * acc
        scale_index = sum(1 for th in model.thresholds if th <= a)
        index = (scale_index << klt_ctx.FRACTION_BITS) + (fine & ((1 << klt_ctx.FRACTION_BITS) - 1))
        out.append((fine >> klt_ctx.FRACTION_BITS, index))
        if i + 1 == len(order) or order[i + 1][0] != t:  # a step's symbols are decoded together
            decoded |= {(cc, yy, xx) for (tt, cc, yy, xx) in order if tt == t}
    return out


def test_vectorised_contexts_equal_the_documented_integer_formulas():
    q = np.random.default_rng(0).integers(-6, 7, (6, 4, 5)) * np.array([3, 2, 1, 1, 1, 0])[:, None, None]
    model = dataclasses.replace(MODEL, mean=MODEL.mean[:6], scale=MODEL.scale[:6], energy=MODEL.energy[:6])
    sched, n, acc, symbols = klt_ctx.contexts(model, q)
    mu, index = klt_ctx.predict(model, sched.channel, n, acc)
    assert list(zip(mu.tolist(), index.tolist())) == reference_contexts(model, q)


# --- pack / unpack ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape, scale, units", [((32, 5, 7), 0.2, 410), ((32, 1, 1), 1.0, 64), ((32, 9, 3), 3.0, 40),
                                                 ((32, 4, 4), 0.0, 100)])  # fmt: skip
def test_round_trip_is_exact(shape, scale, units):
    coeffs = np.random.default_rng(1).laplace(0, scale, shape) * np.linspace(1, 0.1, 32)[:, None, None]
    step = units / klt_ctx.STEP_UNIT
    coeffs = np.clip(coeffs, -200 * step, 200 * step)
    back = klt_ctx.unpack(klt_ctx.pack(coeffs, units, MODEL), shape, MODEL)
    assert np.array_equal(back, klt_ctx.quantise(coeffs, step) * step)
    assert np.abs(back - coeffs).max() <= step / 2 + 1e-12


def test_dead_zone_is_the_encoders_choice_only():
    coeffs = np.random.default_rng(2).normal(0, 0.05, (32, 4, 6))
    q_nearest, q_dead = klt_ctx.quantise(coeffs, 0.01), klt_ctx.quantise(coeffs, 0.01, 0.2)
    assert np.all(np.abs(q_dead) <= np.abs(q_nearest)) and np.any(q_dead != q_nearest)
    back = klt_ctx.unpack(klt_ctx.pack(coeffs, 41, MODEL, deadzone=0.2), coeffs.shape, MODEL)
    assert np.array_equal(back, klt_ctx.quantise(coeffs, 41 / 4096, 0.2) * (41 / 4096))


def test_large_residuals_use_the_escape_table():
    q = np.zeros((32, 3, 3))
    q[5, 1, 1], q[0, 2, 2], q[31, 0, 0] = 200, -255, 40  # far outside any prediction's window
    back = klt_ctx.unpack(klt_ctx.pack(q * 0.01, 41, MODEL), q.shape, MODEL)
    assert np.array_equal(np.rint(back / (41 / 4096)), klt_ctx.quantise(q * 0.01, 41 / 4096))


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x00\x00" + b"\x00" * 4, b"\x01\x00" + b"\xff" * 3])
def test_malformed_payloads_are_invalid(payload):
    with pytest.raises(InvalidToken):
        klt_ctx.unpack(payload, (32, 2, 2), MODEL)


def test_a_value_out_of_range_is_invalid():
    rng = np.random.default_rng(3)
    for _ in range(50):  # random words: some decode out of range, none may crash or hang
        payload = b"\x00\x40" + rng.integers(0, 256, 4 * 8, dtype=np.uint8).tobytes()
        try:
            back = klt_ctx.unpack(payload, (32, 3, 3), MODEL)
        except InvalidToken:
            continue
        assert np.abs(back).max() <= klt_ctx.QMAX * 64 / 4096


# --- worked example in docs/token-format.md --------------------------------------------------
EXAMPLE_DOC = Path(__file__).parents[2] / "docs" / "token-format.md"


def example_token() -> str:
    coeffs = np.zeros((32, 1, 2))
    coeffs[0] = [[0.5, -0.25]]
    coeffs[1] = [[0.1, 0.1]]
    return encode_v2.frame(1, (12, 8), (12, 8), coeffs.shape, encode_v2.KLT_CTX, klt_ctx.pack(coeffs, 410, MODEL))


def test_worked_example_ctx_matches_the_spec():
    text = example_token()
    assert f"\n{text}\n" in EXAMPLE_DOC.read_text()  # printed in the spec, character for character
    header, payload = token.unpack(token.from_text(text))
    assert (header.version, header.payload_kind, header.latent_shape) == (2, 5, (32, 1, 2))
    assert payload[:2] == bytes.fromhex("019a")  # step units 410
    q = np.rint(klt_ctx.unpack(payload, (32, 1, 2), MODEL) / (410 / 4096)).astype(int)
    assert q[0].tolist() == [[5, -2]] and q[1].tolist() == [[1, 1]] and not q[2:].any()
    assert codec.inspect(text).payload_kind == "klt-ctx"


# --- through the real model ------------------------------------------------------------------
def test_v2_default_writes_klt_ctx_close_to_the_model(taef2):
    image = photo(96, 64, seed=3)
    result = codec.encode(image, kind="vae-v2")
    info = codec.inspect(result.token)
    assert (info.version, info.payload_kind, info.model) == (2, "klt-ctx", "taef2")
    unquantised = core.render_latent(taef2, core.encode_latent(taef2, image, 0), token.unpack(token.from_text(result.token))[0])
    assert psnr(image, codec.decode(result.token)) >= psnr(image, unquantised) - encode_v2.TARGET_LOSS_DB - 0.5


def test_klt_ctx_is_shorter_than_klt_rc_for_the_same_coefficients(taef2):
    image = photo(160, 120, seed=9)
    transform = core.transform_for(TAEF2_SPEC)
    coeffs, units = encode_v2.refine(taef2, core.image_to_tensor(image, 8), image.size, transform)
    assert len(klt_ctx.pack(coeffs, units, MODEL)) < 0.95 * len(klt_rc.pack(coeffs, units))


def test_synthetic_ctx_token_decodes(taef2):
    text = synthetic_token_ctx(40, 24, seed=1)
    assert codec.decode(text).size == (40, 24)
