"""Decoding a token to image bytes in one of the output formats, through the decode cache."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import codec
from django.core.cache import cache
from PIL import Image

from .errors import BadToken, ModelUnavailable
from .tokens import checked_token_sha256

# Output formats of decoded images: name -> (Pillow format, Content-Type, save options).
RENDER_FORMATS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "webp": ("WEBP", "image/webp", {"quality": 90, "method": 4}),
    "png": ("PNG", "image/png", {"optimize": False}),
    "jpg": ("JPEG", "image/jpeg", {"quality": 90}),
    "avif": ("AVIF", "image/avif", {"quality": 80}),
}
DEFAULT_RENDER_FORMAT = "webp"


@dataclass(frozen=True)
class RenderedImage:
    content: bytes
    content_type: str
    token_sha256: str
    fmt: str
    width: int
    height: int
    from_cache: bool = False


def render_token_image(token: str, fmt: str = DEFAULT_RENDER_FORMAT, width: int | None = None) -> RenderedImage:
    """Decode a token to image bytes in ``fmt`` (a RENDER_FORMATS key), cached by hash, format, width.

    ``width`` only shrinks (never upscales). Raises TokenTooLong / BadToken / TokenBlocked
    before any model runs, ModelUnavailable (503) when this server cannot run the model.
    """
    sha = checked_token_sha256(token)
    pil_format, content_type, options = RENDER_FORMATS[fmt]
    key = f"emmm:img:v1:{sha}:{fmt}:{width or 0}"
    hit = cache.get(key)
    if hit is not None:
        content, w, h = hit
        return RenderedImage(content, content_type, sha, fmt, w, h, from_cache=True)
    native = _native_avif(token) if fmt == "avif" and not width else None
    if native is not None:
        cache.set(key, native)
        return RenderedImage(native[0], content_type, sha, fmt, native[1], native[2])
    try:
        image = codec.decode(token)
    except codec.ModelUnavailable as exc:
        raise ModelUnavailable(f"This server cannot decode the token right now: {exc}") from exc
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc
    if width and width < image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    if pil_format == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format=pil_format, **options)
    content = buf.getvalue()
    cache.set(key, (content, image.width, image.height))
    return RenderedImage(content, content_type, sha, fmt, image.width, image.height)


def _native_avif(token: str) -> tuple[bytes, int, int] | None:
    """An ``avif`` token's own file and size when it is stored at its native size (served as
    it is, no decode and no re-encode); None for every other token."""
    try:
        info = codec.inspect(token)
        if info.payload_kind != "avif" or (info.coded_width, info.coded_height) != (info.width, info.height):
            return None
        return codec.avif_bytes(token), info.width, info.height
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc
