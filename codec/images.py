"""Reading untrusted uploads into RGB images, the way a user expects them to look.

- Formats: those in ``ACCEPTED_FORMATS`` only; anything else is InvalidImage.
- Decompression bombs are refused from the header, before pixels are allocated: Pillow's
  own bomb error, ``MAX_INPUT_PIXELS`` (a cap of our own, never above Pillow's), TIFF tiles
  far larger than the picture (libtiff allocates a whole tile), and AVIF files whose AV1
  frames are larger than the size they declare (codec/avif_frames.py). No warning filter is
  set (``warnings.catch_warnings`` is not thread-safe): Pillow's bomb *warning* only concerns
  sizes the pixel cap refuses anyway.
- EXIF orientation is applied (``probe_image`` reports the upright size too); animations give
  their first frame; palette, grayscale, CMYK, 16-bit, 32-bit and float images become 8-bit
  RGB (wide ones a band of rows at a time); alpha, and a PNG's transparent colour at any bit
  depth, is composited onto ``ALPHA_BACKGROUND`` (white, as most viewers show transparent
  areas on light pages). A 16-bit RGB PNG's transparent colour is not applied: Pillow reads
  such files at 8 bits, where it cannot be matched exactly.
- A PIL image passed in is used as it is (its current frame, no JPEG draft) and never changed;
  a file opened from a path is closed before returning.
- Images over ``max_pixels``, or with a side over ``MAX_SIDE`` (a token cannot declare
  more), are downscaled (aspect kept) before encoding, to exactly ``stored_size``.
- An embedded RGB colour profile (ICC: Display P3, Adobe RGB...) is converted to sRGB, as a
  colour-managed viewer shows the picture; the result carries no profile. A profile that
  cannot be read, or one for another colour space (CMYK, grey), leaves the values as they are.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Union

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from . import avif_frames
from .errors import CodecError, InvalidImage
from .limits import DEFAULT_MAX_PIXELS, MAX_CODED_PIXELS, MAX_INPUT_PIXELS, MAX_SIDE

ImageSource = Union[bytes, bytearray, memoryview, str, os.PathLike, IO[bytes], Image.Image]
# Pillow's own decompression-bomb cap (about 89.5 MP) would overrule a larger EMMM_MAX_INPUT_PIXELS;
# this codec checks the header against MAX_INPUT_PIXELS itself (_check_pixels).
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_INPUT_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
ALPHA_BACKGROUND = (255, 255, 255)
_SRGB = ImageCms.createProfile("sRGB")
#: EXIF orientations that turn the stored picture a quarter turn (width and height swap).
_QUARTER_TURNS = (5, 6, 7, 8)


@dataclass(frozen=True)
class ImageFacts:
    """What the file header says, read without decoding pixels."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@contextlib.contextmanager
def _opened(source: ImageSource) -> Iterator[tuple[Image.Image, bool]]:
    """The image with its header checked, and whether it is the caller's own PIL image (used
    as it is: its current frame, never drafted, seeked or changed). A file opened from a
    path is closed on the way out; a file object passed in is the caller's to close."""
    if isinstance(source, Image.Image):
        _check_pixels(source.width, source.height)  # an image made in memory is untrusted too
        yield source, True
    elif isinstance(source, (bytes, bytearray, memoryview)):
        with io.BytesIO(bytes(source)) as stream:
            yield _open_checked(stream), False
    elif isinstance(source, (str, os.PathLike)):
        try:
            stream = open(source, "rb")
        except FileNotFoundError as exc:
            raise InvalidImage(f"no such file: {source}") from exc
        except (OSError, ValueError) as exc:  # a folder, no permission, a NUL in the name
            raise InvalidImage(f"cannot read {source}: {getattr(exc, 'strerror', None) or exc}") from exc
        with stream:
            yield _open_checked(stream), False
    else:
        yield _open_checked(source), False


