"""Encode jobs when something around them misbehaves, rather than simply being down:

1. a broker that accepts connections and never answers (a hung Redis, a black-holed route):
   uploads, ``/healthz`` and the worker's dispatch are bounded by ``EMMM_BROKER_TIMEOUT_S``,
   and nothing is published while a transaction is open;
2. the cache failing under the worker: a finished encode is not thrown away, and an outage
   costs the job no attempt;
3. duplicate deliveries: a job running with a fresh heartbeat is not claimed again, and the
   sweeper backs off re-sending a job that waits in a backlog;
4. time limits: an encode that never ends is interrupted and its job goes back to the queue;
5. beat's messages expire.

Real components (the filesystem broker, SQLite, file caches, a listening socket that never
answers, billiard's own soft-limit signal handler); every thread a test starts is joined with a
bound and every socket closed.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from celery.exceptions import Retry, TimeLimitExceeded
from django.core.cache.backends.filebased import FileBasedCache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.utils import timezone

from imagehost import tasks
from imagehost.models import EncodeJob, JobStatus, Picture, ShortLink, WorkerHeartbeat
from imagehost.services import dispatch, jobs, uploads, workers
from imagehost.services.errors import BrokerUnavailable, DatabaseUnavailable, JobInterrupted, RetryableEncodeError
from tests.conftest import REPO, free_port, point_celery_at

#: Seconds a broker read may take in these tests (the setting's default is 3).
BROKER_TIMEOUT_S = 1.5
#: How long a test waits for something that must end (bounded by the broker timeout) before
#: calling it a hang: far above the few seconds it takes, even on a loaded machine.
HANG_S = 45


# --- helpers ---------------------------------------------------------------------------------
@pytest.fixture
def silent_broker(fs_broker, settings):
    """A "Redis" that completes TCP handshakes and never answers. The in-process Celery app
    points at it with no transport options at all: the services must bound their own sockets."""
    settings.EMMM_BROKER_TIMEOUT_S = BROKER_TIMEOUT_S
    listener = socket.create_server(("127.0.0.1", 0), backlog=100)
    point_celery_at(f"redis://127.0.0.1:{listener.getsockname()[1]}/0", {})
    yield listener
    listener.close()  # connections still in its backlog are reset: nothing stays blocked on them


def run_bounded(fn, listener: socket.socket | None = None) -> dict:
    """Run ``fn`` in a thread for at most HANG_S; ``{"value" | "error", "s", "hung"}``. A hung
    call is released by closing ``listener`` (its connections are reset) and joined again."""
    out: dict = {}

    def target() -> None:
        started = time.monotonic()
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            out["error"] = exc
        finally:
            out["s"] = time.monotonic() - started
            connections.close_all()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_S)
    out["hung"] = thread.is_alive()
    if thread.is_alive() and listener is not None:
        listener.close()
    thread.join(30)
    assert not thread.is_alive(), "a thread of this test is still blocked"
    return out


def upload_api(client, data: bytes):
    return client.post("/api/v1/images", {"file": SimpleUploadedFile("a.png", data, content_type="image/png")},
                       HTTP_ACCEPT="application/json")


def dead_redis_cache() -> dict:
    """CACHES pointing at a Redis port nothing listens on: every read and write fails at once."""
    return {"default": {"BACKEND": "emmmsite.redis_cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}


class DeletesFailCache(FileBasedCache):
    """A file cache whose deletes fail as a Redis cache's do when Redis goes away (reads and
    writes work): the cache invalidation a link's save triggers inside ``complete``."""

    def delete(self, key, version=None):
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.fixture
def task_retries(monkeypatch) -> list[dict]:
    """The encode task's retries, recorded instead of sent. (Eagerly, ``apply()``, Celery runs a
    retry at once in the same call stack: a retry for as long as an outage lasts would recurse.)"""
    calls: list[dict] = []

    def retry(self, args=None, kwargs=None, exc=None, countdown=None, **_options):
        calls.append({"exc": exc, "countdown": countdown, "kwargs": kwargs})
        raise Retry(exc=exc, when=countdown)

    monkeypatch.setattr(type(tasks.encode_job._get_current_object()), "retry", retry)
    return calls


