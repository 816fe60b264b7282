"""Celery tasks: thin wrappers around ``services.jobs`` (acks late, requeued if the worker dies).

The job lifecycle (states, retries, the sweeper) is described in ``imagehost/services/jobs.py``.
"""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from .services import dispatch, hits, jobs, similar, workers
from .services.errors import DatabaseUnavailable, RetryableEncodeError, outage_error

log = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the job row counts attempts (EMMM_JOB_MAX_ATTEMPTS)
)
def encode_job(self, job_id: str) -> str | None:
    """Encode one uploaded image; safe to run more than once for the same job.

    A failed encode (RetryableEncodeError) and a database outage (a restart, a failover) are
    retried here with one backoff, so after an outage the job is done seconds after the database
    is back rather than at the sweeper's next re-send."""
    try:
        job = jobs.run_encode_job(job_id)
    except Exception as exc:
        countdown = min(30, 2 ** self.request.retries)
        if isinstance(outage_error(exc), DatabaseUnavailable):
            log.warning("encode_job %s: the database is unavailable (%s); retrying in %d s", job_id, exc, countdown)
        elif not isinstance(exc, RetryableEncodeError):
            raise
        raise self.retry(exc=exc, countdown=countdown)
    finally:
        _dispatch_next()
    if job is None:
        log.warning("encode_job: job %s does not exist", job_id)
        return None
    return job.status


def _dispatch_next() -> None:
    """A job ended: send the next waiting ones in fair order (``services.dispatch``)."""
    try:
        dispatch.dispatch_waiting()
    except Exception:  # noqa: BLE001 - the sweeper dispatches too; never fail the encode for this
        log.warning("dispatch after a job failed", exc_info=True)


@shared_task(acks_late=True)
def requeue_stale_jobs() -> dict:
    """Periodic sweep (Celery beat): re-send stuck jobs, expire old ones, drop stray originals."""
    report = jobs.requeue_stale_jobs()
    purged = jobs.purge_finished_sources()
    return {"resent": report.resent, "lost": report.lost, "expired": report.expired, "broker_down": report.broker_down, "purged": purged}


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
