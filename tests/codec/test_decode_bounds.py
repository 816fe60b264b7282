"""Issue 8.3: the work a token can ask of the decoder is bounded relative to what it codes.

Rules (docs/token-format.md, "Limits"): the declared output is at most 1,048,576 pixels (the
encoder never wrote more: it caps the encoded image at MAX_CODED_PIXELS), and at most
``max_upscale_area(version)`` times the coded area: 16,384 for version 1 (what v1's rate
control could reach: a 1 MP image coded at 8 x 8), 64 (8x per side) for later versions, which
the encoder also enforces for every token it writes from now on.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

import codec
from codec import token
from codec.errors import CodecError, InvalidToken
from codec.limits import MAX_OUTPUT_PIXELS, MAX_UPSCALE_PER_SIDE, MIN_CODED_SIDE, max_upscale_area


def header(**changes) -> token.Header:
    base = token.Header(version=1, model_code=1, width=64, height=48, coded_width=64, coded_height=48,
                        latent_channels=32, latent_height=6, latent_width=8, payload_kind=1, payload_length=5)
    return dataclasses.replace(base, **changes)


def test_output_is_at_most_one_megapixel():
    assert MAX_OUTPUT_PIXELS == 1024 * 1024
    token.check_sizes(header(width=1024, height=1024, coded_width=1024, coded_height=1024))
    with pytest.raises(InvalidToken, match="declares an image of 1025x1024"):
        token.check_sizes(header(width=1025, height=1024, coded_width=1024, coded_height=1024))
    with pytest.raises(InvalidToken, match="declares an image of 4096x4096"):  # the crafted token
        token.check_sizes(header(width=4096, height=4096, coded_width=1024, coded_height=1024))


def test_version_1_allows_what_its_rate_control_could_write():
    assert max_upscale_area(1) == 16384
    token.check_sizes(header(width=1024, height=1024, coded_width=8, coded_height=8))
    with pytest.raises(InvalidToken, match="more than 16384x its coded area"):
        token.check_sizes(header(width=1024, height=1024, coded_width=7, coded_height=8))
    with pytest.raises(InvalidToken, match="more than 16384x its coded area"):
        token.check_sizes(header(width=1024, height=1024, coded_width=1, coded_height=1))


def test_version_2_allows_a_small_factor_only():
    assert MAX_UPSCALE_PER_SIDE == 8 and max_upscale_area(2) == 64
    token.check_sizes(header(version=2, width=800, height=600, coded_width=100, coded_height=75))
    with pytest.raises(InvalidToken, match="more than 8x its coded"):
        token.check_sizes(header(version=2, width=801, height=600, coded_width=100, coded_height=75))
    with pytest.raises(InvalidToken, match="more than 8x its coded"):
        token.check_sizes(header(version=2, width=800, height=601, coded_width=100, coded_height=75))


def test_version_2_may_code_a_side_under_16_pixels_at_16():
    """A side under MIN_CODED_SIDE (two latent pixels) may be coded larger, up to it; nothing else
    may be coded larger than it is shown, and version 1 never."""
    assert MIN_CODED_SIDE == 16
    token.check_sizes(header(version=2, width=8, height=1, coded_width=16, coded_height=16))
    token.check_sizes(header(version=2, width=300, height=3, coded_width=300, coded_height=16))
    for sizes in (dict(width=8, coded_width=17), dict(width=16, coded_width=17), dict(width=20, coded_width=24)):
        with pytest.raises(InvalidToken, match="over the limits"):
            token.check_sizes(header(version=2, **sizes))
    with pytest.raises(InvalidToken, match="over the limits"):
        token.check_sizes(header(version=1, width=8, height=8, coded_width=16, coded_height=16))


def test_decode_refuses_before_allocating():
    from .imagegen import peak_memory_growth

    bad = header(width=1024, height=1024, coded_width=1, coded_height=1, latent_height=1, latent_width=1)
    text = token.to_text(token.pack(dataclasses.replace(bad, payload_length=3), b"abc"))

    def run():
        with pytest.raises(InvalidToken, match="coded area"):
            codec.inspect(text)

    _, grown = peak_memory_growth(run)
    assert grown < 16 << 20


def photo(size: tuple[int, int]) -> bytes:
    import io

    rng = np.random.default_rng(1)
    y, x = np.mgrid[: size[1], : size[0]]
    base = np.stack([np.sin(x / 7.0) * 60 + 120, np.cos(y / 5.0) * 50 + 110, (x + y) % 200], axis=-1)
    pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kind, budget", [("vae-v1", 300), ("vae-v2", 50)])  # over each floor (254, 46)
def test_encoder_refuses_a_budget_that_needs_a_larger_factor(taef2, kind, budget):
    with pytest.raises(CodecError, match=f"max_chars={budget} is too small for this image"):
        codec.encode(photo((256, 192)), max_chars=budget, kind=kind)


def test_next_coded_size_shrinks_the_long_side_of_a_thin_image():
    """A side already under the model's multiple (8 px) stays; the other still shrinks (all sizes
    were refused once one side was under 8, so a 1600x6 strip fitted no budget below its default)."""
    from codec.core import next_coded_size

    assert next_coded_size((1600, 6), (1600, 6), 0.9, 8, 500) == (1440, 6)
    assert next_coded_size((100, 10), (72, 8), 0.9, 8, 500) == (64, 8)  # 8 is the least it goes to
    assert next_coded_size((400, 300), (200, 150), 0.5, 8, 500) == (100, 75)  # as before elsewhere
    with pytest.raises(CodecError, match="max_chars=500 is too small for this image"):
        next_coded_size((1600, 6), (200, 6), 0.9, 8, 500)  # 8x smaller already


def test_a_thin_image_fits_a_budget_by_coding_it_narrower(taef2):
    strip = np.asarray(Image.open(io.BytesIO(photo((1600, 64)))))[29:35]  # 1600x6
    plain = codec.encode(Image.fromarray(strip))
    result = codec.encode(Image.fromarray(strip), max_chars=plain.chars * 6 // 10)
    info = codec.inspect(result.token)
    assert result.chars <= plain.chars * 6 // 10
    assert info.coded_height == MIN_CODED_SIDE and info.coded_width < 1600  # 6 rows coded as 16
    assert codec.decode(result.token).size == (1600, 6)


def test_encoder_never_writes_a_larger_factor(taef2):
    result = codec.encode(photo((256, 192)), max_chars=900)
    info = codec.inspect(result.token)
    assert result.chars <= 900
    assert info.coded_width < info.width  # rate control had to downscale
    assert info.width <= MAX_UPSCALE_PER_SIDE * info.coded_width
    assert info.height <= MAX_UPSCALE_PER_SIDE * info.coded_height


def test_an_avif_token_whose_file_understates_its_frame_is_refused_before_decoding():
    """An avif token's file says 16x16 (its ``ispe`` box, what Pillow reports and the header
    check compares) but carries a 3000x3000 AV1 frame: the decoder would allocate for the frame."""
    import struct

    from codec import encode_v2

    from .imagegen import peak_memory_growth

    buf = io.BytesIO()
    Image.new("RGB", (3000, 3000)).save(buf, format="AVIF", quality=0, speed=10, subsampling="4:4:4")
    lying = bytearray(buf.getvalue())
    at = lying.find(b"ispe")
    struct.pack_into(">II", lying, at + 8, 16, 16)
    text = encode_v2.frame(0, (16, 16), (16, 16), (0, 0, 0), encode_v2.AVIF, bytes(lying))

    def run():
        with pytest.raises(InvalidToken):
            codec.decode(text)

    _, grown = peak_memory_growth(run)
    assert grown < 16 << 20, grown >> 20


def test_avif_tokens_the_encoder_writes_decode_at_every_size(taef2):
    from .imagegen import photo as synthetic_photo

    for size in [(1, 1), (16, 9), (300, 200), (1024, 768)]:
        text = codec.encode(synthetic_photo(*size), kind="avif").token
        info = codec.inspect(text)
        assert codec.decode(text).size == (info.width, info.height)
