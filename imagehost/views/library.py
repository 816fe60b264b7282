"""The library, picture pages and albums (accounts: ``views/accounts.py``)."""
from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from .. import selectors
from .. import ratelimits
from ..ratelimits import rate_limited
from ..models import Visibility
from ..services import library as lib
from ..services import links
from ..services.errors import NotFound, ServiceError
from .errors import shown_beside_the_form
from .forms import AlbumActionForm, AlbumCreateForm, LibrarySearchForm, PageForm, PictureActionForm, ShortenForm, parse
from .links import with_urls
from .presentation import token_fits
from .sharing import image_by_identity_url, preview_png_url, share_tools, thumbnail_url
from .similar import similar_sections

#: Thumbnail widths (``?w=``) of the library's grid and of the albums' and the gallery's.
LIBRARY_THUMB_WIDTH = 320
ALBUM_THUMB_WIDTH = 384


@login_required
@require_safe
def library(request: HttpRequest) -> HttpResponse:
    """My pictures, newest first; ``?q=`` searches titles."""
    query = parse(LibrarySearchForm, request.GET)
    pictures = selectors.pictures_for_owner(request.user, title_contains=query["q"])
    page = Paginator(pictures, settings.EMMM_PAGE_SIZE).get_page(query["page"])
    page.object_list = list(page.object_list)
    for p in page.object_list:
        p.thumb_url = thumbnail_url(p.token_sha256, LIBRARY_THUMB_WIDTH)
    pager_query = f"q={quote(query['q'])}&" if query["q"] else ""
    return render(request, "imagehost/library.html", {"page": page, "q": query["q"], "pager_query": pager_query})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def picture(request: HttpRequest, pk: int) -> HttpResponse:
    """A picture page: title, links, move to album, short link, delete."""
    pic = selectors.get_picture_for_owner(pk, request.user)
    if request.method == "POST":
        form = parse(PictureActionForm, request.POST)
        if form["action"] == "title":
            lib.update_picture(pic, title=form["title"])
            messages.success(request, "Title saved.")
        elif form["action"] == "album":
            album = selectors.get_album_for_owner(form["album"], request.user) if form["album"] else None
            lib.move_picture_to_album(pic, album)
            messages.success(request, f"Moved to {album.title}." if album else "Removed from its album.")
        elif form["action"] == "link":  # refused: the page again, with the error and what was typed
            ratelimits.check(request, "links")  # as /shorten and the API count link creation
            try:
                typed = parse(ShortenForm, request.POST)
                link = links.get_or_create_short_link(pic.token, request.user, slug=typed["slug"] or None,
                                                      expires_at=typed["expires_at"], made_for=getattr(pic, "job", None))
            except ServiceError as refused:
                if not shown_beside_the_form(refused, request):
                    raise
                typed_back = {"slug": request.POST.get("slug", "")[:40], "expires_at": request.POST.get("expires_at", "")[:40]}
                return _picture_page(request, pic, status=refused.status, link_error=refused.message, link_typed=typed_back)
            messages.success(request, f"Short link: /s/{link.slug}")
            return redirect(reverse("picture", args=[pic.pk]) + "#short-links")
        else:  # delete: a confirm page first (works without JavaScript), then POST confirm=yes
            if not form["confirm"]:
                doomed = with_urls(request, selectors.links_deleted_with(pic))
                kept = selectors.short_links_for_picture(pic).count() - len(doomed)
                return render(request, "imagehost/confirm_delete_picture.html", {
                    "pic": pic, "links": doomed, "kept": kept, "preview_url": thumbnail_url(pic.token_sha256, LIBRARY_THUMB_WIDTH),
                })
            gone = lib.delete_picture(pic, delete_links=form["links"])
            messages.success(request, f"Picture deleted{f' with its {gone} short link(s)' if gone else ''}.")
            return redirect("library")
        return redirect("picture", pk=pic.pk)
    return _picture_page(request, pic)