@pytest.fixture
def encodes(monkeypatch, token_pool) -> list:
    """``jobs.encode`` returns a real token (encoded once per session) and counts its calls."""
    calls: list = []

    def encode(claimed):
        calls.append(claimed.job_id)
        return token_pool(0)

    monkeypatch.setattr(jobs, "encode", encode)
    return calls


# --- 1. a broker that never answers ----------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_an_upload_facing_a_silent_broker_is_accepted_with_the_queue_warning(client, png_bytes, silent_broker):
    out = run_bounded(lambda: upload_api(client, png_bytes(32, 32)), silent_broker)
    assert not out["hung"], "an upload hung on a broker that never answers"
    r = out["value"]
    print(f"\nupload answered in {out['s']:.1f} s (broker timeout {BROKER_TIMEOUT_S} s)")
    assert r.status_code == 202, r.content[:300]
    body = r.json()
    assert body["status"] == "queued" and body["warning"]["code"] == "queue_unavailable"
    job = EncodeJob.objects.get(pk=body["id"])
    assert job.status == JobStatus.QUEUED and job.sends == 0 and job.source is not None  # kept for the sweeper
    assert out["s"] < 20 * BROKER_TIMEOUT_S  # bounded by the timeout (a few of them), not for ever


@pytest.mark.django_db(transaction=True)
def test_healthz_says_a_silent_broker_is_down_instead_of_hanging(client, silent_broker):
    workers.record_heartbeat("w1@test")
    out = run_bounded(lambda: client.get("/healthz"), silent_broker)
    assert not out["hung"], "/healthz hung on a broker that never answers"
    assert out["value"].status_code == 503 and out["value"].json()["down"] == ["broker"]


@pytest.mark.django_db(transaction=True)
def test_the_worker_s_dispatch_after_a_job_is_bounded_on_a_silent_broker(png_bytes, silent_broker):
    job = EncodeJob.objects.create(source=png_bytes(20, 20), source_bytes=1)  # waiting to be sent
    out = run_bounded(dispatch.dispatch_waiting, silent_broker)
    assert not out["hung"], "dispatch hung on a broker that never answers"
    assert out["value"].broker_down and out["value"].sent == 0
    assert EncodeJob.objects.get(pk=job.pk).sends == 0  # still waiting, for the sweeper


@pytest.mark.django_db(transaction=True)
def test_nothing_is_published_inside_a_transaction(client, png_bytes, fs_broker, monkeypatch, settings):
    """Upload, the task after a job and the sweeper: a publish held by a silent broker used to
    hold the dispatch's transaction (row locks, SQLite's write lock) with it."""
    in_transaction: list[bool] = []
    real_publish = jobs.publish_job

    def publish(job_id):
        in_transaction.append(connection.in_atomic_block)
        real_publish(job_id)

    monkeypatch.setattr(jobs, "publish_job", publish)
    settings.EMMM_DISPATCH_PER_OWNER = 1
    assert upload_api(client, png_bytes(20, 20, seed=1)).status_code == 202  # sent on commit
    waiting = uploads.submit_upload(png_bytes(20, 20, seed=2))  # anonymous too: over the limit, waits
    assert EncodeJob.objects.get(pk=waiting.pk).sends == 0
    EncodeJob.objects.exclude(pk=waiting.pk).update(status=JobStatus.FAILED, source=None)
    tasks._after_job()  # the worker, after a job: sends the waiting one
    EncodeJob.objects.filter(pk=waiting.pk).update(updated=timezone.now() - timedelta(hours=1))
    assert jobs.requeue_stale_jobs().resent == 1  # the sweeper re-sends it
    assert in_transaction == [False, False, False]
    assert len(fs_broker.messages()) == 3


@pytest.mark.django_db(transaction=True)
def test_a_publish_that_hangs_holds_no_database_lock(png_bytes, fs_broker, monkeypatch):
    """While one upload's publish waits on the broker, the rest of the site writes."""
    publishing, release = threading.Event(), threading.Event()

    def hung_publish(job_id):
        publishing.set()
        release.wait(HANG_S)
        raise BrokerUnavailable(job_ids=[job_id])

    monkeypatch.setattr(jobs, "publish_job", hung_publish)
    thread = threading.Thread(target=lambda: (uploads.submit_upload(png_bytes(20, 20)), connections.close_all()),
                              daemon=True)
    thread.start()
    try:
        assert publishing.wait(HANG_S)
        WorkerHeartbeat.objects.create(name="another writer", seen_at=timezone.now())  # any write elsewhere
        job = EncodeJob.objects.get()
        assert job.sends == 1  # counted sent before publishing (another dispatch counts it in flight)
    finally:
        release.set()
        thread.join(HANG_S)
    assert not thread.is_alive()
    assert EncodeJob.objects.get().sends == 0  # the broker did not take it: waiting again, for the sweeper


