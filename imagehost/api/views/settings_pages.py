"""Site pages for API tokens: create (shown once), name, revoke; download a ShareX uploader."""

from __future__ import annotations

import re

from django.contrib import messages
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from imagehost import selectors
from imagehost.services.errors import InvalidInput
from imagehost.views.forms import ApiTokenForm

from ..models import ApiToken
from ..sharex import sharex_config, sxcu_bytes


#: Revoked tokens the page still lists (the newest): they are kept, never used again.
REVOKED_LISTED = 10

#: The cookie that carries the token just created (its id and raw value, signed) from the create's
#: 303 to the GET that shows it: in that browser only, never on the server (the table keeps a hash).
NEW_TOKEN_COOKIE = "emmm_new_api_token"
NEW_TOKEN_COOKIE_MAX_AGE_S = 120
_NEW_TOKEN_SALT = "imagehost.api.new-token"


def _page(request: HttpRequest, *, new_token: ApiToken | None = None, raw: str | None = None, status: int = 200) -> HttpResponse:
    mine = ApiToken.objects.filter(user=request.user)
    revoked = mine.filter(revoked_at__isnull=False).order_by("-revoked_at", "-id")
    context = {
        "tokens": [*mine.active(), *revoked[:REVOKED_LISTED]],
        "older_revoked": max(0, revoked.count() - REVOKED_LISTED),
        "albums": selectors.albums_for_owner(request.user),
        "new_token": new_token,
        "raw_token": raw,
    }
    response = render(request, "api/tokens.html", context, status=status)
    if raw:
        response["Cache-Control"] = "no-store"  # the raw token is on this page, once
    return response


def _take_new_token(request: HttpRequest) -> tuple[ApiToken | None, str | None]:
    """The token created just before this GET and its raw value (``NEW_TOKEN_COOKIE``); nothing if
    it is no longer my active token. The caller deletes the cookie: a reload shows it no more."""
    if request.method != "GET":  # a HEAD would use it up unseen
        return None, None
    try:
        kept = signing.loads(request.COOKIES.get(NEW_TOKEN_COOKIE, ""), salt=_NEW_TOKEN_SALT,
                             max_age=NEW_TOKEN_COOKIE_MAX_AGE_S)
    except signing.BadSignature:
        return None, None
    raw = kept.get("raw") if isinstance(kept, dict) else None
    token = ApiToken.lookup(raw) if isinstance(raw, str) else None
    if token is None or token.pk != kept.get("id") or token.user_id != request.user.pk:
        return None, None
    return token, raw


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """GET: my API tokens, with the value of the one just created this one time. POST: create
    one, then 303 to the GET (Post/Redirect/Get: a reload creates no second token)."""
    if request.method != "POST":
        new_token, raw = _take_new_token(request)
        response = _page(request, new_token=new_token, raw=raw)
        if request.method == "GET" and NEW_TOKEN_COOKIE in request.COOKIES:
            response.delete_cookie(NEW_TOKEN_COOKIE, path=reverse("api:tokens"), samesite="Strict")
        return response
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Name: {form.errors['name'][0]}")
        return _page(request, status=400)
    name = form.cleaned_data["name"]
    if not name:
        messages.error(request, "Give the token a name, e.g. the program that will use it.")
        return _page(request, status=400)
    try:
        token, raw = ApiToken.issue(request.user, name)
    except InvalidInput as refused:
        messages.error(request, refused.message)
        return _page(request, status=400)
    response = redirect("api:tokens")
    response.status_code = 303
    value = signing.dumps({"id": token.pk, "raw": raw}, salt=_NEW_TOKEN_SALT)
    response.set_cookie(NEW_TOKEN_COOKIE, value, max_age=NEW_TOKEN_COOKIE_MAX_AGE_S, path=reverse("api:tokens"),
                        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Strict")
    return response


@login_required
@require_POST
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of my tokens (programs using it get 401 from then on), after a confirm page
    (``confirm=yes``)."""
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if not token.is_active:
        return redirect("api:tokens")
    if request.POST.get("confirm") != "yes":
        return render(request, "api/confirm_revoke_token.html", {"token": token})
    token.revoke()
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("api:tokens")


@login_required
@require_POST
def sharex_download(request: HttpRequest) -> HttpResponse:
    """A ShareX ``.sxcu`` file.

    With ``token`` (the raw value just shown on the page) the file uses that token;
    without it a new token named "ShareX …" is created for the file. ``album`` (optional)
    sends every screenshot into one of my albums.
    """
    album = request.POST.get("album", "").strip() or None
    if album:  # before a token is issued: a refused download creates nothing
        album = selectors.get_album_for_owner(album, request.user).slug
    raw = request.POST.get("token", "").strip()
    if raw:
        token = ApiToken.lookup(raw)
        if token is None or token.user_id != request.user.pk:
            raise Http404("No such token.")
    else:
        try:
            _, raw = ApiToken.issue(request.user, f"ShareX {timezone.now():%Y-%m-%d %H:%M}")
        except InvalidInput as refused:
            messages.error(request, refused.message)
            return _page(request, status=400)
    config = sharex_config(request, raw, album=album)
    response = HttpResponse(sxcu_bytes(config), content_type="application/json")
    host = re.sub(r"[^A-Za-z0-9.\-\[\]]", "_", split_domain_port(request.get_host())[0])  # "[::1]" -> "[__1]"
    response["Content-Disposition"] = f'attachment; filename="emmmbedding-{host}.sxcu"'
    response["Cache-Control"] = "no-store"
    return response
