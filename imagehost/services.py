"""Commands: every change to the site's data goes through these functions.

Views (site and REST API) stay thin: they parse input, call one of these and map
``ServiceError.status`` to an HTTP answer. Every exception raised on purpose here is a
``ServiceError`` whose message is safe to show to users.
"""
from __future__ import annotations

import io
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

import codec
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image

from .models import Album, BlockedToken, EncodeJob, JobStatus, Picture, ShortLink, Visibility, token_sha256

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+$")
CUSTOM_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,39}$")

# Output formats for decoded images: name -> (Pillow format, Content-Type, save options).
IMAGE_FORMATS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "webp": ("WEBP", "image/webp", {"quality": 90, "method": 4}),
    "png": ("PNG", "image/png", {"optimize": False}),
    "jpg": ("JPEG", "image/jpeg", {"quality": 90}),
    "avif": ("AVIF", "image/avif", {"quality": 80}),
}
FORMAT_ALIASES = {"jpeg": "jpg"}


# --- errors -------------------------------------------------------------------------
class ServiceError(Exception):
    """A refusal with a user-safe message and the HTTP status that fits it."""

    status: int = 400
    code: str = "invalid"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class InvalidInput(ServiceError):
    status, code = 400, "invalid"


class BadToken(ServiceError):
    status, code = 400, "bad_token"


class TokenTooLong(ServiceError):
    status, code = 414, "token_too_long"


class TokenBlocked(ServiceError):
    status, code = 410, "blocked"


class LinkExpired(ServiceError):
    status, code = 410, "expired"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class UploadTooLarge(ServiceError):
    status, code = 413, "too_large"


class UnsupportedImage(ServiceError):
    status, code = 415, "not_an_image"


class SlugTaken(ServiceError):
    status, code = 409, "slug_taken"


class BrokerUnavailable(ServiceError):
    """The task queue cannot be reached; the job is saved and will be sent later."""

    status, code = 503, "queue_unavailable"

    def __init__(self, message: str, job_ids: list[UUID] | None = None):
        super().__init__(message)
        self.job_ids = job_ids or []


class RetryableEncodeError(Exception):
    """An unexpected failure inside an encode; the task should try again."""


# --- limits -----------------------------------------------------------------------
def max_upload_pixels() -> int:
    """The most pixels an upload may have (more: 413). The codec downscales what it encodes."""
    return settings.EMMM_MAX_UPLOAD_PIXELS


@dataclass(frozen=True)
class Fit:
    """Whether a URL of some length fits a place that carries links."""

    place: str
    limit: int
    fits: bool


URL_PLACES: tuple[tuple[str, int], ...] = (
    ("Chat apps (~4,000 characters)", 4000),
    ("Common proxies and servers (8,192)", 8192),
    ("This site's limit", 0),  # filled from EMMM_MAX_TOKEN_CHARS
)


def token_fits(url_length: int) -> list[Fit]:
    """Where a link of ``url_length`` characters can travel."""
    out = []
    for place, limit in URL_PLACES:
        limit = limit or settings.EMMM_MAX_TOKEN_CHARS
        out.append(Fit(place, limit, url_length <= limit))
    return out


# --- uploads and encode jobs ---------------------------------------------------------
def validate_upload(data: bytes) -> "codec.ImageFacts":
    """Check size, format and pixel count without decoding pixels.

    Raises UploadTooLarge (413) or UnsupportedImage (415).
    """
    if len(data) > settings.EMMM_MAX_UPLOAD_BYTES:
        raise UploadTooLarge(
            f"The file is {len(data):,} bytes; the limit is {settings.EMMM_MAX_UPLOAD_BYTES:,} bytes."
        )
    if not data:
        raise UnsupportedImage("The file is empty.")
    try:
        facts = codec.probe_image(data)
    except codec.InvalidImage as exc:
        if "pixel" in str(exc).lower():
            raise UploadTooLarge(str(exc)) from exc
        raise UnsupportedImage(str(exc)) from exc
    fmt = (facts.format or "").upper()
    if fmt not in {f.upper() for f in settings.EMMM_ALLOWED_FORMATS}:
        raise UnsupportedImage(f"{fmt or 'This'} images are not accepted; send PNG, JPEG, WebP or GIF.")
    pixels = facts.width * facts.height
    if pixels > max_upload_pixels():
        raise UploadTooLarge(
            f"The image is {facts.width}x{facts.height} = {pixels:,} pixels; the limit is {max_upload_pixels():,}."
        )
    return facts


