"""Celery tasks: thin wrappers around ``services.jobs`` (acks late, requeued if the worker dies).

The job lifecycle (states, retries, the sweeper) is described in ``imagehost/services/jobs.py``.
"""
from __future__ import annotations

import logging
from collections import deque
from datetime import datetime

from celery import shared_task
from celery.exceptions import TimeLimitExceeded
from celery.signals import task_failure, worker_ready, worker_shutdown
from django.conf import settings
from django.db import connections
from django.utils import timezone

from .services import dispatch, hits, jobs, similar, workers
from .services.errors import JobInterrupted, RetryableEncodeError, dependency_outage

log = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the job row counts attempts (EMMM_JOB_MAX_ATTEMPTS)
    # A hung encode keeps a fresh heartbeat (a thread beats), so only a time limit ends it. Soft:
    # SoftTimeLimitExceeded in the encode, the job back in the queue (jobs.run_encode_job); hard:
    # the pool kills the process (_encode_killed_at_the_time_limit). Prefork pool only.
    soft_time_limit=settings.EMMM_ENCODE_SOFT_TIME_LIMIT_S,
    time_limit=settings.EMMM_ENCODE_TIME_LIMIT_S,
)
def encode_job(self, job_id: str, resume_started: str | None = None) -> str | None:
    """Encode one uploaded image; safe to run more than once for the same job.

    A failed encode (RetryableEncodeError) and a dependency outage (the database restarting or
    failing over, the cache unreachable) are retried here with one backoff (1, 2, 4 … 30 s), so
    after an outage the job is done seconds after the service is back rather than at the
    sweeper's next re-send; an outage costs the job no attempt. ``resume_started``: set by
    such a retry when the job could not even be put back in the queue (``JobInterrupted``)."""
    try:
        job = jobs.run_encode_job(job_id, resume_started=_when(resume_started))
    except Exception as exc:
        countdown = min(30, 2 ** self.request.retries)
        kwargs = None  # the same as this delivery's
        if isinstance(exc, JobInterrupted):
            log.warning("encode_job %s: %s; retrying in %d s", job_id, exc, countdown)
            if exc.resume_started is not None:
                kwargs = {**(self.request.kwargs or {}), "resume_started": exc.resume_started.isoformat()}
        elif (outage := dependency_outage(exc)) is not None:
            log.warning("encode_job %s: the %s is unavailable (%s); retrying in %d s", job_id,
                        jobs.dependency_name(outage), exc, countdown)
        elif not isinstance(exc, RetryableEncodeError):
            raise
        raise self.retry(exc=exc, countdown=countdown, kwargs=kwargs)
    finally:
        _after_job()
    if job is None:
        log.warning("encode_job: job %s does not exist", job_id)
        return None
    return job.status


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _after_job() -> None:
    """A job ended: send the next waiting ones in fair order (``services.dispatch``), and re-send
    jobs whose worker died (their heartbeat stopped), as the sweeper does: under a backlog a
    busy worker skips the sweeper's messages once they expire (beat's ``expires``)."""
    try:
        dispatch.dispatch_waiting()
        jobs.resend(jobs.requeue_lost_jobs(timezone.now()))
    except Exception:  # noqa: BLE001 - the sweeper does both too; never fail the encode for this
        log.warning("dispatch after a job failed", exc_info=True)


#: Task ids whose hard time limit was handled (Celery sends task_failure twice for one).
_time_limited: deque[str] = deque(maxlen=64)


@task_failure.connect
def _encode_killed_at_the_time_limit(sender=None, task_id=None, exception=None, args=None, kwargs=None, **_kw) -> None:
    """The encode task's hard time limit (the pool killed its process, in the worker's main
    process): the job goes back to the queue with the reason, an attempt counted, and is sent
    again (``jobs.requeue_after_time_limit``); without this it stayed ``running`` until the
    sweeper took it for lost, and its last failure read "The worker stopped while encoding"."""
    if getattr(sender, "name", None) != encode_job.name or not isinstance(exception, TimeLimitExceeded):
        return
    job_id = (args or [None])[0] or (kwargs or {}).get("job_id")
    if not job_id or (task_id is not None and task_id in _time_limited):
        return
    _time_limited.append(task_id)
    try:
        limit = exception.args[0] if exception.args else settings.EMMM_ENCODE_TIME_LIMIT_S
        jobs.requeue_after_time_limit(job_id, float(limit))
    except Exception:  # noqa: BLE001 - the sweeper takes the job for lost once its heartbeat is stale
        log.warning("job %s: could not be put back after the time limit; the sweeper will", job_id, exc_info=True)
    finally:
        if not connections["default"].in_atomic_block:  # never a caller's transaction
            connections.close_all()  # the worker's main process keeps no connection of its own


@shared_task(acks_late=True)
def requeue_stale_jobs() -> dict:
    """Periodic sweep (Celery beat): re-send stuck jobs, expire old ones. (No finished job keeps
    its original: a check constraint refuses it, so nothing looks for one.)"""
    report = jobs.requeue_stale_jobs()
    return {"resent": report.resent, "lost": report.lost, "expired": report.expired, "broker_down": report.broker_down}


_heartbeat: workers.HeartbeatThread | None = None


@worker_ready.connect
def _start_worker_heartbeat(sender=None, **_kwargs) -> None:
    """The worker's main process says it is alive (``services.workers``), whatever the broker."""
    global _heartbeat
    _heartbeat = workers.HeartbeatThread(getattr(sender, "hostname", None) or "worker")
    _heartbeat.start()


@worker_shutdown.connect
def _stop_worker_heartbeat(**_kwargs) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()


@shared_task
def flush_link_hits() -> int:
    """Periodic (Celery beat): add the short-link hits counted in the cache to the database."""
    return hits.flush_hits()


@shared_task
def prune_embedding_changes() -> int:
    """Periodic (Celery beat): drop the similar-pictures change log's old rows."""
    return similar.prune_change_log()
