"""Issue 9.3: a running job's heartbeat, and the sweeper re-sending a job whose heartbeat stopped."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from imagehost.models import EncodeJob, JobStatus
from imagehost.services import jobs, uploads


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection
def test_heartbeat_touches_the_running_job_while_the_block_runs(png_bytes):
    job = uploads.submit_upload(png_bytes(20, 20))
    assert jobs.claim(job.pk) is not None
    claimed_at = EncodeJob.objects.get(pk=job.pk).heartbeat_at
    with jobs.heartbeat(job.pk, interval_s=0.05):
        time.sleep(0.5)
    beat = EncodeJob.objects.get(pk=job.pk).heartbeat_at
    assert beat > claimed_at
    time.sleep(0.3)
    assert EncodeJob.objects.get(pk=job.pk).heartbeat_at == beat  # the thread stopped with the block


@pytest.mark.django_db
def test_sweeper_resends_a_running_job_whose_heartbeat_stopped(png_bytes, fs_broker, settings):
    lost = uploads.submit_upload(png_bytes(20, 20, seed=1))
    alive = uploads.submit_upload(png_bytes(20, 20, seed=2))
    for job in (lost, alive):
        jobs.claim(job.pk)
    sent_before = len(fs_broker.messages())
    now = timezone.now()
    EncodeJob.objects.filter(pk=lost.pk).update(heartbeat_at=now - timedelta(seconds=settings.EMMM_RUNNING_STALE_S + 1))
    EncodeJob.objects.filter(pk=alive.pk).update(heartbeat_at=now - timedelta(seconds=settings.EMMM_RUNNING_STALE_S - 5))

    report = jobs.requeue_stale_jobs(now)

    assert report.lost == 1 and report.resent == 1
    assert len(fs_broker.messages()) == sent_before + 1
    lost.refresh_from_db()
    alive.refresh_from_db()
    assert lost.status == JobStatus.QUEUED and lost.source is not None and lost.attempts == 1
    assert alive.status == JobStatus.RUNNING
    # Sent again once, not at every sweep: it is queued now, re-sent only after EMMM_REQUEUE_AFTER_S.
    assert jobs.requeue_stale_jobs(now + timedelta(seconds=1)).resent == 0
    # The next delivery claims it: a second attempt, and it can be completed once.
    assert jobs.claim(lost.pk) is not None
    assert EncodeJob.objects.get(pk=lost.pk).attempts == 2


def test_stale_bound_is_a_few_missed_beats(settings):
    """Recovery target (done within 60 s of a kill): staleness + one sweep leaves time to encode."""
    assert settings.EMMM_RUNNING_STALE_S >= 3 * settings.EMMM_JOB_HEARTBEAT_S
    assert settings.EMMM_RUNNING_STALE_S + settings.EMMM_SWEEP_INTERVAL_S <= 30
