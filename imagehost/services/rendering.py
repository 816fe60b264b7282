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
    image = decode_token(token)
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


def decode_token(token: str) -> Image.Image:
    """The picture a token decodes to: BadToken (400), or ModelUnavailable (503) when this
    server cannot run the token's model. No shape or takedown checks (see ``checked_token_sha256``)."""
    try:
        return codec.decode(token)
    except codec.ModelUnavailable as exc:
        raise ModelUnavailable(f"This server cannot decode the token right now: {exc}") from exc
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc
