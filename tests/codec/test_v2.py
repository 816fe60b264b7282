"""Token version 2: ``klt-rc`` (whitened KLT + per-image step + quantiser-aware refinement)
and ``avif`` (no model). Real TAEF2 where a model runs; synthetic photos, never Kodak."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import codec
from codec import core, encode_v2, klt_ctx, klt_rc, token
from codec.errors import CodecError, InvalidToken
from codec.limits import MAX_UPSCALE_PER_SIDE
from codec.models import TAEF2_SPEC

from .golden_v2.make_golden import klt_rc_token
from .imagegen import avif_token, photo, psnr, synthetic_token, synthetic_token_v2


# --- pinned transform and integer tables (no model) -------------------------------------------
def test_transform_file_is_pinned_and_orthogonal():
    name, sha = TAEF2_SPEC.klt
    path = Path(core.__file__).parent / "models" / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    t = core.transform_for(TAEF2_SPEC)
    assert t.rotation.shape == (32, 32) and t.scale.shape == (32,) and np.all(t.scale > 0)
    assert np.allclose(t.rotation.T @ t.rotation, np.eye(32), atol=1e-5)
    z = np.random.default_rng(0).normal(0, 1, (32, 3, 4))
    assert np.allclose(t.inverse(t.forward(z)), z, atol=1e-5)


def test_integer_pmf_is_the_documented_integer_recurrence():
    assert klt_rc.integer_pmf(0, 1234) == [65536]
    assert klt_rc.integer_pmf(3, 40000) == [770, 9095, 40000, 65536, 40000, 9095, 770]
    table = klt_rc.integer_pmf(255, 65535)
    assert len(table) == 511 and table == table[::-1] and min(table) >= 1
    assert all(isinstance(v, int) for v in table)
    assert klt_rc.integer_pmf(200, 1)[:199] == [1] * 199  # tails floor at 1: every symbol codable


def test_klt_rc_pack_unpack_is_within_half_a_step():
    coeffs = np.random.default_rng(1).normal(0, 0.2, (32, 5, 7))
    back = klt_rc.unpack(klt_rc.pack(coeffs, 410), coeffs.shape)
    assert np.abs(back - coeffs).max() <= 410 / 4096 / 2 + 1e-12


# --- worked example in docs/token-format.md ----------------------------------------------------
EXAMPLE_DOC = Path(__file__).parents[2] / "docs" / "token-format.md"


def example_token() -> str:
    coeffs = np.zeros((32, 1, 2))
    coeffs[0] = [[0.5, -0.25]]
    coeffs[1] = [[0.1, 0.1]]
    return encode_v2.frame(1, (12, 8), (12, 8), coeffs.shape, encode_v2.KLT_RC, klt_rc.pack(coeffs, 410))


def test_worked_example_v2_matches_the_spec():
    text = example_token()
    doc = EXAMPLE_DOC.read_text()
    assert f"\n{text}\n" in doc  # the token printed in the spec, character for character
    data = token.from_text(text)
    assert len(data) == token.OVERHEAD + 2 + 32 * 4 + 4 == 158  # frame, step, table, one coded word
    header, payload = token.unpack(data)
    assert (header.version, header.model_code, header.payload_kind) == (2, 1, 3)
    assert payload[:2] == bytes.fromhex("019a")  # step units 410
    assert payload[2:6] == bytes.fromhex("0204f5f6")  # channel 0: centre 2, radius 4, rho 62966
    assert payload[6:10] == bytes.fromhex("01000001")  # channel 1: centre 1, constant (radius 0)
    assert payload[10:130] == bytes.fromhex("00000001") * 30
    info = codec.inspect(text)
    assert (info.version, info.payload_kind, info.latent_shape) == (2, "klt-rc", (32, 1, 2))


# --- klt-rc end to end (real model) ------------------------------------------------------------
def test_v2_round_trip_keeps_close_to_the_model(taef2):
    image = photo(96, 64, seed=3)
    text = klt_rc_token(image)  # the v2 encoder without the context model
    info = codec.inspect(text)
    assert (info.version, info.payload_kind, info.model) == (2, "klt-rc", "taef2")
    decoded = codec.decode(text)
    assert decoded.size == (96, 64)
    unquantised = core.render_latent(taef2, core.encode_latent(taef2, image, 0), token.unpack(token.from_text(text))[0])
    # the step is chosen per image against the model's own reconstruction
    assert psnr(image, decoded) >= psnr(image, unquantised) - encode_v2.TARGET_LOSS_DB - 0.5
    assert info.chars == len(text)


def test_v2_is_deterministic(taef2):
    image = photo(64, 48, seed=4)
    assert codec.encode(image, kind="vae-v2").token == codec.encode(image, kind="vae-v2").token


@pytest.mark.parametrize("budget", [700, 1200, 3000])
def test_v2_max_chars_is_respected(taef2, budget):
    image = photo(160, 120, seed=5)
    result = codec.encode(image, kind="vae-v2", max_chars=budget)
    info = codec.inspect(result.token)
    assert result.chars <= budget and info.version == 2
    assert info.width <= MAX_UPSCALE_PER_SIDE * info.coded_width
    assert codec.decode(result.token).size == (160, 120)


def _encode_ctx(taef2, image, budget, render):
    return encode_v2.encode_klt(
        image, TAEF2_SPEC, taef2, core.transform_for(TAEF2_SPEC), budget, next_size=core.next_coded_size,
        image_to_tensor=core.image_to_tensor, render=render, context=core.context_for(TAEF2_SPEC),
    )  # fmt: skip


def test_budget_keeps_the_better_of_two_coded_sizes(taef2):
    """Under max_chars, rate control codes a second, smaller size once one fits and keeps the
    token that decodes closer to the image: never worse than the first size alone."""
    image = photo(200, 136, seed=8)
    rendered: list[str] = []

    def render(text: str):
        rendered.append(text)
        return codec.decode(text)

    both = _encode_ctx(taef2, image, 2500, render)
    first_only = _encode_ctx(taef2, image, 2500, None)
    assert len(rendered) == 2 and first_only in rendered and both in rendered  # the two candidates
    sizes = {codec.inspect(t).coded_width for t in rendered}
    assert len(sizes) == 2 and all(len(t) <= 2500 for t in rendered)
    assert psnr(image, codec.decode(both)) == max(psnr(image, codec.decode(t)) for t in rendered)


@pytest.fixture
def steps(monkeypatch) -> list[int]:
    """Counts refinement steps (backward passes)."""
    counted: list[int] = []
    real_backward = encode_v2.torch.Tensor.backward
    monkeypatch.setattr(encode_v2.torch.Tensor, "backward", lambda self, *a, **k: (counted.append(1), real_backward(self, *a, **k)))
    return counted


def test_a_size_that_cannot_fit_skips_the_quantiser_aware_steps(taef2, steps):
    image = photo(96, 64, seed=2)
    x = core.image_to_tensor(image, 8)
    transform = core.transform_for(TAEF2_SPEC)
    coeffs, units = encode_v2.refine(taef2, x, image.size, transform, plain=0, qa=3, step_for=lambda c, u: None)
    assert units is None and coeffs.shape == (32, 8, 12) and steps == []
    coeffs, units = encode_v2.refine(taef2, x, image.size, transform, plain=0, qa=3, step_for=lambda c, u: 2 * u)
    assert units is not None and len(steps) == 3


def test_an_image_left_behind_is_quantised_at_a_finer_step(taef2, steps, monkeypatch):
    """At the default quality: when the quantised output is still more than FLOOR_DB below the
    unquantised reconstruction after the quantiser-aware steps, the token gets a finer step
    (and no further refinement step: encode time)."""
    image = photo(96, 64, seed=6)
    x = core.image_to_tensor(image, 8)
    transform = core.transform_for(TAEF2_SPEC)
    monkeypatch.setattr(encode_v2, "TARGET_LOSS_DB", 6.0)  # STEP_UNITS: finer steps are left to the floor
    monkeypatch.setattr(encode_v2, "FLOOR_DB", 99.0)  # never below the floor
    refinement = encode_v2.PLAIN_STEPS + encode_v2.QA_STEPS
    _, units = encode_v2.refine(taef2, x, image.size, transform)
    assert len(steps) == refinement
    steps.clear()
    monkeypatch.setattr(encode_v2, "FLOOR_DB", -30.0)  # every image is below it...
    monkeypatch.setattr(encode_v2, "CEILING_DB", 200.0)  # ...with no error allowed by the ceiling
    _, finer = encode_v2.refine(taef2, x, image.size, transform)
    assert len(steps) == refinement and finer < units
    steps.clear()
    _, budget_units = encode_v2.refine(taef2, x, image.size, transform, step_for=lambda c, u: u)
    assert budget_units == units  # a budget's step is kept: no floor


def test_gradient_descent_takes_the_barzilai_borwein_step():
    """On an isotropic quadratic (curvature k per unit of normalised gradient) the first step
    is BB_FIRST; the second is the Barzilai-Borwein step 1 / k, which lands on the minimum."""
    target = torch.linspace(-1, 1, 24).reshape(1, 2, 3, 4)
    positions, curvature = 12, 4.0

    def loss(v):  # gradient * positions / 2 = curvature * (v - target)
        error = curvature * torch.sum((v - target) ** 2) / positions
        return error, error

    descent = encode_v2.GradientDescent(positions)
    error, u = descent.step(torch.zeros_like(target), loss)
    assert error == pytest.approx(curvature * float(torch.sum(target**2)) / positions)
    assert torch.allclose(u, encode_v2.BB_FIRST * curvature * target)
    _, u = descent.step(u, loss)
    assert descent.rate == pytest.approx(1 / curvature)
    assert torch.allclose(u, target, atol=1e-5)

    def nearly_flat(v):
        error = 0.01 * torch.sum((v - target) ** 2) / positions
        return error, error

    flat = encode_v2.GradientDescent(positions)
    _, u = flat.step(torch.zeros_like(target), nearly_flat)
    flat.step(u, nearly_flat)
    assert flat.rate == encode_v2.BB_MAX  # 1 / 0.01, capped


def test_no_step_is_finer_than_the_ceiling_needs(monkeypatch):
    """An image the model reproduces almost perfectly gets the coarsest step whose quantisation
    error stays within CEILING_DB, even coarser than STEP_UNITS; without the ceiling its tiny
    unquantised error would ask for ever finer steps."""
    coeffs = np.random.default_rng(5).laplace(0, 0.001, (32, 6, 8))
    units = encode_v2.choose_units(coeffs, 1e-7)
    ladder = encode_v2.usable_ladder(coeffs)
    assert units > encode_v2.STEP_UNITS and encode_v2.quantisation_mse(coeffs, units) <= encode_v2.ceiling_mse()
    assert units == ladder[-1] or encode_v2.quantisation_mse(coeffs, ladder[ladder.index(units) + 1]) > encode_v2.ceiling_mse()
    monkeypatch.setattr(encode_v2, "CEILING_DB", 200.0)
    assert encode_v2.choose_units(coeffs, 1e-7) < encode_v2.STEP_UNITS
    photo_like = np.random.default_rng(5).laplace(0, 0.3, (32, 6, 8))  # the ceiling changes nothing
    monkeypatch.setattr(encode_v2, "CEILING_DB", 40.0)
    with_ceiling = encode_v2.choose_units(photo_like, 1e-3)
    monkeypatch.setattr(encode_v2, "CEILING_DB", 200.0)
    assert with_ceiling == encode_v2.choose_units(photo_like, 1e-3)


def _over_the_floor():
    coeffs = np.random.default_rng(3).laplace(0, 0.05, (32, 6, 8))
    units, floor = encode_v2.usable_ladder(coeffs)[-12], 1.0
    excess = 0.3 * encode_v2.quantisation_mse(coeffs, units)  # a few ladder steps' worth
    return coeffs, units, floor, excess


@pytest.mark.parametrize("met_after", [1, 2, None])
def test_the_floor_step_is_predicted_then_checked_with_decoder_passes(met_after, monkeypatch):
    """No image left behind: the floor's finer step is taken as predicted; with FLOOR_CHECKS
    decoder passes, each check that finds the error still over the floor leads to a finer step
    (and once they are spent, the last prediction stands unchecked)."""
    monkeypatch.setattr(encode_v2, "FLOOR_CHECKS", 2)
    coeffs, units, floor, excess = _over_the_floor()
    checked: list[int] = []

    def quantised_error(u: int) -> float:
        checked.append(u)
        return floor if met_after is not None and len(checked) >= met_after else floor + excess

    chosen = encode_v2._floor_step(coeffs, units, floor + excess, floor, 0.0, quantised_error)
    assert checked == sorted(checked, reverse=True) and all(u < units for u in checked)
    assert len(checked) == (met_after or 2)
    assert chosen == checked[-1] if met_after else chosen < checked[-1]
    assert encode_v2._floor_step(coeffs, units, floor, floor, 0.0, quantised_error) == units  # within: kept


def test_by_default_the_floor_step_costs_no_decoder_pass():
    """FLOOR_CHECKS 0 (the default): the predicted finer step, no decoder pass."""
    coeffs, units, floor, excess = _over_the_floor()
    assert encode_v2.FLOOR_CHECKS == 0

    def quantised_error(u: int) -> float:
        raise AssertionError("no decoder pass expected")

    chosen = encode_v2._floor_step(coeffs, units, floor + excess, floor, 0.0, quantised_error)
    predicted = encode_v2.coarsest_within(coeffs, encode_v2.quantisation_mse(coeffs, units) - excess)
    assert chosen == predicted < units


def test_fitting_step_goes_coarser_when_the_chosen_step_does_not_fit():
    coeffs = np.random.default_rng(4).laplace(0, 0.05, (32, 6, 8))
    model = core.context_for(TAEF2_SPEC)

    def text(c, units):
        return encode_v2.frame(1, (64, 48), (64, 48), c.shape, encode_v2.KLT_CTX, klt_ctx.pack(c, units, model))

    ladder = encode_v2.usable_ladder(coeffs)
    units = ladder[len(ladder) // 3]
    budget = len(text(coeffs, units)) - 40
    found_units, found = encode_v2.fitting_step(coeffs, units, text, budget)
    assert found_units > units and len(found) <= budget and found == text(coeffs, found_units)
    finer = [u for u in ladder if units < u < found_units]
    assert all(len(text(coeffs, u)) > budget for u in finer)  # the first coarser step that fits
    assert encode_v2.fitting_step(coeffs, units, text, 10) is None
    found_units, _ = encode_v2.fitting_step(coeffs, units, text, budget + 400)
    assert found_units < units  # room to spare: a finer step


def test_v2_budget_below_the_minimum_is_refused(taef2):
    floor = codec.minimum_chars("taef2", kind="vae-v2")
    with pytest.raises(CodecError, match=f"needs at least {floor}"):
        codec.encode(photo(32, 32), kind="vae-v2", max_chars=floor - 1)


def test_v2_token_refused_for_a_model_without_v2(taef2):
    with pytest.raises(CodecError, match="has no version 2 format"):
        codec.encode(photo(32, 32), kind="vae-v2", model="taesd")


def test_unknown_kind_is_refused():
    with pytest.raises(CodecError, match="unknown kind 'jpeg'"):
        codec.encode(photo(16, 16), kind="jpeg")


def test_v1_kind_still_writes_version_1(taef2):
    assert codec.inspect(codec.encode(photo(32, 24), kind="vae-v1").token).version == 1


def test_kinds_belong_to_their_version():
    v1 = synthetic_token(16, 16)
    header, payload = token.unpack(token.from_text(v1))
    import dataclasses

    as_v2 = token.to_text(token.pack(dataclasses.replace(header, version=2), payload))  # gauss-rc in v2
    with pytest.raises(InvalidToken, match="unknown payload kind 1"):
        codec.inspect(as_v2)
    header, payload = token.unpack(token.from_text(synthetic_token_v2(16, 16)))
    as_v1 = token.to_text(token.pack(dataclasses.replace(header, version=1), payload))
    with pytest.raises(InvalidToken, match="unknown payload kind 3"):
        codec.inspect(as_v1)


# --- avif ---------------------------------------------------------------------------------------
def test_avif_round_trip_needs_no_model(tmp_path, monkeypatch):
    from codec.models import registry

    image = photo(120, 80, seed=7)
    result = codec.encode(image, kind="avif")
    monkeypatch.setenv("EMMM_MODEL_DIR", str(tmp_path))  # no weights anywhere
    monkeypatch.setenv("EMMM_MODEL_CACHE", str(tmp_path / "cache"))
    registry.unload_all()
    try:
        decoded = codec.decode(result.token)
    finally:
        registry.unload_all()
    info = codec.inspect(result.token)
    assert (info.version, info.payload_kind, info.model, info.latent_shape) == (2, "avif", "", (0, 0, 0))
    assert result.model == "" and decoded.size == (120, 80)
    assert psnr(image, decoded) > 30


def test_avif_bytes_are_the_file_to_serve():
    text = avif_token(40, 30)
    data = codec.avif_bytes(text)
    served = Image.open(io.BytesIO(data), formats=["AVIF"])
    assert served.size == (40, 30)
    assert data == token.unpack(token.from_text(text))[1]
    with pytest.raises(InvalidToken, match="not an avif token"):
        codec.avif_bytes(synthetic_token(16, 16))


@pytest.mark.parametrize("budget", [600, 1000, 4000])
def test_avif_max_chars_is_respected(budget):
    image = photo(200, 150, seed=8)
    result = codec.encode(image, kind="avif", max_chars=budget)
    info = codec.inspect(result.token)
    assert result.chars <= budget
    assert (info.width, info.height) == (200, 150) and info.width <= MAX_UPSCALE_PER_SIDE * info.coded_width
    assert codec.decode(result.token).size == (200, 150)


def test_avif_budget_below_the_minimum_is_refused():
    floor = codec.minimum_chars(kind="avif")
    with pytest.raises(CodecError, match=f"needs at least {floor}"):
        codec.encode(photo(32, 32), kind="avif", max_chars=floor - 1)


def test_avif_token_with_a_model_or_latent_is_refused():
    import dataclasses

    header, payload = token.unpack(token.from_text(avif_token(16, 16)))
    for change in ({"model_code": 1}, {"latent_channels": 32}):
        bad = token.to_text(token.pack(dataclasses.replace(header, **change), payload))
        with pytest.raises(InvalidToken, match="must name no model and no latent shape"):
            codec.inspect(bad)


def test_avif_payload_of_another_size_or_format_is_refused():
    import dataclasses

    header, payload = token.unpack(token.from_text(avif_token(16, 16)))
    bigger = token.to_text(token.pack(dataclasses.replace(header, width=17, coded_width=17), payload))
    with pytest.raises(InvalidToken, match="does not match its declared shape"):
        codec.decode(bigger)
    png = io.BytesIO()
    photo(16, 16).save(png, format="PNG")
    other = token.to_text(token.pack(dataclasses.replace(header, payload_length=len(png.getvalue())), png.getvalue()))
    with pytest.raises(InvalidToken, match="corrupt"):
        codec.decode(other)


def test_avif_tokens_carry_no_colour_profile():
    """Pillow's AVIF writer copied the upload's ICC profile (any size) into the token."""
    from PIL import ImageCms

    from .imagegen import encoded, photo

    picture = photo(64, 48, seed=3)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain = codec.encode(encoded(picture, "PNG"), kind="avif")
    tagged = codec.encode(encoded(picture, "PNG", icc_profile=srgb + b"\0" * 3000), kind="avif")
    assert tagged.chars == plain.chars
    assert "icc_profile" not in codec.decode(tagged.token).info