def _open_checked(stream: IO[bytes]) -> Image.Image:
    """Pillow's image of the stream, its header checked (pixels not decoded)."""
    formats = [f for f in ACCEPTED_FORMATS if f in Image.registered_extensions().values()]
    try:
        # No warning filter: Pillow's bomb warning (between its cap and twice that) is only a
        # warning, and _check_pixels refuses those sizes (MAX_INPUT_PIXELS <= Pillow's cap).
        image = Image.open(stream, formats=formats)
    except Image.DecompressionBombError as exc:
        raise InvalidImage("the image has too many pixels") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage(
            f"not an image in a supported format ({', '.join(ACCEPTED_FORMATS)})"
        ) from exc
    except MemoryError:
        raise
    except Exception as exc:  # truncated headers raise assorted errors inside Pillow
        raise InvalidImage("the image file is unreadable") from exc
    _check_pixels(image.width, image.height)
    if _file_format(image) == "TIFF":
        _check_tiff_tiles(image)
    elif _file_format(image) == "AVIF":
        _check_avif_frames(image)
    return image


def _check_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise InvalidImage("the image is empty")
    if width * height > MAX_INPUT_PIXELS:
        raise InvalidImage(
            f"the image has {width * height:,} pixels; the limit is {MAX_INPUT_PIXELS:,}"
        )


#: A TIFF tile may cover this many pixels whatever the picture's size (tiles are commonly 256
#: or 512 pixels a side, and a small picture is often one tile larger than itself).
_TILE_ALLOWANCE = 1024 * 1024


def _check_tiff_tiles(image: Image.Image) -> None:
    """InvalidImage for tiles larger than the picture allows: libtiff allocates a whole tile
    as it decodes (a 16x16 picture declaring one 46336x46336 tile took 2 GiB). Strips need no
    check: libtiff never holds more of a strip than the picture's rows."""
    tags = getattr(image, "tag_v2", {})
    width, height = tags.get(322), tags.get(323)  # TileWidth, TileLength
    if width is None and height is None:
        return
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (width, height)):
        raise InvalidImage("the TIFF file's tile size is missing or invalid")
    if width * height > max(image.width * image.height, _TILE_ALLOWANCE):
        raise InvalidImage(
            f"the TIFF file's tiles ({width}x{height}) are far larger than its {image.width}x{image.height} picture"
        )


def _check_avif_frames(image: Image.Image) -> None:
    """InvalidImage unless every AV1 frame in the file is no larger than the size its header
    declares (Pillow reports that size, but the decoder allocates for the frame:
    codec/avif_frames.py)."""
    fp = image.fp
    try:
        fp.seek(0)  # Pillow reads an image from the start of its stream
        frame = avif_frames.largest_frame(fp.read())
    except (ValueError, OSError) as exc:
        raise InvalidImage("the AVIF file's picture data cannot be read") from exc
    if frame[0] * frame[1] > image.width * image.height:
        raise InvalidImage(
            f"the AVIF file declares a {image.width}x{image.height} picture but holds a {frame[0]}x{frame[1]} AV1 frame"
        )


def _file_format(image: Image.Image) -> str:
    """The file's format; Pillow's "MPO" (a JPEG with a multi-picture segment, as cameras and
    phones write them) is a JPEG."""
    return "JPEG" if image.format == "MPO" else image.format or "unknown"


def probe_image(source: ImageSource) -> ImageFacts:
    """Format and upright size (EXIF orientation applied, as ``load_rgb`` and viewers show the
    picture) from the header only; InvalidImage for anything unacceptable."""
    with _opened(source) as (image, _):
        width, height = image.size
        # Pillow reports (and decodes) TIFFs upright already; other formats as stored.
        if _file_format(image) != "TIFF" and _header_orientation(image) in _QUARTER_TURNS:
            width, height = height, width
        return ImageFacts(format=_file_format(image), width=width, height=height)


def _header_orientation(image: Image.Image) -> int | None:
    """The EXIF orientation in the header. A PNG's EXIF chunk may follow the pixel data, which
    Pillow would decode to find it: only one before the pixels is seen here."""
    if image.format == "PNG" and "exif" not in image.info:
        return None
    return _orientation(image)


def _orientation(image: Image.Image) -> int | None:
    try:
        orientation = image.getexif().get(0x0112)
    except Exception:  # a corrupt EXIF block: the picture as stored
        return None
    return orientation if isinstance(orientation, int) else None


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}  # fmt: skip