def submit_upload(
    data: bytes,
    *,
    owner: Any = None,
    album: Album | None = None,
    title: str = "",
    max_chars: int | None = None,
    model: str | None = None,
) -> EncodeJob:
    """Validate an upload, save it as a queued EncodeJob and send the task after commit.

    Never encodes on the calling thread. ``owner`` is a user or None (anonymous).
    Raises UploadTooLarge / UnsupportedImage / InvalidInput before anything is saved.
    If the broker is down the job stays saved (queued) and BrokerUnavailable (503) is
    raised once the surrounding transaction commits; the sweeper sends it later.
    """
    if owner is not None and not getattr(owner, "is_authenticated", False):
        owner = None
    if album is not None and (owner is None or album.owner_id != owner.pk):
        raise InvalidInput("You can only add pictures to your own albums.")
    if model:
        if model not in codec.available_models():
            raise InvalidInput(f"Unknown model {model!r}; available: {', '.join(codec.available_models())}.")
    if max_chars is not None and max_chars < 16:
        raise InvalidInput("max_chars is too small.")
    validate_upload(data)
    with transaction.atomic():
        job = EncodeJob.objects.create(
            owner=owner,
            album=album,
            title=(title or "")[:200],
            model_name=model or "",
            max_chars=max_chars,
            source=data,
            source_bytes=len(data),
        )
        transaction.on_commit(partial(send_job, job.pk), robust=False)
    return job


def send_job(job_id: UUID | str) -> None:
    """Put the encode task for a job on the broker. Raises BrokerUnavailable."""
    from kombu.exceptions import OperationalError

    from .tasks import encode_job

    try:
        # A short-lived connection per send: a broker outage never poisons a shared pool.
        with encode_job.app.connection_for_write() as conn:
            encode_job.apply_async(
                args=[str(job_id)],
                connection=conn,
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5},
            )
    except (OperationalError, ConnectionError, OSError) as exc:
        log.warning("broker unavailable, job %s stays queued: %s", job_id, exc)
        raise BrokerUnavailable(
            "The encoding queue is unavailable right now. Your upload is saved and will be "
            "encoded when the queue is back.",
            job_ids=[UUID(str(job_id))],
        ) from exc
    EncodeJob.objects.filter(pk=job_id).update(sends=F("sends") + 1, updated=timezone.now())


def _finish_failed(job: EncodeJob, message: str) -> None:
    job.status = JobStatus.FAILED
    job.error = message
    job.source = None
    job.finished = timezone.now()
    job.save()


def run_encode_job(job_id: UUID | str) -> EncodeJob | None:
    """Run one encode job; idempotent (called by the Celery task, maybe more than once).

    A finished job is left as it is. The result is written, and the original dropped,
    in one transaction guarded by a row lock, so a job ends ``done`` exactly once even
    when two deliveries race. Raises RetryableEncodeError for unexpected failures while
    attempts remain.
    """
    max_attempts = settings.EMMM_JOB_MAX_ATTEMPTS
    with transaction.atomic():
        job = EncodeJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return job
        if job.attempts >= max_attempts:
            _finish_failed(
                job,
                f"Gave up after {job.attempts} attempts. " + (job.error or "The worker stopped while encoding."),
            )
            return job
        job.attempts += 1
        job.status = JobStatus.RUNNING
        job.started = timezone.now()
        job.save()
        data = bytes(job.source) if job.source is not None else None
    if data is None:  # cannot happen while the check constraint holds; fail clearly
        with transaction.atomic():
            job = EncodeJob.objects.select_for_update().get(pk=job_id)
            if not job.is_finished:
                _finish_failed(job, "The uploaded file is no longer available.")
        return job

    try:
        if settings.EMMM_TEST_ENCODE_DELAY_S:
            import time

            time.sleep(settings.EMMM_TEST_ENCODE_DELAY_S)
        result = codec.encode(
            data, model=job.model_name or None, max_chars=job.max_chars
        )
    except codec.CodecError as exc:
        if isinstance(exc, codec.ModelUnavailable):  # this worker's set-up, not the upload
            return _retry_or_fail(job_id, exc, f"The encoder is unavailable: {exc}")
        with transaction.atomic():
            job = EncodeJob.objects.select_for_update().get(pk=job_id)
            if not job.is_finished:
                _finish_failed(job, str(exc))
        return job
    except Exception as exc:  # noqa: BLE001 - any other failure is retried, then reported
        log.exception("encode failed for job %s", job_id)
        return _retry_or_fail(job_id, exc, f"Encoding failed ({type(exc).__name__}).")

    with transaction.atomic():
        job = EncodeJob.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            return job
        picture = Picture.objects.create(
            owner=job.owner,
            album=job.album,
            position=_next_position(job.album) if job.album else 0,
            title=job.title,
            token=result.token,
            model_id=result.model,
            width=result.width,
            height=result.height,
        )
        job.picture = picture
        job.status = JobStatus.DONE
        job.error = ""
        job.source = None
        job.finished = timezone.now()
        job.save()
        get_or_create_short_link(result.token, job.owner)
    return job