def _picture_page(request: HttpRequest, pic, *, status: int = 200, **extra) -> HttpResponse:
    token_url = request.build_absolute_uri(reverse("image", args=[pic.token]))
    link = selectors.short_link_for(pic.token, request.user, picture=pic)
    return render(
        request,
        "imagehost/picture.html",
        {
            **extra,
            "pic": pic,
            "token_url": token_url,
            "fits": token_fits(len(token_url)),
            "link": link,
            "short_url": request.build_absolute_uri(reverse("short_image", args=[link.slug])) if link else None,
            "albums": selectors.albums_for_owner(request.user),
            "picture_links": with_urls(request, selectors.short_links_for_picture(pic)),
            "similar": similar_sections(pic, request.user),
            "share": share_tools(request, link.slug, pic.title) if link and not pic.taken_down else None,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def albums(request: HttpRequest) -> HttpResponse:
    """My albums; POST creates one."""
    if request.method == "POST":
        form = parse(AlbumCreateForm, request.POST)
        album = lib.create_album(request.user, form["title"], form["visibility"] or Visibility.PRIVATE)
        messages.success(request, f"Album “{album.title}” created.")
        return redirect("album", slug=album.slug)
    return render(
        request,
        "imagehost/albums.html",
        {"albums": selectors.albums_for_owner(request.user), "visibilities": Visibility.choices},
    )


def _album_action(request: HttpRequest, alb, user) -> HttpResponse:
    form = parse(AlbumActionForm, request.POST)
    action = form["action"]
    if action == "update":
        lib.update_album(
            alb,
            title=form["title"] if "title" in request.POST else None,
            visibility=form["visibility"] or None,
        )
        messages.success(request, "Album saved.")
    elif action == "delete":
        if not form["confirm"]:
            return render(request, "imagehost/confirm_delete_album.html", {"album": alb, "count": alb.pictures.count()})
        lib.delete_album(alb)
        messages.success(request, "Album deleted; its pictures are still in your library.")
        return redirect("albums")
    elif action in ("up", "down"):
        pic = selectors.get_picture_for_owner(form["picture"], user)
        if pic.album_id != alb.pk:
            raise NotFound("No such picture in this album.")
        index, count = lib.move_picture_in_album(pic, -1 if action == "up" else 1)
        messages.success(request, f"“{pic.title or '(untitled)'}” is now {index + 1} of {count}.")
        # back with the keyboard focus on the picture that moved, on the page it is now on
        page_number = index // settings.EMMM_PAGE_SIZE + 1
        on_page = f"&page={page_number}" if page_number > 1 else ""
        return redirect(f"{reverse('album', args=[alb.slug])}?moved={pic.pk}{on_page}")
    else:  # reorder
        lib.reorder_album(alb, form["order"])
    return redirect("album", slug=alb.slug)


@require_http_methods(["GET", "HEAD", "POST"])
@rate_limited("slugs")  # an unlisted album's slug is its only protection: guessing it is as slow as the rate
def album(request: HttpRequest, slug: str) -> HttpResponse:
    """An album page: the owner manages it; others see unlisted/public ones; private is 404."""
    user = request.user if request.user.is_authenticated else None
    alb = selectors.get_album_for_viewer(slug, user)
    is_owner = user is not None and alb.owner_id == user.pk
    if request.method == "POST":
        if not is_owner:
            raise NotFound("No such album.")
        return _album_action(request, alb, user)
    query = parse(PageForm, request.GET)
    pictures = selectors.album_pictures_with_links(alb, user)
    page = Paginator(pictures, settings.EMMM_PAGE_SIZE).get_page(query["page"])
    page.object_list = list(page.object_list)
    for number, p in enumerate(page.object_list, start=page.start_index()):
        p.share_url = reverse("short_page", args=[p.link_slug]) if p.link_slug else image_by_identity_url(p.token_sha256)
        p.thumb_url = thumbnail_url(p.token_sha256, ALBUM_THUMB_WIDTH)
        p.is_first, p.is_last = number == 1, number == page.paginator.count  # in the album, not the page
    cover = pictures.filter(taken_down=False).first()
    og_image = preview_png_url(request, cover.token_sha256, cover.link_slug) if cover else None
    return render(
        request,
        "imagehost/album.html",
        {"album": alb, "page": page, "is_owner": is_owner, "visibilities": Visibility.choices, "og_image": og_image,
         "page_url": request.build_absolute_uri(reverse("album", args=[alb.slug])),
         "moved": request.GET.get("moved", "")},
    )


@require_safe
def public_albums(request: HttpRequest) -> HttpResponse:
    """The gallery: public albums, newest first, a page at a time."""
    query = parse(PageForm, request.GET)
    page = Paginator(selectors.public_albums(), settings.EMMM_PAGE_SIZE).get_page(query["page"])
    page.object_list = list(page.object_list)
    for a in page.object_list:
        a.cover_url = thumbnail_url(a.cover_sha256, ALBUM_THUMB_WIDTH) if a.cover_sha256 else None
    return render(request, "imagehost/public_albums.html", {"page": page})
