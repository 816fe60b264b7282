"""HTTP helpers shared by the site's and the API's image answers: query parsing and ETags."""
from __future__ import annotations

from ..services.errors import NotFound, ServiceError
from ..services.rendering import DEFAULT_RENDER_FORMAT, RENDER_FORMATS

#: A token's image never changes: cached for good.
IMAGE_CACHE_CONTROL = "public, max-age=31536000, immutable"
#: A short link can be deleted, expire or be taken down: caches keep the image but ask again
#: each time (a 304 against the ETag while the link still works, a 404/410 once it does not).
SHORT_LINK_CACHE_CONTROL = "public, no-cache"
FORMAT_ALIASES = {"jpeg": "jpg"}
#: Every output format name a URL or request may ask for (aliases included).
REQUESTABLE_FORMATS = [*RENDER_FORMATS, *FORMAT_ALIASES]


def parse_format(fmt: str | None, *, unknown: type[ServiceError] = NotFound) -> str:
    """Map a requested format name to an output format (default WebP). Unknown: ``unknown``, a
    404 for a path's extension (no such resource), InvalidInput (400) for a request's field."""
    fmt = (fmt or DEFAULT_RENDER_FORMAT).lower()
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in RENDER_FORMATS:
        raise unknown(f"Unknown image format {fmt!r}; use webp, png, jpg or avif.")
    return fmt


def split_extension(path_part: str) -> tuple[str, str | None]:
    """``"abc.png"`` -> ``("abc", "png")``; ``"abc"`` -> ``("abc", None)``."""
    name, dot, ext = path_part.rpartition(".")
    return (name, ext) if dot else (path_part, None)


def image_etag(sha: str, fmt: str, width: int | None) -> str:
    """Strong ETag for a rendering: computable without decoding."""
    return f'"{sha[:40]}-{fmt}-{width or 0}"'