def _retry_or_fail(job_id: UUID | str, exc: Exception, message: str) -> EncodeJob:
    """Put a job back in the queue (raises RetryableEncodeError) unless attempts are spent."""
    with transaction.atomic():
        job = EncodeJob.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            return job
        if job.attempts >= settings.EMMM_JOB_MAX_ATTEMPTS:
            _finish_failed(job, f"Gave up after {job.attempts} attempts. {message}")
            return job
        job.status = JobStatus.QUEUED
        job.error = message
        job.save()
    raise RetryableEncodeError(message) from exc


@dataclass
class SweepReport:
    resent: int = 0
    expired: int = 0
    broker_down: bool = False


def requeue_stale_jobs(now: datetime | None = None) -> SweepReport:
    """Re-send jobs stuck in ``queued`` (or ``running`` with a dead worker); expire old ones.

    Runs every EMMM_SWEEP_INTERVAL_S from Celery beat (``worker -B``) and from the
    ``sweep_jobs`` management command. Expiring a job drops its original.
    """
    now = now or timezone.now()
    report = SweepReport()
    expire_before = now - timedelta(seconds=settings.EMMM_JOB_EXPIRE_S)
    with transaction.atomic():
        for job in EncodeJob.objects.select_for_update(skip_locked=True).filter(
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING], created__lt=expire_before
        ):
            _finish_failed(job, "The job expired before it could be encoded. Please upload the image again.")
            report.expired += 1
    stale = EncodeJob.objects.filter(
        Q(status=JobStatus.QUEUED, sends=0, updated__lt=now - timedelta(seconds=1))
        | Q(status=JobStatus.QUEUED, updated__lt=now - timedelta(seconds=settings.EMMM_REQUEUE_AFTER_S))
        | Q(status=JobStatus.RUNNING, updated__lt=now - timedelta(seconds=settings.EMMM_RUNNING_STALE_S))
    ).values_list("pk", flat=True)
    for job_id in list(stale[:500]):
        try:
            send_job(job_id)
        except BrokerUnavailable:
            report.broker_down = True
            break
        report.resent += 1
    return report


def purge_finished_sources() -> int:
    """Belt and braces: drop any original still attached to a finished job."""
    return EncodeJob.objects.filter(status__in=[JobStatus.DONE, JobStatus.FAILED], source__isnull=False).update(
        source=None
    )


# --- tokens: checking, blocking, rendering ------------------------------------------
def check_token(token: str) -> str:
    """Validate a token's shape and takedown state; return its sha256.

    Order matters: too long (414), bad characters (400), blocked (410). No decoding.
    """
    if len(token) > settings.EMMM_MAX_TOKEN_CHARS:
        raise TokenTooLong(
            f"The token has {len(token):,} characters; this site accepts up to {settings.EMMM_MAX_TOKEN_CHARS:,}."
        )
    if not token or not TOKEN_RE.match(token):
        raise BadToken("That is not a valid image token (only A-Z, a-z, 0-9, '-' and '_' are allowed).")
    sha = token_sha256(token)
    if BlockedToken.objects.filter(token_sha256=sha).exists():
        raise TokenBlocked("This image has been taken down.")
    return sha


def block_token(token_or_sha256: str, *, by: Any = None, reason: str = "") -> BlockedToken:
    """Block a token (given as the token itself or its 64-hex sha256). Idempotent."""
    value = token_or_sha256.strip()
    sha = value.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", value) else token_sha256(value)
    blocked, _ = BlockedToken.objects.get_or_create(
        token_sha256=sha, defaults={"reason": reason[:300], "created_by": by if by and by.pk else None}
    )
    return blocked


def unblock_token(token_or_sha256: str) -> int:
    """Lift a block; returns how many blocks were removed."""
    value = token_or_sha256.strip()
    sha = value.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", value) else token_sha256(value)
    return BlockedToken.objects.filter(token_sha256=sha).delete()[0]


