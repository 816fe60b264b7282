"""The upload page and the result pages of the no-JavaScript path.

With JavaScript the page uses the REST API (``POST /api/v1/images``, ``GET /api/v1/jobs/{id}``)
with the session and the CSRF token; without it the form posts here and the result page
offers a "check again" link until every job has finished (no automatic reload). Both show a job through the API's
``JobSerializer``.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from .. import selectors
from ..api.absolute_urls import token_url_prefix
from ..api.serializers import JobSerializer
from ..budgets import LinkBudget, max_chars_for_budget
from ..models import EncodeJob, EncodeKind, JobStatus
from .. import ratelimits
from ..services import uploads, workers
from ..services.workers import WORKER_DOWN_MESSAGE
from ..services.errors import QUEUE_UNAVAILABLE_MESSAGE, InvalidInput, NotFound, ServiceError
from .errors import shown_beside_the_form
from .forms import UploadForm, parse, upload_body
from .presentation import budget_choices, fits_as_dicts, size_rule, url_places
from .similar import near_duplicate_notice


def _limits() -> dict[str, Any]:
    return {
        "max_bytes": settings.EMMM_MAX_UPLOAD_BYTES,
        "max_mb": round(settings.EMMM_MAX_UPLOAD_BYTES / 1024 / 1024, 1),
        "max_pixels": uploads.max_upload_pixels(),
        "max_files": settings.EMMM_MAX_FILES_PER_UPLOAD,
        "max_token_chars": settings.EMMM_MAX_TOKEN_CHARS,
    }


def waiting_for_queue(job: EncodeJob) -> bool:
    """A queued job never handed to the broker (it was down): the sweeper sends it later."""
    return job.status == JobStatus.QUEUED and job.sends == 0


DELETION_LINKS_COOKIE = "emmm_deletion_links"
_DELETION_LINKS_SALT = "imagehost.views.uploads.deletion-links"
DELETION_LINKS_MAX_AGE_S = 24 * 3600


def remember_deletion_keys(response: HttpResponse, keys: dict[Any, str]) -> None:
    """Give the uploading browser its new uploads' deletion keys, for their result page (only
    there: the page's address may be shared). They are given out only in the upload's answer
    and the database keeps their digests, so they live in a cookie of that browser's, not on
    the server: signed, HttpOnly, sent only to ``/jobs/``, holding the latest upload's keys."""
    value = signing.dumps({str(job_id): key for job_id, key in keys.items()}, salt=_DELETION_LINKS_SALT)
    response.set_cookie(DELETION_LINKS_COOKIE, value, max_age=DELETION_LINKS_MAX_AGE_S, path=reverse("jobs"),
                        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax")


def remembered_deletion_keys(request: HttpRequest) -> dict[str, str]:
    """The deletion keys this browser was given with its latest upload (``remember_deletion_keys``)."""
    try:
        keys = signing.loads(request.COOKIES.get(DELETION_LINKS_COOKIE, ""), salt=_DELETION_LINKS_SALT,
                             max_age=DELETION_LINKS_MAX_AGE_S)
    except signing.BadSignature:
        return {}
    return keys if isinstance(keys, dict) else {}


def result_context(
    request: HttpRequest, job: EncodeJob, *, serializer_context: dict[str, Any] | None = None,
    deletion_keys: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One job on the result page: the API's representation plus where its link fits.

    ``serializer_context``: one shared by the page's jobs (what ``JobSerializer`` reads once per
    serialization, e.g. whether a worker is alive); ``deletion_keys``: ``remembered_deletion_keys``
    when the caller has read them already."""
    data: dict[str, Any] = dict(JobSerializer(job, context=serializer_context or {"request": request}).data)
    data["status_label"] = job.get_status_display()
    if deletion_keys is None:
        deletion_keys = remembered_deletion_keys(request)
    key = deletion_keys.get(str(job.pk)) if job.deletion_digest else None  # None once used
    data["deletion_url"] = request.build_absolute_uri(reverse("delete_upload", args=[key])) if isinstance(key, str) else None
    data["kind"] = job.kind
    picture = data.get("picture")
    if picture:
        data["url_length"] = len(picture["token_url"])
        coded = data.get("coded")  # larger than shown for a side under 16 pixels: no budget's doing
        data["coded_smaller"] = bool(coded) and (coded["width"] < picture["width"] or coded["height"] < picture["height"])
        data["fits"] = fits_as_dicts(data["url_length"])
        slug = selectors.link_slug_of(job.picture)  # its owner is the job's (``jobs.complete``): read with it
        data["short_page_url"] = request.build_absolute_uri(reverse("short_page", args=[slug])) if slug else None
        data["picture_url"] = reverse("picture", args=[job.picture.pk]) if job.picture.owner_id else None
        data["duplicate"] = near_duplicate_notice(job, request.user)
    return data


@require_http_methods(["GET", "HEAD", "POST"])
@upload_body(many=True)
def upload(request: HttpRequest) -> HttpResponse:
    """GET: the upload page. POST (no-JavaScript path): queue the images, 303 to their result page;
    a refusal comes back beside the form, with the choices made kept."""
    if request.method != "POST":
        return _upload_page(request, chosen={"album": request.GET.get("album", "")})  # "upload here" from an empty album
    try:
        return _queue_uploads(request)
    except ServiceError as refused:
        if not shown_beside_the_form(refused, request):
            raise  # the error page (or JSON) of ServiceErrorMiddleware
        chosen = {name: request.POST.get(name, "")[:200] for name in ("title", "album", "budget", "kind")}
        response = _upload_page(request, chosen=chosen, error=refused.message, files_dropped=bool(request.FILES),
                                status=refused.status)
        response["Cache-Control"] = "no-store"  # as every refusal (views.errors.error_response)
        patch_vary_headers(response, ["Accept"])  # a script client gets JSON
        return response


def _upload_page(
    request: HttpRequest, *, chosen: dict[str, str], error: str | None = None, files_dropped: bool = False, status: int = 200
) -> HttpResponse:
    user = request.user if request.user.is_authenticated else None
    context = {
        "albums": selectors.albums_for_owner(user) if user else [],
        "chosen": chosen,
        "chosen_budget": chosen.get("budget") if chosen.get("budget") in LinkBudget.values else LinkBudget.BEST,
        "chosen_kind": chosen.get("kind") if chosen.get("kind") in EncodeKind.values else EncodeKind.VAE,
        "error": error,
        "files_dropped": files_dropped,  # a browser cannot put them back in the file input
        "limits": _limits(),
        "url_places": url_places(),
        "kinds": EncodeKind.choices,
        "budgets": budget_choices(),
        "size_rule": size_rule(),
    }
    return render(request, "imagehost/upload.html", context, status=status)


def _queue_uploads(request: HttpRequest) -> HttpResponse:
    user = request.user if request.user.is_authenticated else None
    files = request.FILES.getlist("images")
    if not files:
        raise InvalidInput("Choose at least one image to upload.")
    if len(files) > settings.EMMM_MAX_FILES_PER_UPLOAD:
        raise InvalidInput(f"Send at most {settings.EMMM_MAX_FILES_PER_UPLOAD} files at once.")
    ratelimits.check(request, "uploads", cost=len(files))  # a 10-file upload costs 10
    options = parse(UploadForm, request.POST)
    album = selectors.album_to_upload_into(options["album"], user)
    max_chars = max_chars_for_budget(options["budget"], token_url_prefix(request))
    submission = uploads.submit_uploads(
        [f.read() for f in files], owner=user, album=album, title=options["title"], kind=options["kind"], max_chars=max_chars
    )
    ids = ",".join(str(j.pk) for j in submission.jobs)
    response = HttpResponseRedirect(f"{reverse('jobs')}?{urlencode({'ids': ids})}")
    response.status_code = 303  # See Other: the result page is fetched with GET
    remember_deletion_keys(response, submission.deletion_keys)
    return response


def _results_page(request: HttpRequest, found: list[EncodeJob]) -> HttpResponse:
    """The jobs' result page, in a fixed number of queries however many jobs (``selectors.jobs_by_ids``
    reads what they show; one serializer context for all of them)."""
    shared: dict[str, Any] = {"request": request}
    keys = remembered_deletion_keys(request)
    results = [result_context(request, j, serializer_context=shared, deletion_keys=keys) for j in found]
    context = {
        "results": results,
        # ``similarity_pending`` is ``selectors.awaiting_embedding`` for the viewer
        "pending": any(not j.is_finished or r["similarity_pending"] for j, r in zip(found, results)),
        "queue_notice": QUEUE_UNAVAILABLE_MESSAGE if any(waiting_for_queue(j) for j in found) else None,
    }
    alive = shared.get("worker_alive")  # asked once by JobSerializer when a job was unfinished
    if context["pending"] and alive is None:
        alive = workers.worker_alive()
    context["worker_notice"] = WORKER_DOWN_MESSAGE if context["pending"] and not alive else None
    return render(request, "imagehost/jobs.html", context)


@require_safe
@never_cache  # it changes as the encoding goes, and shows the uploader its deletion links
def jobs(request: HttpRequest) -> HttpResponse:
    """Result page for several uploads (no-JS path); a "check again" link while any is pending."""
    found = selectors.jobs_by_ids(request.GET.get("ids", "").split(",")[:50])
    if not found:
        raise NotFound("No such upload.")
    return _results_page(request, found)


@require_safe
def job(request: HttpRequest, job_id) -> HttpResponse:
    return _results_page(request, [selectors.get_job(job_id)])
