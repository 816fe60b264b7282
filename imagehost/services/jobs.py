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
           heartbeat every              ``requeue`` → queued (retry;
           ``EMMM_JOB_HEARTBEAT_S``)      time limit: an attempt)
                                        ``release`` → queued (outage:
                                          the attempt given back)
                                        sweeper → queued + re-sent
                                        (heartbeat stopped)
                                        sweeper → failed (expiry)
done       ``complete`` (worker)        never                        dropped, same transaction
failed     ``fail`` / sweeper           never                        dropped, same transaction
=========  ===========================  ===========================  ======================

Who moves a job, and what happens when something around it breaks:

- **Sending.** The web request saves the job and, after its transaction commits, puts the
  ``encode_job`` task on the broker (``dispatch.dispatch_waiting``: ``sends`` += 1 in a short
  transaction, then ``publish_job`` with no transaction open). Every broker connection is
  bounded (``broker_connection``: connect, read and write within ``EMMM_BROKER_TIMEOUT_S``).
- **Broker outage at upload time** (refused, or accepting connections and never answering).
  ``publish_job`` raises ``BrokerUnavailable`` within about ``EMMM_BROKER_TIMEOUT_S``; the job
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
  finished jobs and jobs ``running`` with a fresh heartbeat (a duplicate delivery: no second
  encode, no attempt counted), and ``complete`` ignores a finished job, so a job ends exactly
  once even when two deliveries race. (A redelivery that comes while a dead worker's heartbeat
  is still fresh is dropped the same way; the job is re-sent once its heartbeat is stale.)
  After each job the task also re-sends lost jobs (as the sweeper does), since a busy worker
  skips the sweeper's expired messages.
- **Dependency outage under a worker** (the database, the cache). The ``encode_job`` task
  retries itself (backoff 1, 2, 4 … 30 s); an outage costs no attempt: one before the claim
  never reached the row (the worker reads the cache before it claims, so it does not encode
  while the cache is down), and one while ``complete`` saves a good encode (the takedown check
  reads the cache; saving the link drops cached look-ups inside the transaction, so the change
  commits only once the cache heard of it) puts the job back in the queue with its attempt
  given back (``release``). The takedown check never fails open or closed: the job waits for
  the cache, and serving needs the cache anyway. When the database cannot take even that, the
  task's retry takes its own claim back (``claim(resume_started=…)``). The job is done seconds
  after the service is back (the sweeper re-sends it too, later, should the task be lost).
- **Time limits** (``EMMM_ENCODE_SOFT_TIME_LIMIT_S`` / ``EMMM_ENCODE_TIME_LIMIT_S``, prefork
  pool only). A hung encode keeps its heartbeat fresh (a thread beats), so only a time limit
  ends it: at the soft one the encode is interrupted and the job goes back in the queue (an
  attempt counted: a poison image fails with "Gave up after N attempts. Encoding took longer
  than … s"); at the hard one the pool kills the process and the task's failure hook does the
  same (``requeue_after_time_limit``).
- **Attempt cap.** Each ``claim`` counts an attempt; at ``EMMM_JOB_MAX_ATTEMPTS`` the next
  delivery fails the job ("Gave up after N attempts …"). Codec refusals (a bad image)
  fail at once; anything else (including missing model weights) is retried.
- **Expiry.** The sweeper (Celery beat, every ``EMMM_SWEEP_INTERVAL_S``; each message expires
  after that interval, so a worker that was away discards the sweeps sent meanwhile instead of
  running them all) fails jobs still queued
  or running ``EMMM_JOB_EXPIRE_S`` after upload, re-sends ``queued`` jobs not picked up within
  ``EMMM_REQUEUE_AFTER_S`` of their last send, backing off (``resend_interval_s``: 1, 2, 4, 8
  times that) so a backlog does not multiply messages, and dispatches those never sent.

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
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..models import EncodeJob, JobStatus, Picture
from .dispatch import dispatch_waiting
from .errors import (
    BadToken,
    BrokerUnavailable,
    CacheUnavailable,
    DatabaseUnavailable,
    DependencyUnavailable,
    JobInterrupted,
    NotFound,
    RetryableEncodeError,
    TokenBlocked,
    TokenTooLong,
    dependency_outage,
)
from .library import lock_album, next_position
from .links import fill_reserved_links, get_or_create_short_link
from .rendering import warm_default_rendering
from .similar import index_finished_job
from .tokens import checked_token_sha256

log = logging.getLogger(__name__)


# --- sending -------------------------------------------------------------------------------
def broker_connection():
    """A short-lived connection for writing to the broker (a broker outage never poisons a shared
    pool), bounded whatever the app's transport options say: connecting, and each read or write,
    take at most ``EMMM_BROKER_TIMEOUT_S`` (a broker that accepts connections and never answers
    would otherwise hold the caller for ever)."""
    from ..tasks import encode_job

    timeout = settings.EMMM_BROKER_TIMEOUT_S
    return encode_job.app.connection_for_write(
        connect_timeout=timeout,
        transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout},
    )


