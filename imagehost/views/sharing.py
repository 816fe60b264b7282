"""Sharing tools for a short link: embed snippets (Markdown, HTML, BBCode) and its QR code as SVG."""
from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.http import require_safe

from ..ratelimits import rate_limited
from ..services import links
from ..services.tokens import identity_key

QR_CACHE_CONTROL = "public, max-age=3600"


@dataclass(frozen=True)
class Snippet:
    name: str
    text: str


@dataclass(frozen=True)
class ShareTools:
    """What the share tools show for one short link (``templates/imagehost/_share_tools.html``)."""

    page_url: str
    image_url: str
    qr_url: str
    snippets: list[Snippet]


def embed_snippets(page_url: str, image_url: str, title: str) -> list[Snippet]:
    """The image linked to its share page, as Markdown, HTML and BBCode."""
    alt = title or "picture"
    markdown_alt = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return [
        Snippet("Markdown", f"[![{markdown_alt}]({image_url})]({page_url})"),
        Snippet("HTML", f'<a href="{escape(page_url)}"><img src="{escape(image_url)}" alt="{escape(alt)}"></a>'),
        Snippet("BBCode", f"[url={page_url}][img]{image_url}[/img][/url]"),
    ]


def share_tools(request: HttpRequest, slug: str, title: str = "") -> ShareTools:
    """Share tools of the short link ``slug`` (absolute URLs from the request)."""
    page_url = request.build_absolute_uri(reverse("short_page", args=[slug]))
    image_url = request.build_absolute_uri(reverse("short_image", args=[slug]))
    qr_url = reverse("short_qr", args=[slug])
    return ShareTools(page_url, image_url, qr_url, embed_snippets(page_url, image_url, title))


def preview_png_url(request: HttpRequest, token_sha256: str, slug: str | None) -> str:
    """An absolute PNG URL of a picture for ``og:image``: its short link when it has one, else
    the image by its token's identity (``/t/``); never the token URL (up to ~32,000 characters)."""
    if slug:
        return request.build_absolute_uri(reverse("short_image", args=[f"{slug}.png"]))
    return request.build_absolute_uri(image_by_identity_url(token_sha256, ext=".png"))


def image_by_identity_url(token_sha256: str, *, ext: str = "", width: int | None = None) -> str:
    """The path of a picture's image by its token's identity, ``/t/<sha256>[.ext]?k=<key>``
    (about 90 characters where the token URL has up to ~32,000), ``&w=`` a width."""
    path = reverse("image_by_identity", args=[token_sha256 + ext])
    return f"{path}?k={identity_key(token_sha256)}" + (f"&w={width}" if width else "")


def thumbnail_url(token_sha256: str, width: int) -> str:
    """A grid's thumbnail of a picture (a path): ``image_by_identity_url`` at ``width``, cached
    like the token URL and counting no short link's hits or look-ups."""
    return image_by_identity_url(token_sha256, width=width)


def qr_svg(url: str) -> bytes:
    """A QR code of ``url`` as a standalone SVG (dark modules on white, so it scans on dark pages)."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=6, border=2, dark="#000", light="#fff", title=url)
    return out.getvalue()


@require_safe
@rate_limited("slugs")
def short_qr(request: HttpRequest, slug: str) -> HttpResponse:
    """/s/<slug>/qr.svg: a QR code of the short link ``/s/<slug>``. 404/410 like the link."""
    link = links.resolve_short_link(slug, count_hit=False)
    short_url = request.build_absolute_uri(reverse("short_image", args=[link.slug]))
    response = HttpResponse(qr_svg(short_url), content_type="image/svg+xml")
    response["Cache-Control"] = QR_CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    return response