def load_rgb(source: ImageSource, *, max_pixels: int) -> Image.Image:
    """Decode an upload into an 8-bit RGB image of at most ``max_pixels`` pixels."""
    with _opened(source) as (image, callers):
        try:
            full = image.size  # TIFFs: already upright (see probe_image)
            if not callers and _file_format(image) == "JPEG":  # decoded at a reduced DCT scale, no smaller than needed
                image.draft("RGB", _target_size(full, max_pixels))
            key_bits = _png_sample_bits(image)  # before load(), which drops what tells it
            image.load()
            profile = image.info.get("icc_profile")
            method = _TRANSPOSE.get(_orientation(image))  # what Pillow left to do, after load()
            turned = image.transpose(method) if method is not None else image
            picture = _to_rgb_or_rgba(turned, key_bits)
        except InvalidImage:
            raise
        except Image.DecompressionBombError as exc:
            raise InvalidImage("the image has too many pixels") from exc
        except MemoryError:
            raise
        except Exception as exc:  # corrupt or truncated pixel data
            raise InvalidImage("the image data is corrupt or truncated") from exc
    quarter = method in (Image.Transpose.TRANSPOSE, Image.Transpose.ROTATE_270, Image.Transpose.TRANSVERSE,
                         Image.Transpose.ROTATE_90)  # fmt: skip
    target = _target_size(full[::-1] if quarter else full, max_pixels)  # the file's size, not the drafted one
    if target != picture.size:  # RGBA is resized premultiplied, so compositing after it is the same
        picture = picture.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    rgb = _to_srgb(_on_background(picture), profile)
    if rgb is source:  # the caller's own picture, as it was: theirs is not to be changed
        rgb = rgb.copy()
    for key in ("icc_profile", "exif"):  # the pixels are sRGB and upright now
        rgb.info.pop(key, None)
    return rgb


def stored_size(width: int, height: int, max_pixels: int | None = None) -> tuple[int, int]:
    """The size ``encode`` codes a ``width``×``height`` image at (before any ``max_chars`` shrink).

    Read by the site to say up front what an upload becomes (a 768×512 photo: 627×418).
    CodecError unless the sizes are whole numbers from 1 to 2**32 - 1 (and ``max_pixels``, when
    given, one from 1).
    """
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= _LARGEST_SIDE:
            raise CodecError(f"{name} must be a whole number from 1 to {_LARGEST_SIDE:,}, not {_short(value)}")
    if max_pixels is not None and (
            isinstance(max_pixels, bool) or not isinstance(max_pixels, numbers.Integral) or max_pixels < 1):
        raise CodecError(f"max_pixels must be a whole number from 1, not {_short(max_pixels)}")
    return _target_size((width, height), min(max_pixels or DEFAULT_MAX_PIXELS, MAX_CODED_PIXELS))


#: The longest side ``stored_size`` takes: no image format declares more (PNG and TIFF sizes are
#: 32-bit), and larger whole numbers do not fit a float.
_LARGEST_SIDE = 2**32 - 1


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:20] + "..." + text[-10:]


