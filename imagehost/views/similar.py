"""Similar pictures on the site: the picture page's sections, ``/search/`` and the duplicate notice."""
from __future__ import annotations

import time
from typing import Any

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .. import selectors
from ..models import EncodeJob
from ..ratelimits import rate_limited
from ..services import search
from ..services.errors import InvalidInput, ServiceError
from .errors import shown_beside_the_form
from .forms import parse, upload_body
from .sharing import image_by_identity_url, thumbnail_url

PAGE_K = 8


def _card(hit: search.SimilarPicture, viewer: Any) -> dict[str, Any]:
    pic = hit.picture
    own = viewer is not None and viewer.is_authenticated and pic.owner_id == viewer.pk
    return {
        "title": pic.title or "(untitled)",
        "thumb": thumbnail_url(pic.token_sha256, 160),
        "href": reverse("picture", args=[pic.pk]) if own else image_by_identity_url(pic.token_sha256),
        "score": f"{hit.score:.2f}",
    }


def similar_sections(pic, viewer) -> list[dict[str, Any]]:
    """The picture page's "similar pictures" sections (mine, public); a failure shows a note."""
    sections = []
    for scope, heading in (("mine", "Similar in your library"), ("public", "Similar public pictures")):
        try:
            hits = search.similar_to_picture(pic, scope=scope, viewer=viewer, k=PAGE_K)
            sections.append({"heading": heading, "cards": [_card(h, viewer) for h in hits], "error": None})
        except ServiceError as exc:
            sections.append({"heading": heading, "cards": [], "error": exc.message})
    return sections


def near_duplicate_notice(job: EncodeJob, viewer: Any) -> dict[str, Any] | None:
    """For the job's signed-in owner: "you already have this picture" (stored at embedding time)."""
    row = selectors.near_duplicate_of(job, viewer)
    if row is None:
        return None
    return {"url": reverse("picture", args=[row.duplicate_of_id]), "title": str(row.duplicate_of),
            "score": f"{row.duplicate_score:.2f}"}


class SearchForm(forms.Form):
    q = forms.CharField(
        required=False, strip=True, max_length=settings.EMMM_MAX_TOKEN_CHARS + 4096, label="Token URL or short link"
    )
    scope = forms.ChoiceField(required=False, choices=[(s, s) for s in search.SCOPES], label="Search in")


@require_http_methods(["GET", "HEAD", "POST"])
@upload_body(many=False)
@rate_limited("searches", methods=("POST",))
def search_page(request: HttpRequest) -> HttpResponse:
    """``/search/``: upload an image or paste a token URL / short link; the query is never stored."""
    viewer = request.user if request.user.is_authenticated else None
    context: dict[str, Any] = {"scope": search.default_scope(viewer), "cards": None, "signed_in": viewer is not None}
    if request.method == "POST":
        typed = request.POST.get("q", "")[:SearchForm.base_fields["q"].max_length or None]
        context.update(query=typed)
        if request.POST.get("scope") in search.SCOPES:
            context.update(scope=request.POST["scope"])  # kept on a refusal, as what was typed is
        try:
            form = parse(SearchForm, request.POST)
            scope = form["scope"] or context["scope"]
            if scope == "mine" and viewer is None:
                raise search.SignInRequired("Sign in to search your own pictures, or choose public pictures.")
            if len(request.FILES.getlist("image")) > 1:
                raise InvalidInput("Choose one image to search with.")
            upload = request.FILES.get("image")
            if (upload is None) == (not form["q"]):
                raise InvalidInput("Choose an image or paste a token URL or short link (one of them).")
            started = time.perf_counter()
            vector = search.embed_query_file(upload.read()) if upload else search.embed_query_text(form["q"])
            hits = search.search_vector(vector, scope=scope, viewer=viewer, k=24)
        except ServiceError as refused:
            if not shown_beside_the_form(refused, request):
                raise  # the error page (or JSON) of ServiceErrorMiddleware
            context.update(error=refused.message)  # the page again, what was typed kept
            return render(request, "imagehost/search.html", context, status=refused.status)
        context.update(scope=scope, cards=[_card(h, viewer) for h in hits], query=form["q"],
                       elapsed_ms=round((time.perf_counter() - started) * 1000))
    return render(request, "imagehost/search.html", context)
