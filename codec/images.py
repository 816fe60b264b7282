"""Reading untrusted uploads into RGB images, the way a user expects them to look.

- Formats: those in ``ACCEPTED_FORMATS`` only; anything else is InvalidImage.
- Decompression bombs are refused from the header, before pixels are allocated: Pillow's
  bomb warning is an error, and ``MAX_INPUT_PIXELS`` is a cap of our own.
- EXIF orientation is applied; animations give their first frame; palette, grayscale,
  CMYK, 16-bit and float images become 8-bit RGB; alpha (and a PNG's transparent colour) is
  composited onto ``ALPHA_BACKGROUND`` (white, as most viewers show transparent areas on
  light pages).
- Images over ``max_pixels``, or with a side over ``MAX_SIDE`` (a token cannot declare
  more), are downscaled (aspect kept) before encoding, to exactly ``stored_size``.
- An embedded RGB colour profile (ICC: Display P3, Adobe RGB...) is converted to sRGB, as a
  colour-managed viewer shows the picture; the result carries no profile. A profile that
  cannot be read, or one for another colour space (CMYK, grey), leaves the values as they are.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import warnings
from dataclasses import dataclass
from typing import IO, Union

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

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


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        _check_pixels(source.width, source.height)  # an image made in memory is untrusted too
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    formats = [f for f in ACCEPTED_FORMATS if f in Image.registered_extensions().values()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source, formats=formats)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InvalidImage("the image has too many pixels") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage(
            f"not an image in a supported format ({', '.join(ACCEPTED_FORMATS)})"
        ) from exc
    except FileNotFoundError as exc:
        raise InvalidImage(f"no such file: {source}") from exc
    except Exception as exc:  # truncated headers raise assorted errors inside Pillow
        raise InvalidImage("the image file is unreadable") from exc
    _check_pixels(image.width, image.height)
    return image


def _check_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise InvalidImage("the image is empty")
    if width * height > MAX_INPUT_PIXELS:
        raise InvalidImage(
            f"the image has {width * height:,} pixels; the limit is {MAX_INPUT_PIXELS:,}"
        )


def _file_format(image: Image.Image) -> str:
    """The file's format; Pillow's "MPO" (a JPEG with a multi-picture segment, as cameras and
    phones write them) is a JPEG."""
    return "JPEG" if image.format == "MPO" else image.format or "unknown"


def probe_image(source: ImageSource) -> ImageFacts:
    """Format and size from the header only; InvalidImage for anything unacceptable."""
    image = _open(source)
    return ImageFacts(format=_file_format(image), width=image.width, height=image.height)


def load_rgb(source: ImageSource, *, max_pixels: int) -> Image.Image:
    """Decode an upload into an 8-bit RGB image of at most ``max_pixels`` pixels."""
    image = _open(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if getattr(image, "is_animated", False):
                image.seek(0)
            width, height = image.size
            upright = (height, width) if image.getexif().get(0x0112) in _QUARTER_TURNS else (width, height)
            if _file_format(image) == "JPEG":  # decode at a reduced DCT scale, no smaller than needed
                image.draft("RGB", _target_size(image.size, max_pixels))
            image.load()
            profile = image.info.get("icc_profile")
            image = ImageOps.exif_transpose(image)
            picture = _to_rgb_or_rgba(image)
    except InvalidImage:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InvalidImage("the image has too many pixels") from exc
    except Exception as exc:  # corrupt or truncated pixel data
        raise InvalidImage("the image data is corrupt or truncated") from exc
    target = _target_size(upright, max_pixels)  # from the file's size, not the drafted one
    if target != picture.size:  # RGBA is resized premultiplied, so compositing after it is the same
        picture = picture.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _to_srgb(_on_background(picture), profile)


def stored_size(width: int, height: int, max_pixels: int | None = None) -> tuple[int, int]:
    """The size ``encode`` codes a ``width``×``height`` image at (before any ``max_chars`` shrink).

    Read by the site to say up front what an upload becomes (a 768×512 photo: 627×418).
    CodecError unless the sizes (and ``max_pixels``, when given) are whole numbers from 1.
    """
    for name, value in (("width", width), ("height", height), ("max_pixels", max_pixels)):
        if (value is not None or name != "max_pixels") and (
                isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise CodecError(f"{name} must be a whole number from 1, not {value!r}")
    return _target_size((width, height), min(max_pixels or DEFAULT_MAX_PIXELS, MAX_CODED_PIXELS))


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
    rgb.info.pop("icc_profile", None)
    return rgb


def _on_background(picture: Image.Image) -> Image.Image:
    """An RGBA or LA picture composited onto ``ALPHA_BACKGROUND``; an RGB one as it is."""
    if picture.mode == "RGB":
        return picture
    background = Image.new("RGBA", picture.size, ALPHA_BACKGROUND + (255,))
    return Image.alpha_composite(background, picture.convert("RGBA")).convert("RGB")


#: Rows of a 16-bit picture converted at a time (memory: a band, not a full-size copy).
_BAND_ROWS = 256


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """8-bit RGB, or RGBA / LA for a picture with transparency (composited after the downscale)."""
    mode = image.mode
    if mode.startswith("I;16"):
        grey = np.empty((image.height, image.width), dtype=np.uint8)
        for top in range(0, image.height, _BAND_ROWS):
            band = np.asarray(image.crop((0, top, image.width, min(top + _BAND_ROWS, image.height)))).astype(np.uint32)
            grey[top : top + len(band)] = (band * 255 + 32767) // 65535  # = rint(v / 65535 * 255), never halfway
        image = Image.fromarray(grey, "L")
    elif mode == "I":
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(np.rint(array / peak * 255), 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        array = np.asarray(image, dtype=np.float64)
        peak = 1.0 if array.max(initial=0) <= 1.0 else 255.0
        image = Image.fromarray(np.clip(np.rint(array / peak * 255), 0, 255).astype(np.uint8), "L")
    elif mode in ("P", "L", "RGB") and "transparency" in image.info:  # a palette entry or a colour key
        image = image.convert("RGBA")
    if image.mode in ("RGB", "RGBA", "LA"):  # as they are: a conversion would copy them at full size
        return image
    if image.mode in ("PA", "RGBa", "La"):
        return image.convert("RGBA")
    return image.convert("RGB")