def _target_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, math.sqrt(max_pixels / (width * height)), MAX_SIDE / max(width, height))
    if scale >= 1.0:
        return size
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def _to_srgb(rgb: Image.Image, profile: bytes | None) -> Image.Image:
    """``rgb`` converted from its embedded RGB ``profile`` to sRGB (see the module docstring)."""
    if profile:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            if source.profile.xcolor_space.strip() == "RGB":
                rgb = ImageCms.profileToProfile(rgb, source, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # unreadable: the values as they are
    return rgb


def _on_background(picture: Image.Image) -> Image.Image:
    """An RGBA or LA picture composited onto ``ALPHA_BACKGROUND``; an RGB one as it is."""
    if picture.mode == "RGB":
        return picture
    background = Image.new("RGBA", picture.size, ALPHA_BACKGROUND + (255,))
    return Image.alpha_composite(background, picture.convert("RGBA")).convert("RGB")


#: Rows of a 16-bit, 32-bit or float picture converted at a time (memory: a band, not a
#: full-size copy).
_BAND_ROWS = 256
#: PNG sample depths Pillow reads into 8-bit modes without scaling the tRNS key with them.
_PNG_RAWMODE_BITS = {"L;2": 2, "L;4": 4, "RGB;16B": 16}


def _png_sample_bits(image: Image.Image) -> int:
    """The bits a sample of a PNG with a colour key has in the file (8 when it cannot be told:
    a picture already decoded). Pillow scales 2- and 4-bit grey to 0..255 but keeps the key as
    stored, and reads 16-bit RGB as its high bytes but keeps the 16-bit key."""
    tile = getattr(image, "tile", None)
    if image.format != "PNG" or "transparency" not in image.info or not tile:
        return 8
    return _PNG_RAWMODE_BITS.get(tile[0].args if isinstance(tile[0].args, str) else None, 8)


def _bands(image: Image.Image) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, array) for each band of ``_BAND_ROWS`` rows."""
    for top in range(0, image.height, _BAND_ROWS):
        yield top, np.asarray(image.crop((0, top, image.width, min(top + _BAND_ROWS, image.height))))


def _grey(image: Image.Image, to_8_bits, key: int | None = None) -> Image.Image:
    """L (or LA, with pixels equal to ``key`` transparent) from a one-band picture, converted
    a band at a time by ``to_8_bits`` (an array of the band -> uint8 array)."""
    grey = np.empty((image.height, image.width), dtype=np.uint8)
    alpha = None if key is None else np.empty_like(grey)
    for top, band in _bands(image):
        grey[top : top + len(band)] = to_8_bits(band)
        if alpha is not None:
            alpha[top : top + len(band)] = np.where(band == key, 0, 255)
    if alpha is None:
        return Image.fromarray(grey, "L")
    return Image.merge("LA", (Image.fromarray(grey, "L"), Image.fromarray(alpha, "L")))


def _sixteen_bits(band: np.ndarray) -> np.ndarray:
    return (band.astype(np.uint32) * 255 + 32767) // 65535  # = rint(v / 65535 * 255), never halfway


def _scaled(band: np.ndarray, peak: float) -> np.ndarray:
    """Values on a 0..peak scale as 0..255 (out of range: clipped; not a number: 0)."""
    values = np.where(np.isnan(band), 0.0, band.astype(np.float64))
    return np.clip(np.rint(values / peak * 255), 0, 255).astype(np.uint8)


def _finite_max(image: Image.Image) -> float:
    """The largest value of a one-band picture, infinities and not-a-numbers left out."""
    peak = -math.inf
    for _, band in _bands(image):
        if band.dtype.kind == "f":
            finite = np.isfinite(band)
            if finite.any():
                peak = max(peak, float(band.max(where=finite, initial=-np.inf)))
        elif band.size:
            peak = max(peak, float(band.max()))
    return peak


def _to_rgb_or_rgba(image: Image.Image, key_bits: int = 8) -> Image.Image:
    """8-bit RGB, or RGBA / LA for a picture with transparency (composited after the downscale).
    ``key_bits``: the file's bits a sample, for a PNG colour key (``_png_sample_bits``)."""
    mode = image.mode
    key = image.info.get("transparency") if mode in ("1", "L", "I;16", "I;16B", "RGB") else None
    if mode.startswith("I;16"):
        return _grey(image, _sixteen_bits, key if isinstance(key, int) else None)
    if mode == "I":
        peak = 65535.0 if _finite_max(image) > 255 else 255.0
        return _grey(image, lambda band: _scaled(band, peak))
    if mode == "F":
        peak = 1.0 if _finite_max(image) <= 1.0 else 255.0
        return _grey(image, lambda band: _scaled(band, peak))
    if mode == "P" and "transparency" in image.info:  # a palette entry (or alpha per entry)
        return image.convert("RGBA")
    if key is not None:  # a colour key (PNG tRNS): those pixels are transparent
        if mode == "L" and isinstance(key, int) and key_bits in (2, 4):  # the key on the pixels' 0..255 scale
            top = (1 << key_bits) - 1
            if 0 <= key <= top:
                return _grey(image, lambda band: band, key * 255 // top)
        elif mode in ("1", "L") and isinstance(key, int) and key_bits == 8:
            return image.convert("RGBA")
        elif mode == "RGB" and key_bits == 8 and isinstance(key, tuple) and max(key) <= 255:
            return image.convert("RGBA")
        # else a key that cannot be matched exactly at 8 bits (16-bit RGB): not applied
    if image.mode in ("RGB", "RGBA", "LA"):  # as they are: a conversion would copy them at full size
        return image
    if image.mode == "La":
        return image.convert("LA")
    if image.mode in ("PA", "RGBa"):
        return image.convert("RGBA")
    return image.convert("RGB")
