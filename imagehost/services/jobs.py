"""The encode-job lifecycle: one ``EncodeJob`` row per uploaded image.

=========  ===========================  ===========================  ======================
state      entered by                   left by                      the original (source)
=========  ===========================  ===========================  ======================
queued     ``uploads.submit_uploads``   ``claim`` (worker) → running  kept
           (web request, one            sweeper → failed (expiry)
           transaction); a retryable
           failure puts it back here
running    ``claim`` (worker, row       ``complete`` → done           kept
           lock; ``attempts`` += 1;     ``fail`` → failed
           heartbeat every              ``requeue`` → queued (retry)
           ``EMMM_JOB_HEARTBEAT_S``)    sweeper → queued + re-sent
                                        (heartbeat stopped)
                                        sweeper → failed (expiry)
done       ``complete`` (worker)        never                        dropped, same transaction
failed     ``fail`` / sweeper           never                        dropped, same transaction
=========  ===========================  ===========================  ======================

Who moves a job, and what happens when something around it breaks:

- **Sending.** The web request saves the job and, after its transaction commits, puts the
  ``encode_job`` task on the broker (``send_job``; ``sends`` += 1).
- **Broker outage at upload time.** ``send_job`` raises ``BrokerUnavailable``; the job
  stays ``queued`` with ``sends == 0`` and the upload is still accepted (202 with a
  ``queue_unavailable`` warning on the API, a notice on the site's result page). The
  sweeper sends it when the broker is back.
- **Fair order.** Jobs are sent by ``dispatch.dispatch_waiting`` (after the upload commits,
  after each job ends, at each sweep): at most ``EMMM_DISPATCH_PER_OWNER`` sent and
  unfinished per owner, owners served round robin (``dispatch.fair_order``); the rest wait
  ``queued`` with ``sends == 0``.
- **Worker death.** While a job is ``running`` a thread in the worker touches its
  ``heartbeat_at`` every ``EMMM_JOB_HEARTBEAT_S`` (5 s). The sweeper (every
  ``EMMM_SWEEP_INTERVAL_S``, 10 s) puts a running job whose heartbeat is older than
  ``EMMM_RUNNING_STALE_S`` (20 s: a few missed beats) back to ``queued`` and re-sends it, so
  a SIGKILLed worker's job is encoded again within about 30 s plus the encode. Tasks are
  also acknowledged late and rejected when the worker process is lost (Redis redelivers the
  message after ``EMMM_VISIBILITY_TIMEOUT_S``). ``claim`` takes a row lock and skips
  finished jobs, and ``complete`` ignores a finished job, so a job ends exactly once even
  when two deliveries race.
- **Database outage under a worker.** The ``encode_job`` task retries itself (backoff 1, 2, 4 …
  30 s) when the database is unreachable; an attempt that never reached the job row does not
  count, and the job is done seconds after the database is back (the sweeper re-sends it too,
  later, should the task be lost).
- **Attempt cap.** Each ``claim`` counts an attempt; at ``EMMM_JOB_MAX_ATTEMPTS`` the next
  delivery fails the job ("Gave up after N attempts …"). Codec refusals (a bad image)
  fail at once; anything else (including missing model weights) is retried.
- **Expiry.** The sweeper (Celery beat, every ``EMMM_SWEEP_INTERVAL_S``) fails jobs still
  queued or running ``EMMM_JOB_EXPIRE_S`` after upload, re-sends ``queued`` jobs not picked
  up within ``EMMM_REQUEUE_AFTER_S`` and dispatches those never sent.

A database check constraint makes a finished job holding an original impossible.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import codec
from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..models import EncodeJob, JobStatus, Picture
from .dispatch import dispatch_waiting
from .errors import BadToken, BrokerUnavailable, NotFound, RetryableEncodeError, TokenBlocked, TokenTooLong
from .library import lock_album, next_position
from .links import fill_reserved_links, get_or_create_short_link
from .rendering import warm_default_rendering
from .similar import index_finished_job
from .tokens import checked_token_sha256

log = logging.getLogger(__name__)


# --- sending -------------------------------------------------------------------------------
def send_job(job_id: UUID | str) -> None:
    """Put the encode task for a job on the broker. Raises BrokerUnavailable."""
    from kombu.exceptions import OperationalError

    from ..tasks import encode_job

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
        raise BrokerUnavailable(job_ids=[UUID(str(job_id))]) from exc
    EncodeJob.objects.filter(pk=job_id).update(sends=F("sends") + 1, updated=timezone.now())


# --- running: claim / encode / complete ------------------------------------------------------
@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to encode a job it has claimed (moved to ``running``)."""

    job_id: UUID
    source: bytes
    model: str | None
    max_chars: int | None
    kind: str = "vae"


