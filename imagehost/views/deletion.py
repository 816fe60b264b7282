"""``/delete/<key>/``: an upload's secret deletion link (no session needed). GET only shows a
confirm page (link previews and prefetchers never delete); POST deletes."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from .. import selectors
from ..ratelimits import rate_limited
from ..services import deletion
from .library import LIBRARY_THUMB_WIDTH
from .sharing import thumbnail_url


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@rate_limited("slugs")
def delete_upload(request: HttpRequest, key: str) -> HttpResponse:
    job = selectors.job_for_deletion_key(key)  # NotFound (404) for an unknown or used key
    if request.method == "POST":
        deletion.delete_upload(job)
        return render(request, "imagehost/upload_deleted.html")
    link = selectors.reserved_link_for_job(job)
    picture = job.picture
    return render(
        request,
        "imagehost/confirm_delete_upload.html",
        {
            "job": job,
            "picture": picture,
            "preview_url": thumbnail_url(picture.token_sha256, LIBRARY_THUMB_WIDTH) if picture else None,
            "short_url": request.build_absolute_uri(reverse("short_image", args=[link.slug])) if link else None,
        },
    )
