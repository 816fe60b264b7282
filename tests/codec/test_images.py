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


# --- hostile headers: what the decoder would allocate is checked before it does -------------


def tiled_tiff(width: int, height: int, tile: tuple[int, int] | None, *, rows_per_strip: int | None = None,
               orientation: int | None = None) -> bytes:
    """An 8-bit grey TIFF whose one tile (or strip) is deflate data of 128s, with any geometry
    (a tile of more than 65536 pixels gets 64 bytes: only the header matters there)."""
    import struct
    import zlib

    samples = tile[0] * tile[1] if tile else width * height
    data = zlib.compress(b"\x80" * (samples if samples <= 1 << 16 else 64))
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1), (277, 3, 1)]
    if orientation is not None:
        entries.append((274, 3, orientation))
    if tile:
        entries += [(322, 4, tile[0]), (323, 4, tile[1]), (324, 4, None), (325, 4, len(data))]
    else:
        entries += [(273, 4, None), (278, 4, rows_per_strip or height), (279, 4, len(data))]
    entries.sort()
    data_at = 8 + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\0" + struct.pack("<IH", 8, len(entries)))
    for tag, kind, value in entries:
        value = data_at if value is None else value
        out += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
    return bytes(out + b"\0\0\0\0" + data)


def test_a_tiff_tile_far_larger_than_its_picture_is_refused_from_the_header():
    """A 146-byte TIFF declaring a 16x16 picture in one 46336x46336 deflate tile passed the
    pixel check (256 pixels), then libtiff allocated the tile: 2 GiB."""
    data = tiled_tiff(16, 16, (16384, 16384))  # 256 MiB for the tile if it were decoded
    for call in (lambda: codec.probe_image(data), lambda: load_rgb(data, max_pixels=BIG)):
        (error, grown) = peak_memory_growth(lambda: pytest.raises(InvalidImage, call))
        assert "tile" in str(error.value)
        assert grown < 32 << 20


def test_tiffs_with_ordinary_tiles_and_strips_still_load():
    assert (rgb(tiled_tiff(16, 16, (256, 256))) == 128).all()  # a tile larger than a small picture is normal
    assert (rgb(tiled_tiff(40, 24, (48, 32))) == 128).all()
    for rows in (16, (1 << 32) - 1):  # one strip for the whole picture: its rows, or the usual "infinite" value
        assert rgb(tiled_tiff(16, 16, None, rows_per_strip=rows)).shape == (16, 16, 3)
    # Strips need no check of their own: libtiff never holds more of one than the picture's rows.
    (_, grown) = peak_memory_growth(lambda: pytest.raises(InvalidImage, rgb, tiled_tiff(16, 16, None, rows_per_strip=1 << 31)))
    assert grown < 32 << 20


def lying_avif(real: int, declared: int = 16) -> bytes:
    """An AVIF whose ``ispe`` box declares declared x declared and whose AV1 frame is real x real."""
    import struct

    data = bytearray(encoded(Image.new("RGB", (real, real), (0, 0, 0)), "AVIF", quality=0, speed=10))
    at = data.find(b"ispe")
    struct.pack_into(">II", data, at + 8, declared, declared)
    return bytes(data)


def test_an_avif_whose_header_understates_its_frame_is_refused_before_decoding():
    """The ``ispe`` box said 16x16, the AV1 frame was 12000x12000: 519 MiB decoded for a
    picture that had passed the pixel check."""
    data = lying_avif(512)
    assert Image.open(io.BytesIO(data)).size == (16, 16)  # what Pillow reports
    for call in (lambda: codec.probe_image(data), lambda: load_rgb(data, max_pixels=BIG)):
        with pytest.raises(InvalidImage, match="AV1 frame"):
            call()