@pytest.mark.django_db(transaction=True)
def test_a_broker_error_midway_leaves_the_rest_waiting(png_bytes, fs_broker, monkeypatch, settings):
    settings.EMMM_DISPATCH_PER_OWNER = 5
    real_publish, published = jobs.publish_job, []

    def publish(job_id):
        if published:
            raise BrokerUnavailable(job_ids=[job_id])
        published.append(job_id)
        real_publish(job_id)

    monkeypatch.setattr(jobs, "publish_job", publish)
    submission = uploads.submit_uploads([png_bytes(20, 20, seed=i) for i in range(3)])
    assert submission.queue_unavailable
    sends = dict(EncodeJob.objects.values_list("pk", "sends"))
    assert sends.pop(published[0]) == 1 and set(sends.values()) == {0}
    assert len(fs_broker.messages()) == 1


def test_a_redis_broker_gets_bounded_sockets_and_a_bad_timeout_stops_the_site():
    code = ("import emmmsite.settings as s; o = s.CELERY_BROKER_TRANSPORT_OPTIONS; "
            "print(o['socket_timeout'], o['socket_connect_timeout'], s.CELERY_BROKER_CONNECTION_TIMEOUT, o['visibility_timeout'])")
    env = {**os.environ, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "EMMM_BROKER_TIMEOUT_S": "4"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.stdout.split() == ["4.0", "4.0", "4.0", "900"], result.stderr[-500:]
    for variables in ({"EMMM_BROKER_TIMEOUT_S": "0.5"},  # at or under kombu's 1 s BRPOP wait
                      {"EMMM_ENCODE_SOFT_TIME_LIMIT_S": "400", "EMMM_ENCODE_TIME_LIMIT_S": "300"}):
        result = subprocess.run([sys.executable, "-c", "import emmmsite.settings"], env={**os.environ, **variables},
                                capture_output=True, text=True, timeout=120, cwd=REPO)
        assert result.returncode != 0 and "ImproperlyConfigured: EMMM_" in result.stderr.splitlines()[-1]


# --- 2. the cache fails under the worker ---------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["reads fail (the takedown check)", "deletes fail (the link's cached look-up)"])
def test_a_cache_outage_after_a_good_encode_puts_the_job_back_without_an_attempt(
        fault, png_bytes, user, encodes, settings, monkeypatch):
    working = settings.CACHES
    job = uploads.submit_upload(png_bytes(20, 20), owner=user)  # signed in: its link is reserved
    real_complete = jobs.complete

    def complete_with_the_cache_failing(job_id, result):
        if fault.startswith("reads"):
            settings.CACHES = dead_redis_cache()
        else:
            settings.CACHES = {**working, "default": {**working["default"],
                                                      "BACKEND": f"{__name__}.DeletesFailCache"}}
        return real_complete(job_id, result)

    monkeypatch.setattr(jobs, "complete", complete_with_the_cache_failing)
    with pytest.raises(JobInterrupted) as interrupted:
        jobs.run_encode_job(job.pk)
    assert interrupted.value.resume_started is None  # back in the queue: a plain retry claims it
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.attempts == 0 and job.source is not None
    assert job.error == "The cache was unavailable while the picture was saved; it will be encoded again."
    assert not Picture.objects.exists()  # nothing half-saved
    assert ShortLink.objects.get(owner=user).token == ""  # still reserved, "encoding…"

    settings.CACHES = working  # the cache is back: the task's retry finishes the job
    monkeypatch.setattr(jobs, "complete", real_complete)
    done = jobs.run_encode_job(job.pk)
    assert done.status == JobStatus.DONE and done.attempts == 1 and done.error == ""
    assert ShortLink.objects.get(owner=user).token == Picture.objects.get().token
    assert len(encodes) == 2


@pytest.mark.django_db
def test_the_worker_does_not_encode_while_the_cache_is_down_and_retries_with_a_backoff(
        png_bytes, encodes, task_retries, settings):
    job = uploads.submit_upload(png_bytes(20, 20))
    settings.CACHES = dead_redis_cache()
    result = tasks.encode_job.apply(args=[str(job.pk)])
    assert result.state == "RETRY"
    assert task_retries[0]["countdown"] == 1 and task_retries[0]["kwargs"] is None
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.attempts == 0 and job.source is not None
    assert encodes == []  # its result could not have been saved


@pytest.mark.django_db
def test_a_cache_that_keeps_failing_never_burns_the_job(png_bytes, encodes, task_retries, settings, monkeypatch):
    """Before: the task failed on the cache's error, the job stayed running, and each sweep
    after its heartbeat went stale burned an attempt until "Gave up after 3 attempts. The
    worker stopped while encoding."."""
    working, real_complete = settings.CACHES, jobs.complete

    def complete_while_the_cache_fails(job_id, result):
        settings.CACHES = dead_redis_cache()
        return real_complete(job_id, result)

    monkeypatch.setattr(jobs, "complete", complete_while_the_cache_fails)
    job = uploads.submit_upload(png_bytes(20, 20))
    now = timezone.now()
    for cycle in range(settings.EMMM_JOB_MAX_ATTEMPTS + 2):
        assert tasks.encode_job.apply(args=[str(job.pk)]).state == "RETRY"
        assert isinstance(task_retries[-1]["exc"], JobInterrupted)
        assert task_retries[-1]["countdown"] == 1  # the first retry of each delivery here
        settings.CACHES = working
        now += timedelta(seconds=settings.EMMM_RUNNING_STALE_S + 1)
        assert jobs.requeue_stale_jobs(now).lost == 0  # queued, not a lost running job
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.attempts == 0 and len(encodes) == settings.EMMM_JOB_MAX_ATTEMPTS + 2
    monkeypatch.setattr(jobs, "complete", real_complete)  # the cache stays up
    assert tasks.encode_job.apply(args=[str(job.pk)]).result == JobStatus.DONE
    assert EncodeJob.objects.get(pk=job.pk).attempts == 1


@pytest.mark.django_db
def test_when_the_database_cannot_take_the_job_back_the_retry_takes_its_claim_back(
        png_bytes, encodes, task_retries, monkeypatch):
    job = uploads.submit_upload(png_bytes(20, 20))
    real_complete, real_release = jobs.complete, jobs.release

    def complete_without_a_database(job_id, result):
        raise DatabaseUnavailable()

    monkeypatch.setattr(jobs, "complete", complete_without_a_database)
    monkeypatch.setattr(jobs, "release", lambda claimed, outage: False)  # its write failed too
    assert tasks.encode_job.apply(args=[str(job.pk)]).state == "RETRY"
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.attempts == 1  # as the claim left it
    assert task_retries[0]["kwargs"] == {"resume_started": job.started.isoformat()}
    assert jobs.claim(job.pk) is None  # anyone else's delivery: a running job, a fresh heartbeat

    monkeypatch.setattr(jobs, "complete", real_complete)  # the database is back
    monkeypatch.setattr(jobs, "release", real_release)
    result = tasks.encode_job.apply(args=[str(job.pk)], kwargs=task_retries[0]["kwargs"])
    assert result.result == JobStatus.DONE
    assert EncodeJob.objects.get(pk=job.pk).attempts == 1  # the outage cost no attempt


# --- 3. duplicate deliveries and the sweeper's backlog -------------------------------------
@pytest.mark.django_db
def test_a_duplicate_delivery_of_a_running_job_is_dropped(png_bytes, settings, token_pool):
    job = uploads.submit_upload(png_bytes(20, 20))
    first = jobs.claim(job.pk)  # worker process A encodes (heartbeat fresh)
    assert first is not None
    for _ in range(settings.EMMM_JOB_MAX_ATTEMPTS + 1):  # duplicates reach other processes meanwhile
        assert jobs.claim(job.pk) is None
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.attempts == 1
    done = jobs.complete(job.pk, token_pool(0))  # A finishes
    assert done.status == JobStatus.DONE and Picture.objects.count() == 1


@pytest.mark.django_db
def test_a_running_job_whose_worker_died_is_still_taken_over(png_bytes, settings):
    job = uploads.submit_upload(png_bytes(20, 20))
    assert jobs.claim(job.pk) is not None
    EncodeJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.EMMM_RUNNING_STALE_S + 1))
    assert jobs.claim(job.pk) is not None  # a redelivery after the worker's death
    assert EncodeJob.objects.get(pk=job.pk).attempts == 2


