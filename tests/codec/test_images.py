"""Reading uploads (codec/images.py): orientation, modes, alpha, animation, limits, bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import codec
from codec.errors import InvalidImage
from codec.images import load_rgb
from codec.limits import MAX_INPUT_PIXELS, MAX_SIDE

from .imagegen import encoded, peak_memory_growth, photo, png_header_only

BIG = 1 << 30  # max_pixels that never downscales these small pictures


def rgb(data, max_pixels: int = BIG) -> np.ndarray:
    image = load_rgb(data, max_pixels=max_pixels)
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def test_exif_orientation_is_applied():
    stored = Image.new("RGB", (40, 20), (255, 0, 0))
    stored.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    data = encoded(stored, "JPEG", quality=95, exif=exif.tobytes())
    out = rgb(data)
    assert out.shape == (40, 20, 3)  # portrait after rotation
    assert np.abs(out[5, 10] - (255, 0, 0)).max() < 40  # left half went to the top
    assert np.abs(out[35, 10] - (0, 0, 255)).max() < 40
    without = rgb(encoded(stored, "JPEG", quality=95))
    assert without.shape == (20, 40, 3)


def test_palette_image():
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    assert (rgb(encoded(image)) == (10, 200, 30)).all()


def test_palette_transparency_is_composited_on_white():
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    image.paste(0, (0, 0, 4, 8))
    out = rgb(encoded(image, "PNG", transparency=0))
    assert (out[:, :4] == 255).all() and (out[:, 4:] == (10, 200, 30)).all()


def test_grayscale():
    assert (rgb(encoded(Image.new("L", (5, 3), 77))) == 77).all()


def test_cmyk():
    image = Image.new("CMYK", (4, 2), (0, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 0))  # pure cyan
    out = rgb(encoded(image, "TIFF"))
    assert (out[0, 0] == 255).all() and tuple(out[0, 1]) == (0, 255, 255)


def test_cmyk_jpeg():
    out = rgb(encoded(Image.new("CMYK", (16, 16), (0, 255, 0, 0)), "JPEG", quality=95))
    assert np.abs(out - (255, 0, 255)).max() < 8  # magenta


def test_16_bit_png():
    array = np.array([[0, 0x8080, 0xFFFF, 0x0101]], dtype=np.uint16)
    data = encoded(Image.fromarray(array))
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    assert rgb(data)[0, :, 0].tolist() == [0, 128, 255, 1]  # the high byte, rounded


def test_float_tiff():
    array = np.array([[0.0, 0.25, 1.0, 0.5]], dtype=np.float32)
    data = encoded(Image.fromarray(array, "F"), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "F"
    assert rgb(data)[0, :, 1].tolist() == [0, 64, 255, 128]
    # values over 1.0 are read as 0..255
    data = encoded(Image.fromarray(np.array([[0.0, 200.0]], dtype=np.float32), "F"), "TIFF")
    assert rgb(data)[0, :, 2].tolist() == [0, 200]


def test_rgba_is_composited_on_white():
    image = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (10, 20, 30, 255))
    image.putpixel((2, 0), (0, 0, 0, 128))
    out = rgb(encoded(image))
    assert tuple(out[0, 0]) == (255, 255, 255)  # fully transparent -> the white background
    assert tuple(out[0, 1]) == (10, 20, 30)
    assert np.abs(out[0, 2] - 127).max() <= 1  # half-transparent black over white
    la = Image.new("LA", (2, 1), (0, 0))
    assert (rgb(encoded(la)) == 255).all()


def test_animated_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 3
    assert (rgb(buf.getvalue()) == (255, 0, 0)).all()


def test_animated_webp_gives_the_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((0, 0, 255), (255, 0, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert (rgb(buf.getvalue()) == (0, 0, 255)).all()


def test_downscale_to_max_pixels_keeps_the_aspect():
    image = load_rgb(encoded(photo(300, 200)), max_pixels=10_000)
    assert image.size == (122, 81)  # floor(300 * sqrt(1/6)), floor(200 * sqrt(1/6))
    jpeg = load_rgb(encoded(photo(800, 600), "JPEG"), max_pixels=10_000)  # through JPEG draft
    assert jpeg.size == (115, 86)
    assert load_rgb(encoded(photo(60, 40)), max_pixels=2400).size == (60, 40)  # exactly at the cap


def test_very_long_images_are_downscaled_to_the_side_limit():
    """Regression: a 20000 x 4 upload used to give a token its own decoder refused
    (width over MAX_SIDE), and 100000 x 2 crashed with struct.error."""
    assert load_rgb(Image.new("RGB", (20000, 4)), max_pixels=BIG).size == (MAX_SIDE, 1)
    assert load_rgb(Image.new("RGB", (100000, 2)), max_pixels=200_000).size == (MAX_SIDE, 1)


def test_accepts_bytes_paths_files_and_pil_images(tmp_path):
    image = photo(20, 10)
    data = encoded(image)
    path = tmp_path / "p.png"
    path.write_bytes(data)
    expected = np.asarray(image)
    for source in (data, bytearray(data), memoryview(data), str(path), path, io.BytesIO(data), image):
        assert (np.asarray(load_rgb(source, max_pixels=BIG)) == expected).all()


def test_probe_reads_the_header_only():
    facts = codec.probe_image(png_header_only(300, 200))  # no pixel data at all
    assert (facts.format, facts.width, facts.height, facts.pixels) == ("PNG", 300, 200, 60_000)


def test_a_multi_picture_jpeg_is_a_jpeg_of_its_first_picture():
    """Pillow names a JPEG with an MPF segment (cameras, phones) "MPO"; it is a JPEG file."""
    first = photo(64, 48, seed=2)
    data = encoded(first, "MPO", save_all=True, append_images=[photo(32, 24, seed=3)], quality=95)
    assert codec.probe_image(data).format == "JPEG"
    out = load_rgb(data, max_pixels=BIG)
    assert out.size == (64, 48) and np.abs(np.asarray(out).astype(int) - np.asarray(first).astype(int)).mean() < 4


def test_pillow_decompression_bomb_is_refused_from_the_header():
    data = png_header_only(100_000, 100_000)  # 10 gigapixels in 57 bytes
    (error, grown) = peak_memory_growth(lambda: pytest.raises(InvalidImage, load_rgb, data, max_pixels=BIG))
    assert "too many pixels" in str(error.value)
    assert grown < 64 << 20  # decoding even one row would not fit this; pixels were never allocated


def test_own_pixel_limit_is_checked_from_the_header():
    side = int(MAX_INPUT_PIXELS**0.5) + 100  # just over our cap, under Pillow's bomb threshold
    data = png_header_only(side, side)
    for call in (lambda: load_rgb(data, max_pixels=BIG), lambda: codec.probe_image(data)):
        (error, grown) = peak_memory_growth(lambda: pytest.raises(InvalidImage, call))
        assert f"the limit is {MAX_INPUT_PIXELS:,}" in str(error.value)
        assert grown < 64 << 20  # 3 bytes x 50 megapixels would be 150 MB


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        b"hello, this is just text\n",
        b"",
        b"\x00" * 64,
        b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>",
    ],
    ids=["pdf", "text", "empty", "zeros", "svg"],
)
def test_unsupported_data_is_invalid_image(data):
    with pytest.raises(InvalidImage, match="not an image in a supported format"):
        load_rgb(data, max_pixels=BIG)


@pytest.mark.parametrize("fmt", ["ICO", "PPM", "TGA", "PCX"])
def test_formats_pillow_knows_but_we_do_not_accept(fmt):
    data = encoded(Image.new("RGB", (16, 16), (1, 2, 3)), fmt)
    with pytest.raises(InvalidImage, match=r"supported format \(JPEG, PNG, WEBP, GIF, BMP, TIFF, AVIF\)"):
        codec.probe_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_truncated_files_are_invalid_image(fmt):
    data = encoded(photo(64, 64), fmt)
    with pytest.raises(InvalidImage, match="corrupt or truncated|unreadable|supported format"):
        load_rgb(data[: len(data) // 2], max_pixels=BIG)
    with pytest.raises(InvalidImage):
        load_rgb(data[:12], max_pixels=BIG)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidImage, match="no such file"):
        load_rgb(tmp_path / "nope.png", max_pixels=BIG)


def test_grey_and_rgb_pngs_with_a_transparent_colour_are_composited_on_white():
    """A tRNS colour key (not only a palette's) marks transparent pixels; they came out black."""
    grey = Image.new("L", (8, 4), 0)
    grey.paste(90, (4, 0, 8, 4))
    out = rgb(encoded(grey, "PNG", transparency=0))
    assert (out[:, :4] == 255).all() and (out[:, 4:] == 90).all()
    colour = Image.new("RGB", (8, 4), (0, 0, 0))
    colour.paste((10, 200, 30), (4, 0, 8, 4))
    out = rgb(encoded(colour, "PNG", transparency=(0, 0, 0)))
    assert (out[:, :4] == 255).all() and (out[:, 4:] == (10, 200, 30)).all()


def test_an_embedded_colour_profile_is_converted_to_srgb():
    """A Display P3 photo's values mean other colours than sRGB's; a colour-managed viewer shows
    them converted, and so must the token (they were taken as sRGB)."""
    from PIL import ImageCms

    from .imagegen import DISPLAY_P3, rgb_icc_profile

    icc = rgb_icc_profile(*DISPLAY_P3)
    picture = Image.new("RGB", (16, 8), (40, 200, 60))
    data = encoded(picture, "PNG", icc_profile=icc)
    expected = ImageCms.profileToProfile(picture, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"))
    out = load_rgb(data, max_pixels=BIG)
    assert np.abs(np.asarray(out).astype(int) - np.asarray(expected).astype(int)).max() <= 1
    assert np.abs(np.asarray(out).astype(int)[0, 0] - (40, 200, 60)).max() > 20  # not the raw values
    assert "icc_profile" not in out.info  # the pixels are sRGB now
    # A profile that cannot be read leaves the values as they are.
    assert (rgb(encoded(picture, "PNG", icc_profile=b"not a profile")) == (40, 200, 60)).all()


def test_jpegs_are_coded_at_the_stored_size_the_site_announces():
    """JPEGs are decoded at a reduced DCT scale first (draft); the size was then worked out from
    the drafted size and could be a pixel off ``codec.stored_size`` (1002x2549: 320x816, not 321)."""
    for size in [(1002, 2549), (2549, 1002), (1500, 1001), (777, 2999), (3000, 523)]:
        data = encoded(Image.new("RGB", size, (120, 130, 140)), "JPEG", quality=50)
        assert load_rgb(data, max_pixels=codec.DEFAULT_MAX_PIXELS).size == codec.stored_size(*size), size
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the announced size is the upright one
    data = encoded(Image.new("RGB", (2549, 1002), (120, 130, 140)), "JPEG", quality=50, exif=exif.tobytes())
    assert load_rgb(data, max_pixels=codec.DEFAULT_MAX_PIXELS).size == codec.stored_size(1002, 2549)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "I;16"])
def test_large_alpha_and_16_bit_images_load_in_bounded_memory(mode):
    """A 12 MP picture with alpha (or 16 bits a sample) took 4-5 full-size copies (RGBA
    composites, float64 arrays) before the downscale: compositing now follows it."""
    size = (4000, 3000)
    if mode == "I;16":
        picture = Image.fromarray((np.arange(size[0], dtype=np.uint16)[None, :] * 16).repeat(size[1], 0))
    else:
        picture = Image.new(mode, size, (10, 200, 30, 128) if mode == "RGBA" else (90, 128))
    data = encoded(picture, "PNG", compress_level=1)
    decoded_rgba = size[0] * size[1] * 4  # Pillow holds the decoded picture in 4 bytes a pixel
    (image, grown) = peak_memory_growth(lambda: load_rgb(data, max_pixels=codec.DEFAULT_MAX_PIXELS))
    assert image.size == codec.stored_size(*size)
    assert grown < 3 * decoded_rgba, f"{grown / 2**20:.0f} MiB for a {decoded_rgba / 2**20:.0f} MiB picture"