def _locked(job_id: UUID | str) -> EncodeJob | None:
    return EncodeJob.objects.select_for_update().filter(pk=job_id).first()


def fail(job: EncodeJob, message: str) -> None:
    """Move a locked, unfinished job to ``failed`` and drop its original."""
    job.status = JobStatus.FAILED
    job.error = message
    job.source = None
    job.finished = timezone.now()
    job.save()


def claim(job_id: UUID | str) -> ClaimedJob | None:
    """queued → running (one attempt more), or None when there is nothing to encode.

    Finished or unknown jobs are left as they are; a job out of attempts is failed.
    """
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or job.is_finished:
            return None
        if job.attempts >= settings.EMMM_JOB_MAX_ATTEMPTS:
            fail(job, f"Gave up after {job.attempts} attempts. " + (job.error or "The worker stopped while encoding."))
            return None
        if job.source is None:  # cannot happen while the check constraint holds; fail clearly
            fail(job, "The uploaded file is no longer available.")
            return None
        job.attempts += 1
        job.status = JobStatus.RUNNING
        job.started = job.heartbeat_at = timezone.now()
        job.save()
        return ClaimedJob(job.pk, bytes(job.source), job.model_name or None, job.max_chars, job.kind)


@contextmanager
def heartbeat(job_id: UUID | str, interval_s: float | None = None) -> Iterator[None]:
    """Touch a running job's ``heartbeat_at`` every ``interval_s`` (a thread) while the block runs.

    The sweeper re-sends a running job whose heartbeat stopped (its worker died)."""
    interval_s = settings.EMMM_JOB_HEARTBEAT_S if interval_s is None else interval_s
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(interval_s):
                try:
                    EncodeJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())
                except Exception:  # noqa: BLE001 - a missed beat is not fatal; the next one may pass
                    log.warning("heartbeat of job %s not recorded", job_id, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def encode(claimed: ClaimedJob) -> codec.EncodeResult:
    """Run the codec on a claimed job's original (no database access). A token longer than the
    site accepts (``EMMM_MAX_TOKEN_CHARS``: noise as AVIF, say) is encoded again under that limit."""
    result = codec.encode(claimed.source, model=claimed.model, max_chars=claimed.max_chars, kind=claimed.kind)
    limit = settings.EMMM_MAX_TOKEN_CHARS
    if len(result.token) > limit:
        result = codec.encode(claimed.source, model=claimed.model, max_chars=limit, kind=claimed.kind)
    return result


def complete(job_id: UUID | str, result: codec.EncodeResult) -> EncodeJob | None:
    """running → done: the picture, its short link (the reserved one gets the token) and the
    dropped original, in one transaction; None when the job was deleted meanwhile (its owner's
    account, say): nothing is written.

    The default rendering is put in the decode cache first (no lock held), so the first view
    of the new link, as soon as the job shows ``done``, is a cache hit; the embedding reuses
    that decode. A token the site refuses (taken down: the same image uploaded again) raises
    TokenBlocked (or TokenTooLong, BadToken) before anything is written.
    """
    checked_token_sha256(result.token)
    decoded = warm_default_rendering(result.token)
    with transaction.atomic():
        album_id = EncodeJob.objects.filter(pk=job_id).values_list("album_id", flat=True).first()
        if album_id is not None:  # the album before the job (library.lock_album's order)
            try:
                lock_album(album_id)
            except NotFound:  # deleted meanwhile: the job's album is now None
                pass
        job = _locked(job_id)
        if job is None or job.is_finished:
            return job
        job.picture = Picture.objects.create(
            owner=job.owner,
            album=job.album,
            position=next_position(job.album) if job.album else 0,
            title=job.title,
            token=result.token,
            model_name=result.model,
            width=result.width,
            height=result.height,
        )
        job.status = JobStatus.DONE
        job.error = ""
        job.source = None
        job.finished = timezone.now()
        job.save()
        # A signed-in upload's link was reserved when it was sent (if its owner deleted it
        # meanwhile, it stays deleted); an anonymous upload gets the shared link now.
        if not fill_reserved_links(job, result.token) and job.owner_id is None:
            get_or_create_short_link(result.token, None, made_for=job)
    index_finished_job(job, decoded)  # after commit: the job is done already; logs its own failures
    return job


def fail_by_id(job_id: UUID | str, message: str) -> EncodeJob | None:
    """running → failed for a codec refusal (the upload itself is at fault); None when the job
    was deleted meanwhile."""
    with transaction.atomic():
        job = _locked(job_id)
        if job is not None and not job.is_finished:
            fail(job, message)
    return job


def requeue(job_id: UUID | str, exc: Exception, message: str) -> EncodeJob | None:
    """running → queued (raises RetryableEncodeError for the task to retry), or failed at the
    cap; None when the job was deleted meanwhile."""
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or job.is_finished:
            return job
        if job.attempts >= settings.EMMM_JOB_MAX_ATTEMPTS:
            fail(job, f"Gave up after {job.attempts} attempts. {message}")
            return job
        job.status = JobStatus.QUEUED
        job.error = message
        job.save()
    raise RetryableEncodeError(message) from exc


def run_encode_job(job_id: UUID | str) -> EncodeJob | None:
    """claim → encode → complete; idempotent (the Celery task may run it more than once).

    Raises RetryableEncodeError for unexpected failures while attempts remain.
    """
    claimed = claim(job_id)
    if claimed is None:
        return EncodeJob.objects.filter(pk=job_id).first()
    try:
        with heartbeat(claimed.job_id):
            result = encode(claimed)
    except codec.ModelUnavailable as exc:  # this worker's set-up, not the upload
        return requeue(job_id, exc, f"The encoder is unavailable: {exc}")
    except codec.CodecError as exc:
        return fail_by_id(job_id, str(exc))
    except Exception as exc:  # noqa: BLE001 - any other failure is retried, then reported
        log.exception("encode failed for job %s", job_id)
        return requeue(job_id, exc, f"Encoding failed ({type(exc).__name__}).")
    try:
        return complete(job_id, result)
    except (BadToken, TokenBlocked, TokenTooLong) as exc:  # the site refuses the token: a retry makes the same one
        return fail_by_id(job_id, exc.message)


# --- the sweeper ---------------------------------------------------------------------------
@dataclass
class SweepReport:
    resent: int = 0
    lost: int = 0
    expired: int = 0
    broker_down: bool = False


def requeue_stale_jobs(now: datetime | None = None) -> SweepReport:
    """Re-send jobs stuck in ``queued`` or ``running`` with a stopped heartbeat; expire old ones.

    Runs every EMMM_SWEEP_INTERVAL_S from Celery beat. Expiring a job drops its original.
    """
    now = now or timezone.now()
    report = SweepReport()
    expire_before = now - timedelta(seconds=settings.EMMM_JOB_EXPIRE_S)
    with transaction.atomic():
        for job in EncodeJob.objects.select_for_update(skip_locked=True).filter(
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING], created__lt=expire_before
        ):
            fail(job, "The job expired before it could be encoded. Please upload the image again.")
            report.expired += 1
    lost = requeue_lost_jobs(now)
    report.lost = len(lost)
    stale = EncodeJob.objects.filter(
        status=JobStatus.QUEUED, sends__gt=0, updated__lt=now - timedelta(seconds=settings.EMMM_REQUEUE_AFTER_S)
    ).values_list("pk", flat=True)
    for job_id in lost + [pk for pk in stale[:500] if pk not in lost]:
        try:
            send_job(job_id)
        except BrokerUnavailable:
            report.broker_down = True
            break
        report.resent += 1
    if not report.broker_down:  # never sent (held for fairness, or the broker was down)
        dispatched = dispatch_waiting()
        report.resent += dispatched.sent
        report.broker_down = dispatched.broker_down
    return report


def requeue_lost_jobs(now: datetime) -> list[UUID]:
    """running → queued for jobs whose heartbeat stopped (their worker died); returns their ids."""
    stale_before = now - timedelta(seconds=settings.EMMM_RUNNING_STALE_S)
    lost: list[UUID] = []
    with transaction.atomic():
        for job in EncodeJob.objects.select_for_update(skip_locked=True).filter(
            Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, updated__lt=stale_before),
            status=JobStatus.RUNNING,
        )[:500]:
            log.warning("job %s: no heartbeat since %s, its worker is gone; sending it again", job.pk, job.heartbeat_at)
            job.status = JobStatus.QUEUED
            job.error = "The worker stopped while encoding."
            job.save()
            lost.append(job.pk)
    return lost


def purge_finished_sources() -> int:
    """Belt and braces: drop any original still attached to a finished job."""
    return EncodeJob.objects.filter(status__in=[JobStatus.DONE, JobStatus.FAILED], source__isnull=False).update(
        source=None
    )
