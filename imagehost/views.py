"""Site views: thin wrappers that parse requests, call services/selectors, render."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from . import selectors, services
from .models import EncodeJob, JobStatus, Visibility

IMAGE_CACHE_CONTROL = "public, max-age=31536000, immutable"


def _rate(name: str):
    """A django-ratelimit rate read from settings at request time (tests can override)."""
    return lambda group, request: getattr(settings, name)


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def error_response(request: HttpRequest, status: int, message: str, *, headers: dict | None = None) -> HttpResponse:
    """A clear error page (or JSON for script clients) with the given status."""
    if wants_json(request):
        response: HttpResponse = JsonResponse({"error": message, "status": status}, status=status)
    else:
        response = render(request, "imagehost/error.html", {"status": status, "message": message}, status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def ratelimited(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """RATELIMIT_VIEW: 429 with Retry-After."""
    return error_response(
        request, 429, "Too many requests. Please wait a minute and try again.", headers={"Retry-After": "60"}
    )


def error_400(request, exception=None):
    return error_response(request, 400, "Bad request.")


def error_403(request, exception=None):
    return error_response(request, 403, "You are not allowed to do that.")


def error_404(request, exception=None):
    return error_response(request, 404, "Not found.")


def error_500(request):
    return error_response(request, 500, "Something went wrong on our side.")


class ServiceErrorMiddleware:
    """Turn any ServiceError raised by a view into its clear 4xx/5xx page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, services.BrokerUnavailable):
            return error_response(
                request, 503, exception.message, headers={"Retry-After": str(settings.EMMM_RETRY_AFTER_S)}
            )
        if isinstance(exception, services.ServiceError):
            return error_response(request, exception.status, exception.message)
        return None


# --- upload ----------------------------------------------------------------------------
def _result_context(request: HttpRequest, job: EncodeJob) -> dict[str, Any]:
    """What the result page/JSON shows for one job."""
    data: dict[str, Any] = {
        "id": str(job.pk),
        "status": job.status,
        "status_label": job.get_status_display(),
        "error": job.error,
        "attempts": job.attempts,
        "status_url": request.build_absolute_uri(reverse("job_json", args=[job.pk])),
        "page_url": request.build_absolute_uri(reverse("job", args=[job.pk])),
    }
    if job.status == JobStatus.DONE and job.picture is not None:
        picture = job.picture
        token_url = request.build_absolute_uri(reverse("image", args=[picture.token]))
        link = selectors.short_link_for(picture.token, job.owner)
        data.update(
            token=picture.token,
            chars=picture.chars,
            width=picture.width,
            height=picture.height,
            model=picture.model_id,
            token_url=token_url,
            url_length=len(token_url),
            fits=[f.__dict__ for f in services.token_fits(len(token_url))],
            short_url=request.build_absolute_uri(reverse("short_image", args=[link.slug])) if link else None,
            short_page_url=request.build_absolute_uri(reverse("short_page", args=[link.slug])) if link else None,
            picture_url=reverse("picture", args=[picture.pk]) if picture.owner_id else None,
        )
    return data


@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate=_rate("EMMM_UPLOAD_RATE"), method="POST", block=True)
def upload(request: HttpRequest) -> HttpResponse:
    """GET: the upload page. POST: queue one or more images (never encodes here)."""
    user = request.user if request.user.is_authenticated else None
    albums = selectors.albums_for_owner(user) if user else []
    if request.method == "GET":
        return render(request, "imagehost/upload.html", {"albums": albums, "limits": _limits()})

    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
        raise services.UploadTooLarge(f"The upload is too large; each file may be up to {settings.EMMM_MAX_UPLOAD_BYTES:,} bytes.")
    files = request.FILES.getlist("images")
    if not files:
        raise services.InvalidInput("Choose at least one image to upload.")
    if len(files) > settings.EMMM_MAX_FILES_PER_UPLOAD:
        raise services.InvalidInput(f"Send at most {settings.EMMM_MAX_FILES_PER_UPLOAD} files at once.")
    album = None
    if user and request.POST.get("album"):
        album = selectors.get_album_for_owner(request.POST["album"], user)
    title = request.POST.get("title", "")
    # Reject oversize files before reading them (the name the client sent is ignored).
    for f in files:
        if f.size > settings.EMMM_MAX_UPLOAD_BYTES:
            raise services.UploadTooLarge(
                f"A file is {f.size:,} bytes; the limit is {settings.EMMM_MAX_UPLOAD_BYTES:,} bytes."
            )
    payloads = [f.read() for f in files]
    for data in payloads:
        services.validate_upload(data)
    jobs: list[EncodeJob] = []
    try:
        for data in payloads:
            jobs.append(services.submit_upload(data, owner=user, album=album, title=title))
    except services.BrokerUnavailable as exc:
        ids = [str(j.pk) for j in jobs] + [str(i) for i in exc.job_ids]
        response = error_response(
            request,
            503,
            exc.message,
            headers={"Retry-After": str(settings.EMMM_RETRY_AFTER_S)},
        )
        response["X-Job-Ids"] = ",".join(ids)
        return response
    if wants_json(request):
        return JsonResponse({"jobs": [_result_context(request, j) for j in jobs]}, status=202)
    response = HttpResponseRedirect(f"{reverse('jobs')}?{urlencode({'ids': ','.join(str(j.pk) for j in jobs)})}")
    response.status_code = 303  # See Other: the result page is fetched with GET
    return response