@pytest.mark.django_db(transaction=True)
def test_after_a_job_the_worker_re_sends_a_job_whose_worker_died(png_bytes, fs_broker, settings):
    """The sweeper's messages expire while a busy worker encodes a backlog; the task does this
    part of a sweep itself after each job."""
    job = uploads.submit_upload(png_bytes(20, 20))
    assert jobs.claim(job.pk) is not None
    EncodeJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.EMMM_RUNNING_STALE_S + 1))
    sent = len(fs_broker.messages())
    tasks._after_job()
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.sends == 2 and len(fs_broker.messages()) == sent + 1


@pytest.mark.django_db(transaction=True)  # the upload sends its job on commit
def test_the_sweeper_backs_off_re_sending_a_job_that_waits_in_a_backlog(png_bytes, fs_broker, settings):
    job = uploads.submit_upload(png_bytes(20, 20))
    assert EncodeJob.objects.get(pk=job.pk).sends == 1
    start, resent_at = timezone.now(), []
    sweep = settings.EMMM_SWEEP_INTERVAL_S
    for i in range(1, 40 * 60 // sweep + 1):  # 40 minutes of sweeps; the job never leaves the queue
        if jobs.requeue_stale_jobs(start + timedelta(seconds=i * sweep)).resent:
            resent_at.append(i * sweep)
    gaps = [b - a for a, b in zip([0] + resent_at, resent_at)]
    print(f"\nre-sent after {resent_at} s (gaps {gaps})")
    assert len(resent_at) <= 7  # every minute before: 40
    base, cap = settings.EMMM_REQUEUE_AFTER_S, settings.EMMM_REQUEUE_AFTER_S * jobs.RESEND_BACKOFF_MAX
    # Each wait twice the one before (to the next sweep), up to the cap; and still re-sent at
    # the cap: a lost message is never given up on.
    expected = [min(base * 2 ** k, cap) for k in range(len(gaps))]
    assert expected[:4] == [base, 2 * base, 4 * base, 8 * base] and expected[-1] == cap
    assert all(want <= gap <= want + sweep for want, gap in zip(expected, gaps)), (gaps, expected)
    assert EncodeJob.objects.get(pk=job.pk).sends == 1 + len(resent_at)
    assert jobs.claim(job.pk) is not None  # the first message to arrive takes it; the rest are dropped
    assert all(jobs.claim(job.pk) is None for _ in resent_at)


# --- 4. time limits ------------------------------------------------------------------------
def test_the_encode_task_has_time_limits_well_above_the_slowest_encode(settings):
    slowest_measured_s = 82.4  # README: v1 "fits proxies", 768×512, 2 threads, this machine
    assert tasks.encode_job.soft_time_limit == settings.EMMM_ENCODE_SOFT_TIME_LIMIT_S >= 3 * slowest_measured_s
    assert tasks.encode_job.time_limit == settings.EMMM_ENCODE_TIME_LIMIT_S > tasks.encode_job.soft_time_limit


def test_the_worker_runs_a_pool_that_enforces_time_limits():
    """Celery's solo and threads pools ignore time limits; ``make run``'s worker is prefork
    (Celery's default pool: no --pool/-P on its command line)."""
    conf = (REPO / "scripts" / "supervisord.conf").read_text()
    worker = re.search(r"\[program:worker\].*?^command=(.*)$", conf, re.S | re.M).group(1)
    assert "celery -A emmmsite worker" in worker
    assert not re.search(r"(--pool|-P)[= ]", worker) or re.search(r"(--pool|-P)[= ]prefork", worker)


@pytest.mark.django_db(transaction=True)  # the heartbeat thread writes with its own connection
def test_the_soft_time_limit_interrupts_a_hung_encode_and_the_job_goes_back(png_bytes, monkeypatch, settings):
    """billiard's own handler (a prefork child gets SIGUSR1 at the soft limit) raises
    SoftTimeLimitExceeded inside an encode that never ends."""
    from billiard.pool import soft_timeout_sighandler

    settings.EMMM_JOB_HEARTBEAT_S = 0.1
    job = uploads.submit_upload(png_bytes(20, 20))
    encoding = threading.Event()

    def hung_encode(claimed):
        encoding.set()
        time.sleep(HANG_S)  # only the signal ends it
        return pytest.fail("the soft time limit did not interrupt the encode")

    monkeypatch.setattr(jobs, "encode", hung_encode)
    signaller = threading.Thread(target=lambda: encoding.wait(HANG_S) and (time.sleep(0.3), os.kill(os.getpid(), signal.SIGUSR1)))
    previous = signal.signal(signal.SIGUSR1, soft_timeout_sighandler)
    try:
        signaller.start()
        with pytest.raises(RetryableEncodeError, match="took longer than"):
            jobs.run_encode_job(job.pk)
    finally:
        signaller.join(HANG_S)
        signal.signal(signal.SIGUSR1, previous)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.attempts == 1 and job.source is not None
    assert job.error == f"Encoding took longer than {settings.EMMM_ENCODE_SOFT_TIME_LIMIT_S} s and was stopped."
    assert not [t for t in threading.enumerate() if t.name == f"heartbeat-{job.pk}"]  # its heartbeat stopped


@pytest.mark.django_db(transaction=True)  # the heartbeat thread writes with its own connection
def test_the_soft_time_limit_inside_an_image_library_is_not_a_bad_image(png_bytes, monkeypatch, settings):
    """The limit may strike inside Pillow, whose errors the codec reads as a corrupt image: the
    job goes back in the queue, it is not failed as "corrupt or truncated"."""
    from celery.exceptions import SoftTimeLimitExceeded

    import codec

    job = uploads.submit_upload(png_bytes(20, 20))

    def interrupted_inside_pillow(claimed):
        try:
            raise SoftTimeLimitExceeded()
        except SoftTimeLimitExceeded as exc:
            raise codec.InvalidImage("the image data is corrupt or truncated") from exc

    monkeypatch.setattr(jobs, "encode", interrupted_inside_pillow)
    with pytest.raises(RetryableEncodeError, match="took longer than"):
        jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.attempts == 1 and job.source is not None


@pytest.mark.django_db
def test_a_poison_image_fails_after_its_attempts_with_a_clear_message(png_bytes, monkeypatch, settings):
    from celery.exceptions import SoftTimeLimitExceeded

    def too_slow(claimed):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(jobs, "encode", too_slow)
    job = uploads.submit_upload(png_bytes(20, 20))
    for _ in range(settings.EMMM_JOB_MAX_ATTEMPTS - 1):
        with pytest.raises(RetryableEncodeError):
            jobs.run_encode_job(job.pk)
    failed = jobs.run_encode_job(job.pk)
    limit = settings.EMMM_ENCODE_SOFT_TIME_LIMIT_S
    assert failed.status == JobStatus.FAILED and failed.source is None
    assert failed.error == f"Gave up after {settings.EMMM_JOB_MAX_ATTEMPTS} attempts. Encoding took longer than {limit} s and was stopped."


@pytest.mark.django_db
def test_the_hard_time_limit_puts_the_job_back_and_sends_it_again(png_bytes, fs_broker, settings):
    """The pool killed the process (an encode stuck where the soft limit cannot reach); Celery
    then sends task_failure with TimeLimitExceeded in the worker's main process."""
    from celery.signals import task_failure

    job = uploads.submit_upload(png_bytes(20, 20))
    task = tasks.encode_job._get_current_object()
    for attempt in range(1, settings.EMMM_JOB_MAX_ATTEMPTS + 1):
        assert jobs.claim(job.pk) is not None
        sent = len(fs_broker.messages())
        for _ in range(2):  # Celery reports one hard time limit twice (its timeout, then the lost result)
            task_failure.send(sender=task, task_id=f"t{attempt}", exception=TimeLimitExceeded(360.0),
                              args=[str(job.pk)], kwargs={})
        job.refresh_from_db()
        if attempt < settings.EMMM_JOB_MAX_ATTEMPTS:
            assert job.status == JobStatus.QUEUED and job.attempts == attempt
            assert job.error == "Encoding took longer than 360 s and was stopped."
            assert len(fs_broker.messages()) == sent + 1  # sent again at once (once), not after the sweeper
    assert job.status == JobStatus.FAILED
    assert job.error == f"Gave up after {settings.EMMM_JOB_MAX_ATTEMPTS} attempts. Encoding took longer than 360 s and was stopped."
    # Other tasks' failures, and other failures of this one, are not its business.
    other = uploads.submit_upload(png_bytes(20, 20, seed=3))
    assert jobs.claim(other.pk) is not None
    task_failure.send(sender=tasks.flush_link_hits._get_current_object(), task_id="u",
                      exception=TimeLimitExceeded(10.0), args=[str(other.pk)], kwargs={})
    task_failure.send(sender=task, task_id="v", exception=ValueError("x"), args=[str(other.pk)], kwargs={})
    assert EncodeJob.objects.get(pk=other.pk).status == JobStatus.RUNNING


# --- 5. beat's messages expire -------------------------------------------------------------
def test_every_periodic_task_expires_after_its_interval(settings):
    assert settings.CELERY_BEAT_SCHEDULE
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["options"]["expires"] == entry["schedule"].total_seconds(), name


def test_beat_sends_its_messages_with_an_expiry(fs_broker):
    from celery.beat import Scheduler

    from emmmsite.celery import app

    scheduler = Scheduler(app, lazy=True)
    before = time.time()
    for name, conf in app.conf.beat_schedule.items():
        scheduler.apply_async(scheduler.Entry(**dict(conf, name=name, app=app)))
    messages = [json.loads(Path(m).read_text()) for m in fs_broker.messages()]
    assert len(messages) == len(app.conf.beat_schedule)
    for message in messages:
        headers = message["headers"]
        interval = app.conf.beat_schedule[[n for n, c in app.conf.beat_schedule.items() if c["task"] == headers["task"]][0]]["schedule"]
        expires = datetime.fromisoformat(headers["expires"]).timestamp()
        assert before < expires <= time.time() + interval.total_seconds(), headers["task"]


# --- stack: a real prefork worker enforces the time limits -----------------------------------
@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_prefork_worker_stops_a_hung_encode_at_the_soft_limit(client, redis_broker, png_bytes, wait_for, tmp_path,
                                                                     monkeypatch):
    """``make run``'s pool (prefork; the other stack tests' workers are solo, which ignores time
    limits): an encode that sleeps far past the soft limit is interrupted, the job goes back to
    the queue and, out of attempts, fails saying why; the worker keeps working."""
    from tests.conftest import subprocess_env
    from tests.processes import spawn, stop_group

    from imagehost import tasks

    # Celery sends a task's limits in its message, from the process that queues it (here this
    # one, on the upload's commit); the worker's own settings only fill in what is missing.
    task = tasks.encode_job._get_current_object()
    monkeypatch.setattr(task, "soft_time_limit", 4)
    monkeypatch.setattr(task, "time_limit", 30)
    monkeypatch.setattr(task, "_exec_options", None)  # a task caches them at its first send
    log = tmp_path / "prefork.log"
    worker = spawn(
        [sys.executable, "-m", "celery", "-A", "tests.stack_worker", "worker", "--pool=prefork", "-c", "1",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO", "-n", "prefork@%h"],
        log=log, cwd=REPO,
        env=subprocess_env(CELERY_BROKER_URL=redis_broker.url, EMMM_VAR_DIR=str(tmp_path / "var"),
                           EMMM_TEST_ENCODE_DELAY_S="600", EMMM_ENCODE_SOFT_TIME_LIMIT_S="4",
                           EMMM_ENCODE_TIME_LIMIT_S="30", EMMM_JOB_MAX_ATTEMPTS="2"),
    )
    try:
        wait_for(lambda: worker.poll() is None and " ready." in log.read_text(errors="replace"), timeout=90,
                 what="the prefork worker to be ready")
        r = upload_api(client, png_bytes(24, 24, seed=11))
        assert r.status_code == 202 and "warning" not in r.json()
        job_id = r.json()["id"]
        wait_for(lambda: EncodeJob.objects.get(pk=job_id).status == JobStatus.FAILED, timeout=120, interval=0.5,
                 what="the hung encode to be stopped twice and the job to fail")
        job = EncodeJob.objects.get(pk=job_id)
        assert job.attempts == 2 and job.source is None
        assert job.error == "Gave up after 2 attempts. Encoding took longer than 4 s and was stopped."
        text = log.read_text(errors="replace")
        assert "Soft time limit (4s) exceeded" in text and "Hard time limit" not in text
        assert worker.poll() is None
    finally:
        stop_group(worker, timeout=20)
