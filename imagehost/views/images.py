"""Decoding views (``/i/<token>``, ``/image?q=``, ``/t/<identity>``) and short links (``/s/<slug>``, ``/shorten``)."""
from __future__ import annotations

from typing import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST, require_safe

from .. import selectors
from ..ratelimits import rate_limited
from ..services import links, rendering, tokens
from ..services.errors import InvalidInput, LinkPending, NotFound, ServiceError
from .forms import ShortenForm, parse, parse_width
from .navigation import safe_local_path
from .sharing import share_tools
from .http import IMAGE_CACHE_CONTROL, SHORT_LINK_CACHE_CONTROL, image_etag, image_preconditions, parse_format, split_extension


def _image_response(
    request: HttpRequest, sha: str, fmt: str | None, token: Callable[[], str],
    cache_control: str = IMAGE_CACHE_CONTROL,
) -> HttpResponse:
    """The image answer for a checked token (its sha256); ``token()`` is called only to decode."""
    fmt = parse_format(fmt)
    raw_width = request.GET.get("w")
    width = rendering.rendering_width(token(), parse_width(raw_width)) if raw_width is not None else None
    etag = image_etag(sha, fmt, width)
    response = image_preconditions(request, etag)
    if response is not None and response.status_code == 412:
        return response
    if response is None:
        rendered = rendering.cached_rendering(sha, fmt, width) or rendering.render_token_image(token(), fmt, width)
        response = HttpResponse(rendered.content, content_type=rendered.content_type)
        response["Content-Length"] = str(len(rendered.content))
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _checked_token_sha256(request: HttpRequest, token: str) -> str:
    """A token from the URL: 414 / 400 / 410 before anything else; with a precondition, also a
    400 for one whose header is unreadable (it has no image, so ``If-None-Match: *`` must not
    match it). Without one, rendering reads the header anyway (a cached rendering proves it),
    and reading a long token's costs about 0.7 ms. A short link's token was checked when made."""
    sha = tokens.checked_token_sha256(token)
    if "HTTP_IF_NONE_MATCH" in request.META or "HTTP_IF_MATCH" in request.META:
        rendering.token_header(token)
    return sha


def _token_response(request: HttpRequest, token: str, fmt: str | None) -> HttpResponse:
    return _image_response(request, _checked_token_sha256(request, token), fmt, lambda: token)


@require_safe
@rate_limited("decodes")
def image(request: HttpRequest, token: str) -> HttpResponse:
    """/i/<token>[.ext]: the decoded image (WebP unless an extension asks otherwise)."""
    return _token_response(request, *split_extension(token))


@require_safe
@rate_limited("decodes")
def image_by_identity(request: HttpRequest, identity: str) -> HttpResponse:
    """/t/<sha256 of the token>[.ext]?k=<key>: a stored picture's image at a short address
    (grids, previews): the same answer as /i/<token>, while a picture or a live short link holds
    that token (404 after, and without the key ``tokens.identity_key``), without a link's hit or
    its look-up limit."""
    identity, fmt = split_extension(identity)
    token = selectors.stored_token(identity) if tokens.identity_key_matches(identity, request.GET.get("k", "")) else None
    if token is None:
        raise NotFound("No such image.")
    return _token_response(request, token, fmt)


@require_safe
@rate_limited("decodes")
def image_query(request: HttpRequest) -> HttpResponse:
    """/image?q=<token>[&f=<format>]: same as /i/<token>, for links shaped like the original
    project's; an unknown ``f`` is a 400 (a field), not a 404 (an extension)."""
    token = request.GET.get("q", "")
    sha = _checked_token_sha256(request, token)
    fmt = parse_format(request.GET.get("f") or None, unknown=InvalidInput)
    return _image_response(request, sha, fmt, lambda: token)


@require_safe
@rate_limited("slugs")
@rate_limited("decodes")
def short_image(request: HttpRequest, slug: str) -> HttpResponse:
    """/s/<slug>[.ext]: the image itself (no redirect to a possibly huge URL).

    On a cache hit (look-up, takedown check and rendering) no database query runs.
    """
    slug, fmt = split_extension(slug)
    parse_format(fmt)  # a refused request (404, 400) is no view: checked before the hit is counted
    parse_width(request.GET.get("w"))
    try:
        link = links.resolve_short_link(slug, count_hit=request.method == "GET")
    except LinkPending as pending:
        if "text/html" not in request.headers.get("Accept", ""):
            raise  # an image client: 503 with Retry-After (error_response adds Vary: Accept)
        response = _encoding_page(request, slug, pending)  # a browser: an "encoding…" page
        patch_vary_headers(response, ["Accept"])
        return response
    return _image_response(request, link.token_sha256, fmt, lambda: link.token, SHORT_LINK_CACHE_CONTROL)


@require_safe
@rate_limited("slugs")
def short_page(request: HttpRequest, slug: str) -> HttpResponse:
    """/s/<slug>/: a page showing the image, with OpenGraph tags for chat previews."""
    try:
        link = links.resolve_short_link(slug, count_hit=False)
    except LinkPending as pending:
        return _encoding_page(request, slug, pending)
    token = link.token
    try:
        info = tokens.inspect_token(token)
        size = (info.width, info.height)
    except ServiceError:  # a page without sizes is still a page
        size = (None, None)
    picture = selectors.picture_for_short_link(link.pk)
    title = picture.title if picture else ""
    return render(
        request,
        "imagehost/short.html",
        {
            "link": link,
            "page_url": request.build_absolute_uri(reverse("short_page", args=[link.slug])),
            "image_url": request.build_absolute_uri(reverse("short_image", args=[link.slug])),
            "og_image_url": request.build_absolute_uri(reverse("short_image", args=[f"{link.slug}.png"])),
            # the token URL works for ever: a link its owner made to expire does not hand it out
            "token_url": request.build_absolute_uri(reverse("image", args=[token])) if link.expires_at is None else None,
            "token_chars": len(token),
            "width": size[0],
            "height": size[1],
            "title": title,
            "share": share_tools(request, link.slug, title),
        },
    )


def _encoding_page(request: HttpRequest, slug: str, pending: LinkPending) -> HttpResponse:
    """A reserved link whose picture is still being encoded: a page that shows it once it is there
    (its script asks the image URL; without it, a "check again" link)."""
    response = render(
        request, "imagehost/short_encoding.html",
        {"slug": slug, "message": pending.message, "refresh_s": pending.retry_after}, status=pending.status,
    )
    response["Retry-After"] = str(pending.retry_after)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@rate_limited("links")
def shorten(request: HttpRequest) -> HttpResponse:
    """Create (or find) a short link for a token; custom slug/expiry for signed-in users."""
    form = parse(ShortenForm, request.POST)
    user = request.user if request.user.is_authenticated else None
    link = links.get_or_create_short_link(
        form["token"], user, slug=form["slug"] or None, expires_at=form["expires_at"]
    )
    next_url = safe_local_path(request, form["next"])
    if next_url:
        messages.success(request, f"Short link: /s/{link.slug}")
        return redirect(next_url)
    return redirect("short_page", slug=link.slug)