def _limits() -> dict[str, Any]:
    return {
        "max_bytes": settings.EMMM_MAX_UPLOAD_BYTES,
        "max_mb": round(settings.EMMM_MAX_UPLOAD_BYTES / 1024 / 1024, 1),
        "max_pixels": services.max_upload_pixels(),
        "max_files": settings.EMMM_MAX_FILES_PER_UPLOAD,
        "max_token_chars": settings.EMMM_MAX_TOKEN_CHARS,
    }


@require_GET
def jobs(request: HttpRequest) -> HttpResponse:
    """Result page for several uploads (no-JS path); refreshes itself while any is pending."""
    found = selectors.jobs_by_ids(request.GET.get("ids", "").split(",")[:50])
    if not found:
        raise services.NotFound("No such upload.")
    results = [_result_context(request, j) for j in found]
    pending = any(r["status"] in (JobStatus.QUEUED, JobStatus.RUNNING) for r in results)
    return render(request, "imagehost/jobs.html", {"results": results, "pending": pending})


@require_GET
def job(request: HttpRequest, job_id) -> HttpResponse:
    found = selectors.get_job(job_id)
    result = _result_context(request, found)
    return render(
        request, "imagehost/jobs.html", {"results": [result], "pending": not found.is_finished}
    )


@require_GET
def job_json(request: HttpRequest, job_id) -> JsonResponse:
    """Job status for the upload page's script."""
    return JsonResponse(_result_context(request, selectors.get_job(job_id)))


# --- decoding -----------------------------------------------------------------------------
def _image_response(request: HttpRequest, token: str, fmt: str | None) -> HttpResponse:
    sha = services.check_token(token)  # 414 / 400 / 410 before anything else
    fmt = services.normalise_format(fmt)
    width = services.parse_width(request.GET.get("w"))
    etag = services.image_etag(sha, fmt, width)
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response: HttpResponse = HttpResponseNotModified()
    else:
        rendered = services.render_token_image(token, fmt, width)
        response = HttpResponse(rendered.content, content_type=rendered.content_type)
        response["Content-Length"] = str(len(rendered.content))
    response["ETag"] = etag
    response["Cache-Control"] = IMAGE_CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_http_methods(["GET", "HEAD"])
@ratelimit(key="ip", rate=_rate("EMMM_DECODE_RATE"), block=True)
def image(request: HttpRequest, token: str) -> HttpResponse:
    """/i/<token>[.ext]: the decoded image (WebP unless an extension asks otherwise)."""
    fmt = None
    if "." in token:
        token, fmt = token.rsplit(".", 1)
    return _image_response(request, token, fmt)


@require_http_methods(["GET", "HEAD"])
@ratelimit(key="ip", rate=_rate("EMMM_DECODE_RATE"), block=True)
def image_query(request: HttpRequest) -> HttpResponse:
    """/image?q=<token>: same as /i/<token>, for links shaped like the original project's."""
    token = request.GET.get("q", "")
    fmt = request.GET.get("f") or None
    return _image_response(request, token, fmt)


@require_http_methods(["GET", "HEAD"])
@ratelimit(key="ip", rate=_rate("EMMM_DECODE_RATE"), block=True)
def short_image(request: HttpRequest, slug: str) -> HttpResponse:
    """/s/<slug>[.ext]: the image itself (no redirect to a possibly huge URL)."""
    fmt = None
    if "." in slug:
        slug, fmt = slug.rsplit(".", 1)
    link = services.resolve_short_link(slug, count_hit=request.method == "GET")
    return _image_response(request, link.token, fmt)


@require_GET
def short_page(request: HttpRequest, slug: str) -> HttpResponse:
    """/s/<slug>/: a page showing the image, with OpenGraph tags for chat previews."""
    link = services.resolve_short_link(slug, count_hit=False)
    try:
        info = services.inspect_token(link.token)
        size = (info.width, info.height)
    except services.ServiceError:  # a page without sizes is still a page
        size = (None, None)
    token_url = request.build_absolute_uri(reverse("image", args=[link.token]))
    return render(
        request,
        "imagehost/short.html",
        {
            "link": link,
            "image_url": request.build_absolute_uri(reverse("short_image", args=[link.slug])),
            "og_image_url": request.build_absolute_uri(reverse("short_image", args=[f"{link.slug}.png"])),
            "token_url": token_url,
            "width": size[0],
            "height": size[1],
        },
    )


