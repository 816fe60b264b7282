"""Managing one's short links from the site: clear an expiry, delete (after a confirm page)."""
from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from .. import selectors
from ..models import ShortLink
from ..services import links
from ..services.errors import NotFound
from .forms import LinkActionForm, parse
from .navigation import safe_local_path


def with_urls(request: HttpRequest, links: Iterable[ShortLink]) -> list[ShortLink]:
    """The links, each with its absolute ``url`` (for lists on pages)."""
    links = list(links)
    for link in links:
        link.url = request.build_absolute_uri(reverse("short_image", args=[link.slug]))
    return links


@login_required
@require_safe
def my_links(request: HttpRequest) -> HttpResponse:
    """/links/: every short link of mine (also those kept after their picture was deleted)."""
    page = Paginator(selectors.short_links_for_owner(request.user), settings.EMMM_PAGE_SIZE).get_page(request.GET.get("page"))
    with_urls(request, page.object_list)
    return render(request, "imagehost/my_links.html", {"page": page})


@login_required
@require_POST
def link_action(request: HttpRequest, slug: str) -> HttpResponse:
    """POST /links/<slug>/: ``action=clear_expiry`` or ``action=delete`` (confirm page first)."""
    link = selectors.get_short_link(slug)
    if link.owner_id != request.user.pk:
        raise NotFound("No such short link.")
    form = parse(LinkActionForm, request.POST)
    back = safe_local_path(request, form["next"]) or reverse("library")
    if form["action"] == "clear_expiry":
        was_expired = link.is_expired
        links.clear_expiry(link, owner=request.user)
        messages.success(request, f"/s/{link.slug} works again and no longer expires." if was_expired else f"/s/{link.slug} no longer expires.")
    elif not form["confirm"]:
        return render(request, "imagehost/confirm_delete_link.html", {"link": link, "next": back})
    else:
        links.delete_short_link(link, owner=request.user)
        messages.success(request, f"Short link /s/{link.slug} deleted; it answers 404 from now on.")
    return redirect(back)