def publish_job(job_id: UUID | str) -> None:
    """Put the encode task for a job on the broker; touches no row. Raises BrokerUnavailable.

    Call it outside any transaction: a broker that never answers holds it for
    ``EMMM_BROKER_TIMEOUT_S`` (a few times that when it stops answering mid-publish: kombu
    retries once), and no row lock or SQLite write lock may be held meanwhile.
    """
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from ..tasks import encode_job

    try:
        with broker_connection() as conn:
            encode_job.apply_async(
                args=[str(job_id)],
                connection=conn,
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5},
            )
    # kombu reports a failed connect as its OperationalError; a connection that stops answering
    # mid-publish can surface as the Redis client's own error.
    except (OperationalError, ConnectionError, OSError, RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("broker unavailable, job %s stays queued: %s", job_id, exc)
        raise BrokerUnavailable(job_ids=[UUID(str(job_id))]) from exc


def send_job(job_id: UUID | str, now: datetime | None = None) -> None:
    """``publish_job``, then count the send (``sends`` += 1, ``updated`` := now): the sweeper's
    re-sends. ``dispatch.dispatch_waiting`` counts its sends first, then publishes."""
    publish_job(job_id)
    EncodeJob.objects.filter(pk=job_id).update(sends=F("sends") + 1, updated=now or timezone.now())


# --- running: claim / encode / complete ------------------------------------------------------
@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to encode a job it has claimed (moved to ``running``)."""

    job_id: UUID
    source: bytes
    model: str | None
    max_chars: int | None
    kind: str = "vae"
    #: ``EncodeJob.started`` as this claim set it: whose claim the running row is.
    started: datetime | None = None


def _locked(job_id: UUID | str) -> EncodeJob | None:
    return EncodeJob.objects.select_for_update().filter(pk=job_id).first()


def fail(job: EncodeJob, message: str) -> None:
    """Move a locked, unfinished job to ``failed`` and drop its original."""
    job.status = JobStatus.FAILED
    job.error = message
    job.source = None
    job.finished = timezone.now()
    job.save()


def heartbeat_is_fresh(job: EncodeJob, now: datetime | None = None) -> bool:
    """Whether a running job's worker beat within ``EMMM_RUNNING_STALE_S`` (it is alive and
    encoding); the sweeper takes a running job whose heartbeat is older for lost."""
    beat = job.heartbeat_at or job.updated
    return beat is not None and beat >= (now or timezone.now()) - timedelta(seconds=settings.EMMM_RUNNING_STALE_S)


def claim(job_id: UUID | str, *, resume_started: datetime | None = None) -> ClaimedJob | None:
    """queued → running (one attempt more), or None when there is nothing to encode.

    Finished or unknown jobs are left as they are; a job out of attempts is failed. A job
    already ``running`` with a fresh heartbeat is being encoded by another delivery (a
    duplicate message): None, no attempt counted; with a stale heartbeat its worker is gone
    and this delivery takes it over (an attempt). ``resume_started``: this task's own retry
    after a dependency outage interrupted its claim (``JobInterrupted``); a running job whose
    ``started`` is still that one is taken back without counting another attempt.
    """
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or job.is_finished:
            return None
        resuming = job.status == JobStatus.RUNNING and resume_started is not None and job.started == resume_started
        if job.status == JobStatus.RUNNING and not resuming and heartbeat_is_fresh(job):
            log.info("job %s is already being encoded (heartbeat %s): this delivery is a duplicate, dropped",
                     job.pk, job.heartbeat_at)
            return None
        if job.source is None:  # cannot happen while the check constraint holds; fail clearly
            fail(job, "The uploaded file is no longer available.")
            return None
        if resuming:
            log.info("job %s: taking back the claim a dependency outage interrupted (no attempt counted)", job.pk)
        else:
            if job.attempts >= settings.EMMM_JOB_MAX_ATTEMPTS:
                fail(job, f"Gave up after {job.attempts} attempts. " + (job.error or "The worker stopped while encoding."))
                return None
            job.attempts += 1
            job.started = timezone.now()
        job.status = JobStatus.RUNNING
        job.heartbeat_at = timezone.now()
        job.save()
        return ClaimedJob(job.pk, bytes(job.source), job.model_name or None, job.max_chars, job.kind, job.started)


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


def requeue(job_id: UUID | str, exc: BaseException, message: str) -> EncodeJob | None:
    """running → queued (raises RetryableEncodeError for the task to retry), or failed at the
    cap; None when the job was deleted meanwhile."""
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or job.is_finished:
            return job
        if not _back_in_queue_or_failed(job, message):
            return job
    raise RetryableEncodeError(message) from exc


def _back_in_queue_or_failed(job: EncodeJob, message: str) -> bool:
    """A locked running job that could not finish: queued again with ``message`` (True), or,
    out of attempts, failed saying so (False)."""
    if job.attempts >= settings.EMMM_JOB_MAX_ATTEMPTS:
        fail(job, f"Gave up after {job.attempts} attempts. {message}")
        return False
    job.status = JobStatus.QUEUED
    job.error = message
    job.save()
    return True


def time_limit_message(limit_s: float | None = None) -> str:
    """What a job that ran into the encode task's time limit says (and, at the cap, fails with)."""
    limit_s = settings.EMMM_ENCODE_SOFT_TIME_LIMIT_S if limit_s is None else limit_s
    return f"Encoding took longer than {limit_s:g} s and was stopped."


