"""Payload kind 4, ``avif`` (token version 2): the image itself as an AVIF file. No model.

For pictures a VAE at 1/8 resolution garbles (text, digits, line art). The payload is the
AVIF file, nothing else; its picture is the coded image (``coded_width`` x ``coded_height``),
shown at the declared size. Pillow opens it restricted to AVIF, and the picture's size is
checked against the header before any pixel is decoded.
"""

from __future__ import annotations

import io

from PIL import Image

from . import avif_frames
from .errors import CodecError, InvalidToken

#: Quality of ``kind="avif"`` without ``max_chars`` (Pillow/libavif scale 0..100).
DEFAULT_QUALITY = 60
#: libavif encoder speed (0 slowest/best .. 10 fastest).
SPEED = 6


def available() -> bool:
    """Whether this Pillow can write and read AVIF."""
    from PIL import features

    return bool(features.check("avif"))


def encode(rgb: Image.Image, quality: int = DEFAULT_QUALITY) -> bytes:
    """An RGB image as AVIF bytes (4:4:4, so thin coloured text stays sharp)."""
    if not available():  # pragma: no cover - the project's Pillow has AVIF
        raise CodecError("this server cannot write AVIF")
    buf = io.BytesIO()
    rgb.save(buf, format="AVIF", quality=int(quality), speed=SPEED, subsampling="4:4:4")
    return buf.getvalue()


def largest_quality_within(rgb: Image.Image, max_bytes: int) -> bytes | None:
    """The highest-quality AVIF of ``rgb`` of at most ``max_bytes`` bytes (bisection), or None."""
    lo, hi, best = 0, 100, None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = encode(rgb, mid)
        if len(data) <= max_bytes:
            best, lo = data, mid + 1
        else:
            hi = mid - 1
    return best


def _open(payload: bytes, coded: tuple[int, int]) -> Image.Image:
    image = Image.open(io.BytesIO(payload), formats=["AVIF"])
    if image.size != tuple(coded):
        raise InvalidToken("the token's embedded picture does not match its declared shape")
    # The size Pillow reports is the file's ``ispe`` box; the AV1 decoder allocates for the frame
    # in the bitstream, which nothing binds to it (the encoder never writes a larger one).
    try:
        frame = avif_frames.largest_frame(payload)
    except ValueError as exc:
        raise InvalidToken("the token's embedded picture is corrupt") from exc
    if frame[0] * frame[1] > coded[0] * coded[1]:
        raise InvalidToken("the token's embedded picture holds a frame larger than its declared shape")
    return image


def check(payload: bytes, coded: tuple[int, int]) -> None:
    """InvalidToken unless the payload's header is an AVIF of exactly ``coded`` size."""
    _guarded(lambda: _open(payload, coded))


def decode(payload: bytes, coded: tuple[int, int]) -> Image.Image:
    """The AVIF picture as RGB; InvalidToken unless it is an AVIF of exactly ``coded`` size."""
    return _guarded(lambda: _open(payload, coded).convert("RGB"))


def _guarded(action):
    # No warning filter (catch_warnings is process-wide, not thread-safe): the header's shape is
    # checked against the codec's own limits before this, far under Pillow's bomb threshold.
    try:
        return action()
    except InvalidToken:
        raise
    except Exception as exc:  # Pillow / libavif raise many types on corrupt data
        raise InvalidToken("the token's embedded picture is corrupt") from exc
