"""Issue 9.6: jobs are sent first come, first served per owner; one batch does not starve others."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from django.contrib.auth import get_user_model

from imagehost.models import EncodeJob, JobStatus
from imagehost.services import dispatch, jobs, uploads
from imagehost.services.dispatch import Waiting, fair_order

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _waiting(owner: str, n: int, start_s: int) -> list[Waiting]:
    return [Waiting(uuid4(), owner, T0 + timedelta(seconds=start_s + i)) for i in range(n)]


def test_a_batch_of_ten_does_not_starve_a_later_single_upload():
    batch, single = _waiting("A", 10, 0), _waiting("B", 1, 100)
    order = fair_order(single + batch, in_flight={}, per_owner=2)
    assert order == [batch[0].job_id, single[0].job_id, batch[1].job_id]


def test_an_owner_at_its_limit_waits_and_the_others_go_first():
    a, b, c = _waiting("A", 3, 0), _waiting("B", 2, 10), _waiting("C", 1, 5)
    assert fair_order(a + b + c, in_flight={"A": 2, "B": 1}, per_owner=2) == [c[0].job_id, b[0].job_id]
    assert fair_order(a, in_flight={"A": 5}, per_owner=2) == []


def test_first_come_first_served_across_owners_and_within_one():
    a, b = _waiting("A", 3, 20), _waiting("B", 3, 0)
    order = fair_order(a + b, in_flight={}, per_owner=3)
    # Round robin by rank; within a rank, the earlier upload first.
    assert order == [b[0].job_id, a[0].job_id, b[1].job_id, a[1].job_id, b[2].job_id, a[2].job_id]


@pytest.mark.django_db(transaction=True)  # sending happens on commit
def test_uploads_are_dispatched_fairly_and_the_next_goes_when_one_ends(png_bytes, fs_broker, settings):
    settings.EMMM_DISPATCH_PER_OWNER = 2
    alice = get_user_model().objects.create_user("alice", password="pw-alice-1")
    bob = get_user_model().objects.create_user("bob", password="pw-bob-1")
    batch = uploads.submit_uploads([png_bytes(20, 20, seed=i) for i in range(10)], owner=alice).jobs
    assert EncodeJob.objects.filter(sends=1).count() == 2  # alice's first two; eight wait
    single = uploads.submit_upload(png_bytes(20, 20, seed=99), owner=bob)
    single.refresh_from_db()
    assert single.sends == 1  # bob does not wait behind alice's batch
    assert len(fs_broker.messages()) == 3
    # Alice's first job ends: her third is sent (by the task, after the job), not before.
    EncodeJob.objects.filter(pk=batch[0].pk).update(status=JobStatus.FAILED, source=None)
    assert dispatch.dispatch_waiting().sent == 1
    assert EncodeJob.objects.get(pk=batch[2].pk).sends == 1
    assert EncodeJob.objects.filter(owner=alice, sends=0).count() == 7
    # The sweeper dispatches too, and sends nothing beyond the limit.
    assert jobs.requeue_stale_jobs().resent == 0


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_keep_the_per_owner_limit(fs_broker, settings, monkeypatch):
    """A dispatch that starts while another is still sending (an upload commits meanwhile) must
    count the other's sends: it used to skip the other's locked rows and count alice's in-flight
    jobs without its uncommitted sends, so she briefly had two on the broker with a limit of 1.
    Now a dispatch counts its picks sent and commits before it publishes (no transaction open
    while the broker is asked), so the second one sees the first's pick at once."""
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("two transactions at once need PostgreSQL (SQLite's IMMEDIATE ones never overlap)")
    import threading

    settings.EMMM_DISPATCH_PER_OWNER = 1
    alice = get_user_model().objects.create_user("alice", password="pw-alice-1")
    first = EncodeJob.objects.create(owner=alice, source=b"x", source_bytes=1)
    sending, release = threading.Event(), threading.Event()
    real_publish = jobs.publish_job

    def slow_publish(job_id):  # the first dispatcher is mid-publish (its pick committed)
        real_publish(job_id)
        sending.set()
        assert release.wait(30)

    monkeypatch.setattr(jobs, "publish_job", slow_publish)
    reports = {}

    def run(name):
        try:
            reports[name] = dispatch.dispatch_waiting()
        finally:
            connections.close_all()

    one = threading.Thread(target=run, args=("one",))
    one.start()
    assert sending.wait(30)
    monkeypatch.setattr(jobs, "publish_job", real_publish)
    second = EncodeJob.objects.create(owner=alice, source=b"y", source_bytes=1)  # an upload commits
    two = threading.Thread(target=run, args=("two",))
    two.start()
    two.join(1)  # it does not wait for the first's publish: the first's pick is counted already
    release.set()
    one.join(30)
    two.join(30)
    assert reports["one"].sent == 1 and reports["two"].sent == 0
    assert EncodeJob.objects.get(pk=first.pk).sends == 1
    assert EncodeJob.objects.get(pk=second.pk).sends == 0  # waits for alice's first to end
    assert len(fs_broker.messages()) == 1
