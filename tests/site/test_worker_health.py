"""Issue 9.5: the site knows whether an encode worker is running and says so; ``/healthz``."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from imagehost.models import EncodeJob, JobStatus
from imagehost.services import workers
from tests.conftest import free_port, point_celery_at

NOTICE = b"The encoder is not running right now; your upload is kept and will be encoded when it is back."


def _upload_no_js(client, png_bytes):
    page = client.post("/", {"images": [SimpleUploadedFile("a.png", png_bytes(20, 20), content_type="image/png")]},
                       follow=True)
    assert page.status_code == 200 and page.redirect_chain[0][1] == 303
    return page, page.redirect_chain[0][0].split("ids=")[1]


def _upload_api(client, png_bytes) -> dict:
    r = client.post("/api/v1/images", {"file": SimpleUploadedFile("a.png", png_bytes(20, 20), content_type="image/png")},
                    HTTP_ACCEPT="application/json")
    assert r.status_code == 202
    return r.json()


@pytest.mark.django_db
def test_no_worker_upload_result_says_so_on_both_surfaces(client, png_bytes):
    page, job_id = _upload_no_js(client, png_bytes)
    assert b'id="worker-notice"' in page.content and NOTICE in page.content
    job = _upload_api(client, png_bytes)
    assert job["worker"] == {"code": "worker_unavailable", "message": NOTICE.decode()}
    assert client.get(f"/api/v1/jobs/{job_id}").json()["worker"]["code"] == "worker_unavailable"
    # The upload page's script shows it (the per-file template has the element it fills).
    assert b'class="worker-notice notice"' in client.get("/").content


@pytest.mark.django_db
def test_worker_alive_no_notice_and_finished_jobs_never_have_one(client, png_bytes):
    workers.record_heartbeat("w1@test")
    page, job_id = _upload_no_js(client, png_bytes)
    assert b'id="worker-notice"' not in page.content
    assert client.get(f"/api/v1/jobs/{job_id}").json()["worker"] is None
    # A heartbeat older than EMMM_WORKER_STALE_S: the worker is gone.
    workers.record_heartbeat("w1@test", now=timezone.now() - timedelta(seconds=31))
    assert client.get(f"/api/v1/jobs/{job_id}").json()["worker"]["code"] == "worker_unavailable"
    EncodeJob.objects.filter(pk=job_id).update(status=JobStatus.FAILED, source=None, error="x")
    assert client.get(f"/api/v1/jobs/{job_id}").json()["worker"] is None
    page = client.get(f"/jobs/?ids={job_id}")
    assert b'id="worker-notice"' not in page.content


@pytest.mark.django_db
def test_healthz_200_when_all_is_well(client):
    workers.record_heartbeat("w1@test")
    r = client.get("/healthz")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "ok" and body["down"] == []
    assert set(body["checks"]) == {"database", "cache", "broker", "worker", "model"}
    assert all(c["ok"] for c in body["checks"].values())
    assert "no-cache" in r["Cache-Control"]


@pytest.mark.django_db
def test_healthz_503_names_the_missing_worker(client):
    r = client.get("/healthz")
    assert r.status_code == 503 and r["Content-Type"] == "application/json"
    assert r.json()["down"] == ["worker"] and r.json()["status"] == "down"
    workers.record_heartbeat("w1@test", now=timezone.now() - timedelta(seconds=31))
    assert client.get("/healthz").json()["down"] == ["worker"]


@pytest.mark.django_db
def test_healthz_503_names_a_broker_that_is_down(client):
    workers.record_heartbeat("w1@test")
    point_celery_at(f"redis://127.0.0.1:{free_port()}/0", {})  # nothing listens there
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["down"] == ["broker"]
    assert "127.0.0.1" not in r.content.decode()  # no hosts in a public answer


@pytest.mark.django_db
def test_healthz_503_names_an_embedded_broker_whose_folder_is_gone(client, fs_broker):
    """kombu's filesystem transport "connects" to anything: the check said "reachable" while
    every upload's send failed (FileNotFoundError)."""
    import shutil

    workers.record_heartbeat("w1@test")
    assert client.get("/healthz").status_code == 200
    shutil.rmtree(fs_broker.folder / "out")
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["down"] == ["broker"]
    assert str(fs_broker.folder) not in r.content.decode()


@pytest.mark.django_db
def test_healthz_503_names_missing_model_weights(client, monkeypatch):
    import codec

    workers.record_heartbeat("w1@test")
    monkeypatch.setattr(codec, "model_available", lambda name=None: False)  # weights deleted from disk
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["down"] == ["model"]


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_real_worker_heartbeat_then_stopped_then_broker_down(client, celery_worker, redis_broker, png_bytes, wait_for):
    """A real worker (on Redis) records its heartbeat; stopping it makes the site say so."""
    wait_for(lambda: client.get("/healthz").status_code == 200, timeout=30, what="healthz 200 with a live worker")
    job_id = _upload_api(client, png_bytes)["id"]
    assert client.get(f"/api/v1/jobs/{job_id}").json()["worker"] is None
    # Stop it idle (a warm shutdown waits for a running encode, and the fixture SIGKILLs after 20 s).
    wait_for(lambda: EncodeJob.objects.get(pk=job_id).status == JobStatus.DONE, timeout=120, what="the job")
    celery_worker.stop()  # a clean shutdown removes its heartbeat at once
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["down"] == ["worker"], celery_worker.log()[-3000:]
    page, _ = _upload_no_js(client, png_bytes)
    assert NOTICE in page.content
    redis_broker.stop()
    assert client.get("/healthz").json()["down"] == ["broker", "worker"]
