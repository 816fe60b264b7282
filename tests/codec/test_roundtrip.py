"""encode -> decode on the real TAEF2 weights: sizes, quality floor, rate control."""

from __future__ import annotations

import numpy as np
import pytest

import codec
from codec.errors import CodecError
from codec.limits import MIN_CODED_SIDE

from .imagegen import encoded, photo, psnr

#: Quality floor for the default encode (refinement on) of the synthetic photos below.
#: Measured 2026-11-21 on 15 photo() images (sizes 128x96, 100x75, 131x97, 96x128, 120x90,
#: seeds 0-2; TAEF2, CPU): PSNR 30.7 - 33.5 dB, mean 32.0 (without refinement: 28.2 - 31.7).
#: The added noise (sigma 4) alone caps the PSNR near 36 dB. The floor keeps ~2.7 dB of
#: margin below the worst measurement for CPU/thread float differences; a broken model,
#: quantiser or colour path lands far below it (a flat grey guess scores ~12 dB).
PSNR_FLOOR_DB = 28.0


@pytest.mark.parametrize("size, seed", [((128, 96), 0), ((100, 75), 1), ((131, 97), 2)])
def test_round_trip_quality_and_size(size, seed, taef2):
    image = photo(*size, seed=seed)
    result = codec.encode(encoded(image))
    assert (result.width, result.height, result.model) == (*size, "taef2")
    assert result.chars == len(result.token)
    decoded = codec.decode(result.token)
    assert decoded.mode == "RGB" and decoded.size == size
    assert psnr(image, decoded) >= PSNR_FLOOR_DB


def test_grey_guess_is_below_the_floor():
    """The floor is meaningful: a decoder that returned a flat picture would fail it."""
    from PIL import Image

    image = photo(128, 96, seed=0)
    assert psnr(image, Image.new("RGB", image.size, (128, 128, 128))) < PSNR_FLOOR_DB - 10


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (9, 17), (61, 45)])
@pytest.mark.parametrize("kind", ["vae-v1", "vae-v2"])
def test_any_size_round_trips_to_the_exact_size(size, kind, taef2):
    result = codec.encode(photo(*size, seed=1), refine_steps=0, kind=kind)
    assert codec.decode(result.token).size == size
    info = codec.inspect(result.token)
    # v2 codes a side under 16 pixels at 16 (two latent pixels); v1 codes every side as it is
    coded = size if kind == "vae-v1" else tuple(max(side, MIN_CODED_SIDE) for side in size)
    assert (info.coded_width, info.coded_height) == coded
    assert info.latent_shape == (32, -(-coded[1] // 8), -(-coded[0] // 8))


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (40, 3)])
def test_a_tiny_flat_image_keeps_its_colour(size, taef2):
    """At one latent pixel a side the model gets colours wrong (an 8x8 (20, 200, 60) came back
    about (75, 150, 90)); coded at 16 pixels a side it keeps them."""
    from PIL import Image

    colour = (20, 200, 60)
    decoded = codec.decode(codec.encode(Image.new("RGB", size, colour)).token)
    assert decoded.size == size
    mean = np.asarray(decoded, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    assert np.abs(mean - colour).max() < 15, mean


def test_v2_rate_control_never_codes_a_side_under_16_pixels(taef2):
    image = photo(400, 20, seed=3)
    plain = codec.encode(image, refine_steps=0)
    result = codec.encode(image, max_chars=plain.chars // 3, refine_steps=0)
    info = codec.inspect(result.token)
    assert result.chars <= plain.chars // 3
    assert info.coded_width < 400 and info.coded_height == MIN_CODED_SIDE
    assert codec.decode(result.token).size == (400, 20)


def test_max_pixels_downscales_the_token(taef2):
    result = codec.encode(photo(120, 90), max_pixels=3000, refine_steps=0)
    assert (result.width, result.height) == (63, 47)
    assert codec.decode(result.token).size == (63, 47)


@pytest.mark.parametrize("max_chars", [300, 600, 1200, 2500])
def test_rate_control_never_exceeds_max_chars(max_chars, taef2):
    image = photo(128, 96, seed=5)
    result = codec.encode(image, max_chars=max_chars, refine_steps=0)
    assert result.chars == len(result.token) <= max_chars
    decoded = codec.decode(result.token)
    assert decoded.size == (128, 96)  # always the original size, even when coded smaller
    if max_chars >= 2500:  # more than the default step needs: full size, a finer step
        assert codec.inspect(result.token).coded_width == 128
        assert result.chars > len(codec.encode(image, refine_steps=0).token)


def test_budget_needing_a_downscale_still_decodes_at_the_original_size(taef2):
    image = photo(128, 96, seed=6)
    plain = codec.encode(image, refine_steps=0)
    result = codec.encode(image, max_chars=plain.chars // 3, refine_steps=0)
    info = codec.inspect(result.token)
    assert result.chars <= plain.chars // 3
    assert info.coded_width < 128 and info.coded_height < 96
    assert abs(info.coded_width / info.coded_height - 128 / 96) < 0.1  # aspect kept
    decoded = codec.decode(result.token)
    assert decoded.size == (128, 96)
    assert psnr(image, decoded) > 20  # blurrier, but the same picture


def test_more_characters_never_hurt(taef2):
    image = photo(96, 64, seed=7)
    scores = [psnr(image, codec.decode(codec.encode(image, max_chars=n, refine_steps=0).token)) for n in (400, 1600)]
    assert scores[1] > scores[0]


def test_too_small_max_chars_names_the_minimum():
    floor = codec.minimum_chars("taef2", kind="vae-v1")
    assert floor == 254  # 190 bytes: framing + parameter table + one coder word
    with pytest.raises(CodecError, match=f"max_chars=100 is too small: a taef2 token needs at least {floor}"):
        codec.encode(photo(16, 16), max_chars=100, kind="vae-v1")


def test_too_small_max_chars_names_the_minimum_of_v2():
    floor = codec.minimum_chars("taef2", kind="vae-v2")
    # klt-ctx: the token of the smallest latent (2x2, a side under 16 px is coded at 16) whose
    # symbols are all zero: framing, the 2-byte step and two coder words (it was 40, one word,
    # for the 1x1 latent the encoder no longer writes: budgets of 40-45 were accepted, then
    # failed in the worker)
    assert floor == codec.minimum_chars("taef2") == 46
    with pytest.raises(CodecError, match=f"max_chars=45 is too small: a taef2 token needs at least {floor}"):
        codec.encode(photo(16, 16), max_chars=45)
    from PIL import Image

    assert codec.encode(Image.new("RGB", (1, 1), (90, 140, 200)), max_chars=floor).chars == floor  # reachable


def test_unknown_model_and_bad_max_pixels():
    with pytest.raises(CodecError, match="unknown model 'nope'; available: .*taef2"):
        codec.encode(photo(16, 16), model="nope")
    with pytest.raises(CodecError, match="max_pixels must be positive"):
        codec.encode(photo(16, 16), max_pixels=0)


@pytest.mark.parametrize("name", ["max_pixels", "max_chars"])
@pytest.mark.parametrize("value", [float("nan"), 40.5, True, "500"])
def test_max_pixels_and_max_chars_must_be_whole_numbers(name, value):
    """max_pixels=nan slipped past every comparison: the size cap was skipped and the token
    (coded at full size) could never be decoded; max_chars=nan was silently ignored."""
    with pytest.raises(CodecError, match=f"{name} must be a whole number"):
        codec.encode(photo(16, 16), **{name: value})