@require_POST
@ratelimit(key="ip", rate=_rate("EMMM_SHORTLINK_RATE"), block=True)
def shorten(request: HttpRequest) -> HttpResponse:
    """Create (or find) a short link for a token; custom slug/expiry for signed-in users."""
    token = request.POST.get("token", "").strip()
    slug = request.POST.get("slug", "").strip() or None
    expires_at = None
    if request.POST.get("expires_at"):
        expires_at = parse_datetime(request.POST["expires_at"])
        if expires_at is None:
            raise services.InvalidInput("The expiry is not a valid date and time (YYYY-MM-DDTHH:MM).")
        if timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at)
    user = request.user if request.user.is_authenticated else None
    link = services.get_or_create_short_link(token, user, slug=slug, expires_at=expires_at)
    next_url = request.POST.get("next", "")
    if next_url.startswith("/") and not next_url.startswith("//"):
        messages.success(request, f"Short link: /s/{link.slug}")
        return redirect(next_url)
    return redirect("short_page", slug=link.slug)


# --- accounts, library, pictures, albums ----------------------------------------------------
@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate="20/h", method="POST", block=True)
def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("library")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@require_GET
def library(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.pictures_for_owner(request.user), settings.EMMM_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "imagehost/library.html", {"page": page})


@login_required
@require_http_methods(["GET", "POST"])
def picture(request: HttpRequest, pk: int) -> HttpResponse:
    """A picture page: title, links, move to album, short link, delete."""
    pic = selectors.get_picture_for_owner(pk, request.user)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "title":
            services.update_picture(pic, title=request.POST.get("title", ""))
            messages.success(request, "Title saved.")
        elif action == "album":
            slug = request.POST.get("album") or ""
            album = selectors.get_album_for_owner(slug, request.user) if slug else None
            services.move_picture_to_album(pic, album)
            messages.success(request, f"Moved to {album.title}." if album else "Removed from its album.")
        elif action == "delete":
            services.delete_picture(pic)
            messages.success(request, "Picture deleted.")
            return redirect("library")
        else:
            raise services.InvalidInput("Unknown action.")
        return redirect("picture", pk=pic.pk)
    token_url = request.build_absolute_uri(reverse("image", args=[pic.token]))
    link = selectors.short_link_for(pic.token, request.user)
    return render(
        request,
        "imagehost/picture.html",
        {
            "pic": pic,
            "token_url": token_url,
            "fits": services.token_fits(len(token_url)),
            "link": link,
            "short_url": request.build_absolute_uri(reverse("short_image", args=[link.slug])) if link else None,
            "albums": selectors.albums_for_owner(request.user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def albums(request: HttpRequest) -> HttpResponse:
    """My albums; POST creates one."""
    if request.method == "POST":
        album = services.create_album(
            request.user, request.POST.get("title", ""), request.POST.get("visibility", Visibility.PRIVATE)
        )
        return redirect("album", slug=album.slug)
    return render(
        request,
        "imagehost/albums.html",
        {"albums": selectors.albums_for_owner(request.user), "visibilities": Visibility.choices},
    )


@require_http_methods(["GET", "POST"])
def album(request: HttpRequest, slug: str) -> HttpResponse:
    """An album page: the owner manages it; others see unlisted/public ones; private is 404."""
    user = request.user if request.user.is_authenticated else None
    alb = selectors.get_album_for_viewer(slug, user)
    is_owner = user is not None and alb.owner_id == user.pk
    if request.method == "POST":
        if not is_owner:
            raise services.NotFound("No such album.")
        action = request.POST.get("action")
        if action == "update":
            services.update_album(alb, title=request.POST.get("title"), visibility=request.POST.get("visibility"))
            messages.success(request, "Album saved.")
        elif action == "delete":
            services.delete_album(alb)
            messages.success(request, "Album deleted; its pictures are still in your library.")
            return redirect("albums")
        elif action in ("up", "down"):
            pic = selectors.get_picture_for_owner(int(request.POST.get("picture", "0") or 0), user)
            if pic.album_id != alb.pk:
                raise services.NotFound("No such picture in this album.")
            services.move_picture_in_album(pic, -1 if action == "up" else 1)
        elif action == "reorder":
            try:
                ids = [int(x) for x in request.POST.get("order", "").split(",") if x.strip()]
            except ValueError:
                raise services.InvalidInput("The order must be a comma-separated list of picture ids.") from None
            services.reorder_album(alb, ids)
        else:
            raise services.InvalidInput("Unknown action.")
        return redirect("album", slug=alb.slug)
    pictures = list(selectors.album_pictures(alb))
    for p in pictures:
        p.url = reverse("image", args=[p.token])
    return render(
        request,
        "imagehost/album.html",
        {"album": alb, "pictures": pictures, "is_owner": is_owner, "visibilities": Visibility.choices},
    )


@require_GET
def public_albums(request: HttpRequest) -> HttpResponse:
    return render(request, "imagehost/public_albums.html", {"albums": selectors.public_albums()[:100]})
