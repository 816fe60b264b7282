"""POST /api/v1/images (validated at once, 202 + job) and GET /api/v1/jobs/{id}."""

from __future__ import annotations

import uuid

import pytest

from imagehost.services import links, uploads
from imagehost.models import EncodeJob, JobStatus, Picture

pytestmark = pytest.mark.django_db


def test_multipart_upload_is_accepted_and_queued(anon_client, png_bytes, fs_broker, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    with django_capture_on_commit_callbacks(execute=True):
        r = anon_client.post(
            "/api/v1/images",
            {"file": SimpleUploadedFile("a.png", png_bytes(80, 60), "image/png"), "title": "Hello", "max_chars": "900"},
            format="multipart",
        )
    assert r.status_code == 202, r.content
    body = r.json()
    job = EncodeJob.objects.get(pk=body["id"])
    assert (job.status, job.title, job.max_chars, job.owner) == (JobStatus.QUEUED, "Hello", 900, None)
    assert body["status"] == "queued" and body["picture"] is None
    assert body["status_url"] == f"http://testserver/api/v1/jobs/{job.pk}"
    assert r["Location"] == body["status_url"]
    assert len(fs_broker.messages()) == 1  # the task went to the broker after commit


def test_raw_body_upload_with_query_options(owner_client, owner, make_album, png_bytes):
    album = make_album()
    r = owner_client.post(
        f"/api/v1/images?title=Raw&album={album.slug}", data=png_bytes(40, 40, fmt="JPEG"), content_type="image/jpeg"
    )
    assert r.status_code == 202, r.content
    job = EncodeJob.objects.get(pk=r.json()["id"])
    assert (job.title, job.album, job.owner) == ("Raw", album, owner)
    assert bytes(job.source) == png_bytes(40, 40, fmt="JPEG")


@pytest.mark.parametrize(
    "data, content_type, status, code",
    [
        (b"definitely not an image", "image/png", 415, "not_an_image"),
        (b"", "image/png", 415, "not_an_image"),
        (b"\x00" * 5000, "application/octet-stream", 415, "not_an_image"),
        (b"x", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_bad_bodies_are_rejected_at_once(anon_client, data, content_type, status, code):
    r = anon_client.post("/api/v1/images", data=data, content_type=content_type)
    assert r.status_code == status, r.content
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"]
    assert not EncodeJob.objects.exists()


def test_too_large_file_is_413(anon_client, png_bytes, settings):
    data = png_bytes(200, 200)
    settings.EMMM_MAX_UPLOAD_BYTES = len(data) - 1
    r = anon_client.post("/api/v1/images", data=data, content_type="image/png")
    assert r.status_code == 413
    assert "limit" in r.json()["error"]["message"]


def test_multipart_files_over_django_memory_default_are_kept(anon_client, settings):
    """A 3 MB file (over Django's 2.5 MB FILE_UPLOAD_MAX_MEMORY_SIZE) still arrives; over our limit: 413."""
    import io
    import os

    from django.conf import global_settings
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buf = io.BytesIO()
    Image.frombytes("RGB", (1000, 1000), os.urandom(3_000_000)).save(buf, "PNG")
    data = buf.getvalue()
    assert len(data) > global_settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    r = anon_client.post("/api/v1/images", {"file": SimpleUploadedFile("big.png", data, "image/png")}, format="multipart")
    assert r.status_code == 202, r.content
    assert EncodeJob.objects.get(pk=r.json()["id"]).source_bytes == len(data)
    settings.EMMM_MAX_UPLOAD_BYTES = len(data) - 1000
    r = anon_client.post("/api/v1/images", {"file": SimpleUploadedFile("big.png", data, "image/png")}, format="multipart")
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize("url", ["/api/v1/images", "/api/v1/search"])
def test_a_multipart_body_holds_one_upload_worth_of_files(anon_client, png_bytes, settings, url):
    """The limit was per file: every extra part (any field name, up to Django's 100 files) was
    kept in memory and then ignored, about 1 GB per anonymous request at the default limit."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    image = png_bytes(32, 32)
    settings.EMMM_MAX_UPLOAD_BYTES = 50_000
    extra = {f"x{i}": SimpleUploadedFile(f"x{i}.bin", b"\0" * 40_000) for i in range(3)}  # each under the limit
    r = anon_client.post(url, {"file": SimpleUploadedFile("a.png", image, "image/png"), **extra}, format="multipart")
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert not EncodeJob.objects.exists()
    r = anon_client.post(url, {"file": SimpleUploadedFile("a.png", image, "image/png")}, format="multipart")
    assert r.status_code in (200, 202)  # one upload's worth still passes


def test_too_many_pixels_is_413(anon_client, png_bytes, settings):
    settings.EMMM_MAX_UPLOAD_PIXELS = 100 * 100
    r = anon_client.post("/api/v1/images", data=png_bytes(200, 100), content_type="image/png")
    assert r.status_code == 413


@pytest.mark.parametrize(
    "query, field",
    [
        ("max_chars=3", "max_chars"),
        ("max_chars=abc", "max_chars"),
        ("wait=99", "wait"),
        ("album=", "album"),
        ("surprise=1", "surprise"),
        ("model=nope", None),
    ],
)
def test_bad_options_are_400(anon_client, png_bytes, query, field):
    r = anon_client.post(f"/api/v1/images?{query}", data=png_bytes(), content_type="image/png")
    assert r.status_code == 400, r.content
    if field:
        assert field in r.json()["error"]["fields"]
    else:  # refused by the service
        assert "Unknown model" in r.json()["error"]["message"]
    assert not EncodeJob.objects.exists()


def test_multipart_without_file_is_400(anon_client):
    r = anon_client.post("/api/v1/images", {"title": "no file"}, format="multipart")
    assert r.status_code == 400
    assert "file" in r.json()["error"]["fields"]


def test_album_rules(anon_client, other_client, make_album, png_bytes):
    album = make_album("public")
    r = other_client.post(f"/api/v1/images?album={album.slug}", data=png_bytes(), content_type="image/png")
    assert r.status_code == 404  # someone else's album
    r = anon_client.post(f"/api/v1/images?album={album.slug}", data=png_bytes(), content_type="image/png")
    assert r.status_code == 400
    assert "album" in r.json()["error"]["fields"]
    assert not EncodeJob.objects.exists()


def test_job_status_when_done_and_failed(anon_client, owner, png_bytes):
    job = uploads.submit_upload(png_bytes(), owner=None)
    token = "B" * 49 + "A"  # canonical base64url, never decoded
    picture = Picture.objects.create(owner=None, token=token, model_name="taef2", width=96, height=64)
    EncodeJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE, picture=picture, source=None)
    link = links.get_or_create_short_link(picture.token, None)
    body = anon_client.get(f"/api/v1/jobs/{job.pk}").json()
    assert body["status"] == "done"
    pic = body["picture"]
    assert (pic["token"], pic["width"], pic["height"], pic["chars"]) == (token, 96, 64, 50)
    assert pic["token_url"] == "http://testserver/i/" + token
    assert pic["short_url"] == f"http://testserver/s/{link.slug}"

    failed = uploads.submit_upload(png_bytes(), owner=None)
    EncodeJob.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED, error="Boom.", source=None)
    body = anon_client.get(f"/api/v1/jobs/{failed.pk}").json()
    assert (body["status"], body["error"], body["picture"]) == ("failed", "Boom.", None)


def test_unknown_job_is_json_404(anon_client):
    for path in (f"/api/v1/jobs/{uuid.uuid4()}", "/api/v1/jobs/not-a-uuid", "/api/v1/nothing-here"):
        r = anon_client.get(path)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


def test_wait_returns_201_once_the_job_finishes(owner_client, png_bytes, monkeypatch):
    """``wait`` re-reads the job until it ends (here the job is finished by the 'worker' at once)."""
    from imagehost.api.views import uploads as views

    real_get_job = views.selectors.get_job

    def finished_get_job(job_id):
        EncodeJob.objects.filter(pk=job_id).update(status=JobStatus.FAILED, error="Stopped.", source=None)
        return real_get_job(job_id)

    monkeypatch.setattr(views.selectors, "get_job", finished_get_job)
    r = owner_client.post("/api/v1/images?wait=5", data=png_bytes(), content_type="image/png")
    assert r.status_code == 201
    assert r.json()["status"] == "failed"


@pytest.fixture
def job_reads(monkeypatch):
    """Counts how often the upload view re-reads a job (each re-read is a wait of 0.2 s)."""
    from imagehost.api.views import uploads as views

    calls = []
    real_get_job = views.selectors.get_job
    monkeypatch.setattr(views.selectors, "get_job", lambda job_id: calls.append(job_id) or real_get_job(job_id))
    return calls


def test_anonymous_clients_never_wait(anon_client, png_bytes, job_reads):
    """Issue 8.5: an anonymous ``wait`` would hold a web thread; it answers 202 at once."""
    r = anon_client.post("/api/v1/images?wait=30", data=png_bytes(), content_type="image/png")
    assert r.status_code == 202
    assert r.json()["status"] == "queued" and r["Location"]
    assert job_reads == []


def test_waiters_over_the_per_process_cap_answer_202_at_once(owner_client, png_bytes, job_reads, settings):
    from imagehost import concurrency

    settings.EMMM_MAX_WAITERS = 1
    with concurrency.slot("upload-waiters", 1, timeout=0) as got:  # another request is waiting
        assert got
        r = owner_client.post("/api/v1/images?wait=30", data=png_bytes(), content_type="image/png")
    assert r.status_code == 202
    assert job_reads == []


@pytest.mark.parametrize("status", [JobStatus.DONE, JobStatus.FAILED])
def test_a_finished_job_cannot_keep_its_original(owner, png_bytes, status):
    """The database refuses it (``encodejob_no_source_after_end``), so no sweep looks for one."""
    from django.db import IntegrityError, transaction

    job = uploads.submit_upload(png_bytes(32, 24), owner=owner)
    with pytest.raises(IntegrityError), transaction.atomic():
        EncodeJob.objects.filter(pk=job.pk).update(status=status)
    assert EncodeJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED, source__isnull=False).exists()