def requeue_after_time_limit(job_id: UUID | str, limit_s: float) -> EncodeJob | None:
    """The pool killed the process encoding this job at the task's hard time limit (an encode
    stuck where the soft limit cannot interrupt it): running → queued, the attempt counted,
    with the reason, and sent again; failed at the cap. A job no longer running (handled
    already: Celery reports one hard time limit more than once) is left alone."""
    message = time_limit_message(limit_s)
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or job.status != JobStatus.RUNNING:
            return job
        log.warning("job %s: the encode was killed at the hard time limit (%g s)", job_id, limit_s)
        if not _back_in_queue_or_failed(job, message):
            return job
    try:
        send_job(job_id)
    except BrokerUnavailable:
        pass  # queued: the sweeper sends it when the broker is back
    return job


def dependency_name(outage: DependencyUnavailable) -> str:
    """What is down, for log lines and the job's message: "cache", "database"."""
    return {CacheUnavailable.code: "cache", DatabaseUnavailable.code: "database"}.get(outage.code, "a service it needs")


def release(claimed: ClaimedJob, outage: DependencyUnavailable) -> bool:
    """running → queued for a job a dependency outage interrupted (the cache or the database
    failed while the job was saved: ``complete``), giving back the attempt its claim counted:
    an outage is not the upload's fault. Only while the row is still this claim's (``started``).
    False when the row could not be written (the database is down too)."""
    what = dependency_name(outage)
    try:
        with transaction.atomic():
            job = _locked(claimed.job_id)
            if job is None or job.status != JobStatus.RUNNING or job.started != claimed.started:
                return True  # finished, or taken over by another delivery: nothing of ours to give back
            job.status = JobStatus.QUEUED
            job.attempts = max(0, job.attempts - 1)
            job.error = f"The {what} was unavailable while the picture was saved; it will be encoded again."
            job.save()
    except Exception:  # noqa: BLE001 - the task's retry takes the claim back (claim(resume_started=...))
        log.warning("job %s: the %s is unavailable and the job could not be put back in the queue; "
                    "the task's retry takes it back", claimed.job_id, what, exc_info=True)
        return False
    log.warning("job %s: encoded, but the %s is unavailable to save it; back in the queue (no attempt counted), "
                "retried with a backoff", claimed.job_id, what)
    return True


#: A key the worker reads before it claims a job: ``complete`` needs the cache (the takedown
#: check, the link's cached look-up), so while it is down the job is not encoded for nothing
#: (the read raises: an outage before the claim, retried, no attempt counted).
WORKER_CACHE_PROBE = "emmm:worker:probe"