def inspect_token(token: str) -> "codec.TokenInfo":
    """A token's header fields without running the model (used by the REST API).

    Raises TokenTooLong / BadToken / TokenBlocked like ``render_token_image``.
    """
    check_token(token)
    try:
        return codec.inspect(token)
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc


def normalise_format(fmt: str | None) -> str:
    """Map a requested extension to a supported output format (default WebP)."""
    fmt = (fmt or "webp").lower()
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in IMAGE_FORMATS:
        raise NotFound(f"Unknown image format {fmt!r}; use webp, png, jpg or avif.")
    return fmt


def parse_width(raw: str | None) -> int | None:
    """Parse ``?w=N``: a positive integer up to EMMM_MAX_RENDER_WIDTH, else InvalidInput."""
    if raw in (None, ""):
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= settings.EMMM_MAX_RENDER_WIDTH:
        raise InvalidInput(f"w must be a whole number from 1 to {settings.EMMM_MAX_RENDER_WIDTH}.")
    return int(raw)


def image_etag(sha: str, fmt: str, width: int | None) -> str:
    """Strong ETag for a rendering: computable without decoding."""
    return f'"{sha[:40]}-{fmt}-{width or 0}"'


@dataclass(frozen=True)
class RenderedImage:
    content: bytes
    content_type: str
    etag: str
    fmt: str
    width: int
    height: int
    from_cache: bool = False


def render_token_image(token: str, fmt: str | None = "webp", width: int | None = None) -> RenderedImage:
    """Decode a token to image bytes in ``fmt`` (cached by token hash, format, width).

    ``width`` only shrinks (never upscales). Raises TokenTooLong / BadToken / TokenBlocked
    / NotFound before any model runs.
    """
    sha = check_token(token)
    fmt = normalise_format(fmt)
    pil_format, content_type, options = IMAGE_FORMATS[fmt]
    etag = image_etag(sha, fmt, width)
    key = f"emmm:img:v1:{sha}:{fmt}:{width or 0}"
    hit = cache.get(key)
    if hit is not None:
        content, w, h = hit
        return RenderedImage(content, content_type, etag, fmt, w, h, from_cache=True)
    try:
        image = codec.decode(token)
    except codec.ModelUnavailable as exc:
        raise ServiceError(f"This server cannot decode the token right now: {exc}", status=503, code="model_unavailable") from exc
    except codec.CodecError as exc:
        raise BadToken(str(exc)) from exc
    if width and width < image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    if pil_format == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format=pil_format, **options)
    content = buf.getvalue()
    cache.set(key, (content, image.width, image.height))
    return RenderedImage(content, content_type, etag, fmt, image.width, image.height)


# --- short links ---------------------------------------------------------------------
def get_or_create_short_link(
    token: str, owner: Any = None, slug: str | None = None, expires_at: datetime | None = None
) -> ShortLink:
    """Return the owner's short link for a token, creating it if needed.

    The same owner (or anonymous) shortening the same token again gets the same link.
    ``slug`` (signed-in users only) asks for a custom slug; SlugTaken (409) if it is used.
    ``expires_at`` sets or refreshes the expiry.
    """
    if owner is not None and not getattr(owner, "is_authenticated", False):
        owner = None
    sha = check_token(token)
    if slug is not None:
        if owner is None:
            raise InvalidInput("Sign in to choose a custom short link.")
        if not CUSTOM_SLUG_RE.match(slug):
            raise InvalidInput("A custom slug has 3-40 characters: letters, digits, '-' and '_'.")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("The expiry must be in the future.")
    owner_q = Q(owner=owner) if owner is not None else Q(owner__isnull=True)
    existing = ShortLink.objects.filter(owner_q, token_sha256=sha).first()
    if existing is not None:
        if slug is not None and slug != existing.slug:
            raise SlugTaken(f"You already have a short link for this image: /s/{existing.slug}")
        if expires_at is not None or (existing.expires_at and existing.expires_at <= timezone.now()):
            existing.expires_at = expires_at
            existing.save(update_fields=["expires_at"])
        return existing
    for _ in range(5):
        candidate = slug or secrets.token_urlsafe(9)
        try:
            with transaction.atomic():
                return ShortLink.objects.create(slug=candidate, token=token, owner=owner, expires_at=expires_at)
        except IntegrityError:
            existing = ShortLink.objects.filter(owner_q, token_sha256=sha).first()
            if existing is not None:  # a concurrent request created it
                return existing
            if slug is not None:
                raise SlugTaken(f"The short link /s/{slug} is taken; choose another.") from None
    raise ServiceError("Could not create a short link; please try again.", status=503)


