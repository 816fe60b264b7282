"""Broker down at upload time: the job is kept, so both surfaces accept the upload with a warning."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imagehost.models import EncodeJob, JobStatus
from tests.conftest import free_port, point_celery_at

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down(fs_broker):
    """The in-process Celery app points at a Redis port nothing listens on."""
    point_celery_at(f"redis://127.0.0.1:{free_port()}/0", {})
    yield


def test_api_answers_202_with_a_queue_unavailable_warning(client, png_bytes, broker_down):
    f = SimpleUploadedFile("a.png", png_bytes(32, 32), content_type="image/png")
    r = client.post("/api/v1/images?wait=5", {"file": f})
    assert r.status_code == 202  # not 201: no waiting for a job that cannot be queued
    body = r.json()
    assert body["status"] == "queued"
    assert body["warning"]["code"] == "queue_unavailable" and "kept" in body["warning"]["message"]
    job = EncodeJob.objects.get(pk=body["id"])
    assert job.status == JobStatus.QUEUED and job.sends == 0 and job.source is not None


def test_site_form_shows_the_result_page_with_a_notice(client, png_bytes, broker_down):
    files = [SimpleUploadedFile(f"{i}.png", png_bytes(24, 24, i), content_type="image/png") for i in range(2)]
    r = client.post("/", {"images": files})
    assert r.status_code == 303
    page = client.get(r["Location"])
    body = page.content.decode()
    assert page.status_code == 200 and 'id="queue-notice"' in body and "will be encoded when the queue is back" in body
    assert 'id="check-again"' in body  # still pending: the page offers to check again
    jobs = EncodeJob.objects.all()
    assert jobs.count() == 2 and all(j.sends == 0 and j.source is not None for j in jobs)


def test_no_notice_when_the_queue_took_the_job(client, png_bytes, fs_broker):
    r = client.post("/", {"images": [SimpleUploadedFile("a.png", png_bytes(24, 24), content_type="image/png")]})
    assert 'id="queue-notice"' not in client.get(r["Location"]).content.decode()