def run_encode_job(job_id: UUID | str, *, resume_started: datetime | None = None) -> EncodeJob | None:
    """claim → encode → complete; idempotent (the Celery task may run it more than once).

    Raises RetryableEncodeError for unexpected failures while attempts remain (the encode
    task's soft time limit included: an attempt, the job back in the queue), and
    JobInterrupted when a dependency (the database, the cache) failed after the claim: the job
    is back in the queue without an attempt counted, or, when the database could not be
    written, still running as this claim left it (``resume_started`` takes it back).
    """
    cache.get(WORKER_CACHE_PROBE)  # saving the result needs the cache: no encode while it is down
    claimed = claim(job_id, resume_started=resume_started)
    if claimed is None:
        return EncodeJob.objects.filter(pk=job_id).first()
    try:
        with heartbeat(claimed.job_id):  # through complete too: it decodes and embeds, which takes time
            return _encode_and_complete(claimed)
    except SoftTimeLimitExceeded as exc:
        log.warning("job %s: the encode ran into the soft time limit (%g s)", job_id,
                    settings.EMMM_ENCODE_SOFT_TIME_LIMIT_S)
        return requeue(job_id, exc, time_limit_message())
    except Exception as exc:
        outage = dependency_outage(exc)
        if outage is None:
            raise
        released = release(claimed, outage)
        raise JobInterrupted(
            f"the {dependency_name(outage)} is unavailable",
            resume_started=None if released else claimed.started,
        ) from exc


def _stopped_at_the_time_limit(exc: BaseException | None) -> bool:
    """Whether the soft time limit's exception is in ``exc``'s chain (it interrupts the encode
    wherever it is, inside a handler that turns any error of Pillow's into InvalidImage too)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SoftTimeLimitExceeded):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _encode_and_complete(claimed: ClaimedJob) -> EncodeJob | None:
    job_id = claimed.job_id
    try:
        result = encode(claimed)
    except SoftTimeLimitExceeded:
        raise
    except codec.ModelUnavailable as exc:  # this worker's set-up, not the upload
        return requeue(job_id, exc, f"The encoder is unavailable: {exc}")
    except codec.CodecError as exc:
        if _stopped_at_the_time_limit(exc):  # the codec reads an image library's errors as a bad image
            raise SoftTimeLimitExceeded() from exc
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


#: A job still ``queued`` after it was sent (its message lost with a broker's data, or waiting
#: behind others in a backlog) is sent again by the sweeper ``EMMM_REQUEUE_AFTER_S`` after its
#: first send, then after twice that, four times…, at most this many times that: waiting jobs
#: do not multiply messages (every re-send is one more message for a busy worker to skip).
RESEND_BACKOFF_MAX = 8


def resend_interval_s(sends: int) -> int:
    """Seconds a queued job sent ``sends`` times waits before the sweeper sends it again."""
    return settings.EMMM_REQUEUE_AFTER_S * min(2 ** max(sends - 1, 0), RESEND_BACKOFF_MAX)


def _resend_due(now: datetime) -> Q:
    """Queued jobs sent before whose ``resend_interval_s`` has passed since their last send."""
    due, sends = Q(), 1
    while resend_interval_s(sends) < resend_interval_s(sends + 1):
        due |= Q(sends=sends, updated__lt=now - timedelta(seconds=resend_interval_s(sends)))
        sends += 1
    return due | Q(sends__gte=sends, updated__lt=now - timedelta(seconds=resend_interval_s(sends)))


def resend(job_ids: list[UUID], now: datetime | None = None) -> tuple[int, bool]:
    """``send_job`` each; stops at the first broker error. ``(sent, broker_down)``."""
    sent = 0
    for job_id in job_ids:
        try:
            send_job(job_id, now)
        except BrokerUnavailable:
            return sent, True
        sent += 1
    return sent, False


def requeue_stale_jobs(now: datetime | None = None) -> SweepReport:
    """Re-send jobs stuck in ``queued`` (backing off: ``resend_interval_s``) or ``running``
    with a stopped heartbeat; expire old ones.

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
    stale = (
        EncodeJob.objects.filter(_resend_due(now), status=JobStatus.QUEUED, sends__gt=0)
        .order_by("updated").values_list("pk", flat=True)
    )
    report.resent, report.broker_down = resend(lost + [pk for pk in stale[:500] if pk not in lost], now)
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