def test_avif_frames_are_read_from_their_headers():
    from codec.avif_frames import largest_frame

    assert largest_frame(lying_avif(512)) == (512, 512)
    assert largest_frame(encoded(Image.new("RGBA", (41, 23), (1, 2, 3, 100)), "AVIF")) == (41, 23)  # with an alpha item
    frames = [Image.new("RGB", (30, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    animated = encoded(frames[0], "AVIF", save_all=True, append_images=frames[1:])  # a track, not an item
    assert largest_frame(animated) == (30, 20)
    assert np.abs(rgb(animated) - (255, 0, 0)).max() < 8
    for broken in (b"", animated[:200], b"\0\0\0\x08ftyp"):
        with pytest.raises(ValueError):
            largest_frame(broken)


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF", "WEBP", "PNG", "AVIF"])
def test_quarter_turned_pictures_are_upright_and_probed_upright_in_every_format(fmt):
    """A TIFF with Orientation 6 came out 64x32, stretched: Pillow already turns TIFFs as it
    reads them, and the size was swapped a second time. probe_image reported TIFFs upright and
    the others as stored."""
    stored = Image.new("RGB", (64, 32), (255, 0, 0))
    stored.paste((0, 0, 255), (32, 0, 64, 32))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display: 32 x 64, red on top
    if fmt == "TIFF":
        from PIL import TiffImagePlugin

        ifd = TiffImagePlugin.ImageFileDirectory_v2()
        ifd[0x0112] = 6
        data = encoded(stored, fmt, tiffinfo=ifd)
    else:
        data = encoded(stored, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt in ("JPEG", "WEBP", "AVIF") else {}))
    facts = codec.probe_image(data)
    assert (facts.width, facts.height) == (32, 64)
    out = rgb(data)
    assert out.shape == (64, 32, 3)
    assert np.abs(out[8, 16] - (255, 0, 0)).max() < 40 and np.abs(out[56, 16] - (0, 0, 255)).max() < 40
    assert load_rgb(data, max_pixels=512).size == codec.stored_size(32, 64, 512) == (16, 32)


@pytest.mark.parametrize("mode", ["F", "I"])
def test_large_float_and_32_bit_images_load_in_bounded_memory(mode):
    """A float (F) or 32-bit (I) picture took about 30 bytes a pixel: several full-size
    float64 copies. Converted a band of rows at a time now, as 16-bit pictures are."""
    size = (4000, 3000)
    ramp = np.linspace(0, 1 if mode == "F" else 4000, size[0], dtype=np.float32 if mode == "F" else np.int32)
    data = encoded(Image.fromarray(np.ascontiguousarray(np.broadcast_to(ramp, size[::-1])), mode), "TIFF",
                   compression="tiff_adobe_deflate")
    decoded_rgba = size[0] * size[1] * 4
    (image, grown) = peak_memory_growth(lambda: load_rgb(data, max_pixels=codec.DEFAULT_MAX_PIXELS))
    assert image.size == codec.stored_size(*size)
    assert grown < 3 * decoded_rgba, f"{grown / 2**20:.0f} MiB for a {decoded_rgba / 2**20:.0f} MiB picture"


def test_float_values_that_are_not_numbers_are_black_without_warnings():
    import warnings

    array = np.array([[np.nan, 0.5, np.inf, -np.inf, 1.0]], dtype=np.float32)
    data = encoded(Image.fromarray(array, "F"), "TIFF")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rgb(data)[0, :, 0].tolist() == [0, 128, 255, 0, 255]
    integers = encoded(Image.fromarray(np.array([[-7, 300, 70000]], dtype=np.int32), "I"), "TIFF")
    assert rgb(integers)[0, :, 0].tolist() == [0, 1, 255]  # over 255: a 16-bit scale, clipped


def png_with_key(pixels: np.ndarray, depth: int, colour_type: int, key: tuple[int, ...]) -> bytes:
    """A PNG of ``pixels`` (rows of samples at ``depth`` bits) with a tRNS colour ``key``."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    height, width = pixels.shape[:2]
    rows = []
    for row in pixels.reshape(height, -1):
        if depth == 16:
            rows.append(b"\0" + row.astype(">u2").tobytes())
        else:
            bits = "".join(format(int(v), f"0{depth}b") for v in row)
            bits += "0" * (-len(bits) % 8)
            rows.append(b"\0" + bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tRNS", struct.pack(f">{len(key)}H", *key))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("depth", [1, 2, 4, 8, 16])
def test_a_grey_png_colour_key_is_applied_at_every_bit_depth(depth):
    """Keys of 1/2/4/16-bit grey PNGs were ignored or compared on the wrong scale: transparent
    pixels came out black, and other pixels turned white."""
    top = (1 << depth) - 1
    for key, other in ((0, top), (top, 0), (1, 0)):
        if key == other:
            continue
        pixels = np.array([[key] * 4 + [other] * 4] * 2)
        out = rgb(png_with_key(pixels, depth, 0, (key,)))
        expected_other = round(other * 255 / top)
        assert out[:, :4].tolist() == [[[255] * 3] * 4] * 2, (key, out[0].tolist())  # transparent: white
        assert (out[:, 4:] == expected_other).all(), (key, out[0].tolist())  # the rest as it is


def test_a_16_bit_rgb_png_colour_key_never_whitens_other_colours():
    """Pillow reads 16-bit RGB at 8 bits (the high bytes) and keeps the 16-bit key: the key
    (0, 0, 255) made every pure-blue pixel white. The key cannot be matched exactly at 8 bits,
    so it is not applied (those pixels show their colour)."""
    pixels = np.zeros((2, 8, 3), np.uint16)
    pixels[:, :4] = (10000, 50000, 20000)
    pixels[:, 4:] = (0, 0, 65535)
    for key in ((0, 0, 255), (10000, 50000, 20000)):
        out = rgb(png_with_key(pixels, 16, 2, key))
        assert (out[:, 4:] == (0, 0, 255)).all() and (out[:, :4] == (39, 195, 78)).all(), key


# --- the caller's objects and the process's state are left as they were ---------------------


def test_encoding_a_pil_image_does_not_change_it():
    """An unloaded 2000x1500 JPEG became 1000x750 (JPEG draft); a GIF at frame 2 was put back
    at frame 0, and its first frame encoded instead of the one shown."""
    jpeg = Image.open(io.BytesIO(encoded(Image.new("RGB", (2000, 1500), (120, 30, 200)), "JPEG")))
    load_rgb(jpeg, max_pixels=10_000)
    assert jpeg.size == (2000, 1500) and jpeg.mode == "RGB"
    frames = [Image.new("RGB", (32, 24), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    gif = Image.open(io.BytesIO(encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])))
    gif.seek(2)
    out = rgb(gif)
    assert gif.tell() == 2 and (out == (0, 0, 255)).all()  # the frame the caller holds
    picture = Image.new("RGB", (8, 8), (40, 200, 60))
    picture.info["icc_profile"] = b"not a profile"
    assert load_rgb(picture, max_pixels=BIG) is not picture and picture.info["icc_profile"] == b"not a profile"


def test_reading_images_leaves_the_warning_filters_alone(monkeypatch):
    """warnings.catch_warnings is not thread-safe (it swaps the process-wide filter list): four
    threads reading images left an ('error', DecompressionBombWarning) filter in the process.
    The pixel check needs none: Pillow opens and decodes with the process's own filters."""
    import threading
    import warnings

    from PIL import ImageFile

    filters = warnings.filters
    swapped = []
    real_open, real_load = Image.open, ImageFile.ImageFile.load

    def spy_open(*args, **kwargs):
        swapped.append(warnings.filters is not filters)
        return real_open(*args, **kwargs)

    def spy_load(self, *args, **kwargs):
        swapped.append(warnings.filters is not filters)
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy_open)
    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    data = encoded(photo(24, 16))
    results = []
    threads = [threading.Thread(target=lambda: results.append(rgb(data).shape)) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == [(16, 24, 3)] * 4
    assert codec.probe_image(data).width == 24
    with pytest.raises(InvalidImage, match="too many pixels"):  # the bomb checks still refuse
        load_rgb(png_header_only(100_000, 100_000), max_pixels=BIG)
    assert swapped and not any(swapped) and warnings.filters is filters


def test_files_opened_from_a_path_are_closed(tmp_path):
    import gc
    import warnings

    frames = [Image.new("RGB", (32, 24), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "s.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for path in (tmp_path / "a.gif", tmp_path / "s.png"):
            codec.probe_image(path)
            load_rgb(str(path), max_pixels=BIG)
        with pytest.raises(InvalidImage):
            codec.probe_image(tmp_path / "bad.png")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_an_in_memory_premultiplied_la_picture_is_accepted():
    """'La' was refused as "corrupt or truncated"."""
    picture = Image.new("LA", (4, 2), (0, 255))
    picture.paste((100, 0), (2, 0, 4, 2))
    out = rgb(picture.convert("La"))
    assert (out[:, :2] == 0).all() and (out[:, 2:] == 255).all()


def test_an_avif_frame_that_may_override_its_size_counts_at_the_largest_its_fields_allow(monkeypatch):
    """A frame header with frame_size_override_flag set carries its own size, up to
    2^frame_width_bits x 2^frame_height_bits, whatever the sequence header's maximum says."""
    from codec import avif_frames

    frames = [Image.new("RGB", (30, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = bytearray(encoded(frames[0], "AVIF", save_all=True, append_images=frames[1:]))  # not a reduced header
    assert avif_frames.largest_frame(bytes(data)) == (30, 20)
    reads = []  # (payload, bit position) of every field the frame header parser reads
    real_f = avif_frames._Bits.f
    monkeypatch.setattr(avif_frames._Bits, "f", lambda self, n: reads.append((self.data, self.pos)) or real_f(self, n))
    overrides = avif_frames._Sequence.frame_overrides_size
    flags = []
    monkeypatch.setattr(avif_frames._Sequence, "frame_overrides_size",
                        lambda self, payload: (reads.clear(), overrides(self, payload), flags.append(reads[-1]))[1])
    avif_frames.largest_frame(bytes(data))
    monkeypatch.undo()
    payload, bit = flags[0]  # the first frame's frame_size_override_flag: the last field read
    at = bytes(data).find(bytes(payload[:32])) + bit // 8
    data[at] |= 0x80 >> (bit % 8)
    assert avif_frames.largest_frame(bytes(data)) == (32, 32)  # 5 bits a side
    with pytest.raises(InvalidImage, match="holds a 32x32 AV1 frame"):
        codec.probe_image(bytes(data))
