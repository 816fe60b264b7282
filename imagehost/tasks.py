"""Celery tasks: thin wrappers around ``services.jobs`` (acks late, requeued if the worker dies).

The job lifecycle (states, retries, the sweeper) is described in ``imagehost/services/jobs.py``.
"""
from __future__ import annotations

import logging

from celery import shared_task

from .services import cache, jobs
from .services.errors import RetryableEncodeError

log = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the job row counts attempts (EMMM_JOB_MAX_ATTEMPTS)
)
def encode_job(self, job_id: str) -> str | None:
    """Encode one uploaded image; safe to run more than once for the same job."""
    try:
        job = jobs.run_encode_job(job_id)
    except RetryableEncodeError as exc:
        raise self.retry(exc=exc, countdown=min(30, 2 ** self.request.retries))
    if job is None:
        log.warning("encode_job: job %s does not exist", job_id)
        return None
    return job.status


@shared_task(acks_late=True)
def requeue_stale_jobs() -> dict:
    """Periodic sweep (Celery beat): re-send stuck jobs, expire old ones, drop stray originals."""
    report = jobs.requeue_stale_jobs()
    purged = jobs.purge_finished_sources()
    return {"resent": report.resent, "expired": report.expired, "broker_down": report.broker_down, "purged": purged}


@shared_task
def flush_link_hits() -> int:
    """Periodic (Celery beat): add the short-link hits counted in the cache to the database."""
    return cache.flush_hits()
