"""HTTP helpers shared by the site's and the API's image answers: query parsing, ETags and
their preconditions."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags

from ..services.errors import NotFound, ServiceError
from ..services.rendering import DEFAULT_RENDER_FORMAT, RENDER_FORMATS

#: A token's image never changes: a browser keeps it for good. A shared cache (a CDN) asks
#: again after a day (a 304 while the image is up), so that a takedown's 410 reaches it.
IMAGE_CACHE_CONTROL = "public, max-age=31536000, s-maxage=86400, immutable"
#: A short link can be deleted, expire or be taken down: caches keep the image but ask again
#: each time (a 304 against the ETag while the link still works, a 404/410 once it does not).
SHORT_LINK_CACHE_CONTROL = "public, no-cache"
FORMAT_ALIASES = {"jpeg": "jpg"}
#: Every output format name a URL or request may ask for (aliases included).
REQUESTABLE_FORMATS = [*RENDER_FORMATS, *FORMAT_ALIASES]


def parse_format(fmt: str | None, *, unknown: type[ServiceError] = NotFound) -> str:
    """Map a requested format name to an output format (None: WebP). Unknown (an empty one, a
    path ending in "." included): ``unknown``, a 404 for a path's extension (no such resource),
    InvalidInput (400) for a request's field."""
    fmt = (DEFAULT_RENDER_FORMAT if fmt is None else fmt).lower()
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


def image_preconditions(request: HttpRequest, etag: str) -> HttpResponse | None:
    """RFC 9110 §13.2.2 for an image that exists, with a strong ``etag`` and no modification
    date (so If-Unmodified-Since and If-Modified-Since are ignored, §13.1.3-4): an If-Match
    that does not match (strong comparison) is a 412 no cache keeps; an If-None-Match that
    matches (weak comparison, or "*") a 304. None: send the image."""
    if_match = request.META.get("HTTP_IF_MATCH")
    if if_match is not None and not {"*", etag} & set(parse_etags(if_match)):
        response = HttpResponse("Precondition failed: If-Match does not match this image's ETag.\n",
                                status=412, content_type="text/plain; charset=utf-8")  # fmt: skip
        response["Cache-Control"] = "no-store"
        return response
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None and {"*", etag} & {tag.removeprefix("W/") for tag in parse_etags(if_none_match)}:
        return HttpResponseNotModified()
    return None