def resolve_short_link(slug: str, *, count_hit: bool = True) -> ShortLink:
    """Find a live short link: NotFound (404), LinkExpired or TokenBlocked (410)."""
    link = ShortLink.objects.filter(slug=slug).first()
    if link is None:
        raise NotFound("No such short link.")
    if BlockedToken.objects.filter(token_sha256=link.token_sha256).exists():
        raise TokenBlocked("This image has been taken down.")
    if link.expires_at and link.expires_at <= timezone.now():
        raise LinkExpired("This short link has expired.")
    if count_hit:
        ShortLink.objects.filter(pk=link.pk).update(hits=F("hits") + 1)
    return link


def delete_short_link(link: ShortLink, *, owner: Any) -> None:
    """Delete one of the owner's short links."""
    if link.owner_id is None or link.owner_id != owner.pk:
        raise NotFound("No such short link.")
    link.delete()


# --- pictures ---------------------------------------------------------------------------
def _next_position(album: Album) -> int:
    top = album.pictures.aggregate(m=Max("position"))["m"]
    return 0 if top is None else top + 1


def update_picture(picture: Picture, *, title: str | None = None) -> Picture:
    """Change a picture's title."""
    if title is not None:
        picture.title = title.strip()[:200]
        picture.save(update_fields=["title"])
    return picture


def move_picture_to_album(picture: Picture, album: Album | None) -> Picture:
    """Put a picture in one of its owner's albums (at the end), or take it out (None)."""
    if album is not None and album.owner_id != picture.owner_id:
        raise NotFound("No such album.")
    with transaction.atomic():
        picture.album = album
        picture.position = _next_position(album) if album else 0
        picture.save(update_fields=["album", "position"])
    return picture


def delete_picture(picture: Picture) -> None:
    """Delete a picture row (the token itself cannot be recalled: anyone holding it keeps the image)."""
    picture.delete()


# --- albums -----------------------------------------------------------------------------
def _unique_album_slug(title: str) -> str:
    base = slugify(title)[:40] or "album"
    return f"{base}-{secrets.token_hex(4)}"


def _check_visibility(visibility: str) -> str:
    if visibility not in Visibility.values:
        raise InvalidInput(f"Visibility must be one of: {', '.join(Visibility.values)}.")
    return visibility


def create_album(owner: Any, title: str, visibility: str = Visibility.PRIVATE) -> Album:
    """Create an album for a signed-in user; its slug is unguessable."""
    title = (title or "").strip()
    if not title:
        raise InvalidInput("An album needs a title.")
    return Album.objects.create(
        owner=owner, title=title[:200], slug=_unique_album_slug(title), visibility=_check_visibility(visibility)
    )


def update_album(album: Album, *, title: str | None = None, visibility: str | None = None) -> Album:
    """Rename an album and/or change its visibility."""
    if title is not None:
        title = title.strip()
        if not title:
            raise InvalidInput("An album needs a title.")
        album.title = title[:200]
    if visibility is not None:
        album.visibility = _check_visibility(visibility)
    album.save()
    return album


def delete_album(album: Album) -> None:
    """Delete an album; its pictures stay in the library, outside any album."""
    album.delete()


def reorder_album(album: Album, picture_ids: list[int]) -> None:
    """Set the album's order: ``picture_ids`` must be exactly the album's pictures."""
    current = set(album.pictures.values_list("pk", flat=True))
    if len(picture_ids) != len(set(picture_ids)) or set(picture_ids) != current:
        raise InvalidInput("The new order must list each picture of the album exactly once.")
    with transaction.atomic():
        for position, pk in enumerate(picture_ids):
            Picture.objects.filter(pk=pk, album=album).update(position=position)


def move_picture_in_album(picture: Picture, delta: int) -> None:
    """Move a picture up (delta<0) or down (delta>0) in its album's order."""
    album = picture.album
    if album is None:
        raise InvalidInput("This picture is not in an album.")
    ids = list(album.pictures.order_by("position", "created", "pk").values_list("pk", flat=True))
    i = ids.index(picture.pk)
    j = max(0, min(len(ids) - 1, i + delta))
    ids.insert(j, ids.pop(i))
    reorder_album(album, ids)
