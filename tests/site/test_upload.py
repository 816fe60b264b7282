"""Upload → job → (the worker's function) → picture; limits at N and N+1; transactions."""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.contrib.sessions.models import Session
from django.test import Client

import codec
from imagehost.services import errors, jobs, uploads
from imagehost.models import EncodeJob, JobStatus, Picture, ShortLink

pytestmark = pytest.mark.django_db(transaction=True)


def upload(client, *payloads: bytes, name: str = "x.png", **extra):
    files = [SimpleUploadedFile(name, p, content_type="image/png") for p in payloads]
    return client.post("/", {"images": files}, **extra)


def test_upload_page_works_without_javascript(client):
    r = client.get("/")
    body = r.content.decode()
    assert r.status_code == 200
    assert 'enctype="multipart/form-data"' in body and 'name="images"' in body and "multiple" in body
    assert r["Referrer-Policy"] == "no-referrer"


def test_anonymous_upload_queues_then_worker_function_finishes(client, png_bytes, fs_broker):
    data = png_bytes(64, 48)
    r = upload(client, data)
    assert r.status_code == 303
    job = EncodeJob.objects.get()
    assert job.status == JobStatus.QUEUED and bytes(job.source) == data and job.sends == 1
    assert len(fs_broker.messages()) == 1
    msg = json.loads(fs_broker.messages()[0].read_text())
    assert msg["headers"]["task"] == "imagehost.tasks.encode_job"
    page = client.get(r["Location"])
    assert page.status_code == 200 and b"Queued" in page.content and b'id="check-again"' in page.content
    assert b'http-equiv="refresh"' not in page.content  # no reload under a keyboard or screen-reader user

    jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.source is None and job.attempts == 1
    pic = job.picture
    assert pic.owner is None and pic.width == 64 and pic.height == 48 and pic.model_name == "taef2"
    link = ShortLink.objects.get(token_sha256=pic.token_sha256)
    page = client.get(r["Location"])
    body = page.content.decode()
    assert f"/i/{pic.token}" in body and f"/s/{link.slug}" in body
    assert "Chat apps" in body and page["Referrer-Policy"] == "no-referrer"
    assert client.get(f"/i/{pic.token}").status_code == 200

    # Idempotent: running the job again changes nothing.
    jobs.run_encode_job(job.pk)
    assert Picture.objects.count() == 1 and ShortLink.objects.count() == 1


def test_the_result_page_gives_the_uploader_the_deletion_link_and_nobody_else(client, png_bytes):
    """The deletion link (shown once: only its digest is stored) was thrown away by the page
    without JavaScript, so an anonymous uploader could never delete the upload."""
    r = upload(client, png_bytes(64, 48))
    page = client.get(r["Location"]).content.decode()
    found = re.findall(r'value="(http://testserver/delete/[^"]+/)"', page)
    assert len(found) == 1 and "anyone who has it can delete" in page  # shown while it encodes, said to be secret
    jobs.run_encode_job(EncodeJob.objects.get().pk)
    assert found[0] in client.get(r["Location"]).content.decode()  # and once it is done
    assert "/delete/" not in Client().get(r["Location"]).content.decode()  # a shared result page: not to others
    confirm = client.get(found[0].removeprefix("http://testserver"))
    assert confirm.status_code == 200 and "Delete this upload?" in confirm.content.decode()
    key = found[0].rstrip("/").rsplit("/", 1)[-1]
    assert not any(key in row.session_data or key in str(row.get_decoded()) for row in Session.objects.all())  # not kept on the server
    assert client.cookies["emmm_deletion_links"]["path"] == "/jobs/" and client.cookies["emmm_deletion_links"]["httponly"]
    assert {"private", "no-store"} <= set(client.get(r["Location"])["Cache-Control"].replace(" ", "").split(","))  # never shared


def test_upload_page_script_uses_the_api_with_session_and_csrf(png_bytes, user):
    """The page's script posts to /api/v1/images (session + CSRF, Origin: null under no-referrer)
    and polls /api/v1/jobs/{id}; the site's own job JSON is gone."""
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    page = c.get("/")
    assert 'data-api-upload="/api/v1/images"' in page.content.decode() and 'id="url-places"' in page.content.decode()
    csrf = page.cookies["csrftoken"].value

    def post(**headers):
        f = SimpleUploadedFile("a.png", png_bytes(40, 40), content_type="image/png")
        return c.post("/api/v1/images", {"file": f}, HTTP_ACCEPT="application/json", **headers)

    assert post(HTTP_ORIGIN="null").status_code == 403  # no CSRF token
    r = post(HTTP_ORIGIN="null", HTTP_X_CSRFTOKEN=csrf)
    assert r.status_code == 202
    job = r.json()
    assert job["status"] == "queued" and "warning" not in job
    s = c.get(job["status_url"], HTTP_ACCEPT="application/json")
    assert s.status_code == 200 and s.json()["id"] == job["id"]
    assert EncodeJob.objects.get(pk=job["id"]).owner == user
    assert c.get(f"/jobs/{job['id']}.json").status_code == 404
    assert c.get("/jobs/00000000-0000-0000-0000-000000000000.json").status_code == 404


def test_several_files_at_once_and_file_count_limit(client, settings, png_bytes):
    settings.EMMM_MAX_FILES_PER_UPLOAD = 2
    assert upload(client, png_bytes(20, 20, 1), png_bytes(20, 20, 2)).status_code == 303
    assert EncodeJob.objects.count() == 2
    r = upload(client, png_bytes(20, 20, 1), png_bytes(20, 20, 2), png_bytes(20, 20, 3))
    assert r.status_code == 400 and EncodeJob.objects.count() == 2


def test_byte_limit_at_n_and_n_plus_1(client, settings, png_bytes):
    data = png_bytes(30, 30)
    settings.EMMM_MAX_UPLOAD_BYTES = len(data)
    assert upload(client, data).status_code == 303
    settings.EMMM_MAX_UPLOAD_BYTES = len(data) - 1
    r = upload(client, data)
    assert r.status_code == 413 and b"limit" in r.content
    assert EncodeJob.objects.count() == 1


def test_pixel_limit_at_n_and_n_plus_1(client, settings, png_bytes):
    data = png_bytes(30, 20)
    settings.EMMM_MAX_UPLOAD_PIXELS = 600
    assert upload(client, data).status_code == 303
    settings.EMMM_MAX_UPLOAD_PIXELS = 599
    assert upload(client, data).status_code == 413
    assert EncodeJob.objects.count() == 1


def test_not_an_image_is_415(client, settings, png_bytes):
    assert upload(client, b"this is not an image at all").status_code == 415
    assert upload(client, b"").status_code in (400, 415)
    settings.EMMM_ALLOWED_FORMATS = ["JPEG"]
    r = upload(client, png_bytes(20, 20))
    assert r.status_code == 415 and "PNG images are not accepted; send JPEG." in r.content.decode()
    assert upload(client, png_bytes(20, 20, fmt="JPEG")).status_code == 303


def test_a_camera_jpeg_with_a_second_picture_is_a_jpeg(client):
    """Phones and cameras write JPEGs with a multi-picture (MPF) segment: Pillow calls them "MPO",
    and the site refused them (415 "MPO images are not accepted") though the codec reads them."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "MPO", save_all=True, append_images=[Image.new("RGB", (20, 15))])
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    assert upload(client, buf.getvalue()).status_code == 303


def test_missing_file_is_400(client):
    assert client.post("/", {}).status_code == 400


def test_upload_rate_limit_at_n_and_n_plus_1(client, settings, png_bytes):
    settings.EMMM_UPLOAD_RATE = "2/h"  # hour windows: no boundary mid-test
    codes = [upload(client, png_bytes(16, 16, i)).status_code for i in range(3)]
    assert codes == [303, 303, 429]


def test_client_file_name_is_never_used(client, png_bytes, settings, tmp_path):
    name = "zz-evil-name-1234.png"
    r = upload(client, png_bytes(20, 20), name=f"../../{name}")
    assert r.status_code == 303
    job = EncodeJob.objects.get()
    assert name not in repr(job.__dict__)
    assert not _files_named_like(name, Path(settings.BASE_DIR), Path(settings.VAR_DIR), tmp_path)
    assert not list(Path(tempfile.gettempdir()).glob(f"*{name}*"))  # where upload temp files would go


def _files_named_like(name: str, *roots: Path) -> list[str]:
    """Files whose name contains ``name`` under the roots; virtualenvs and VCS folders are skipped."""
    skip = {".venv", "venv", ".git", "node_modules", "__pycache__"}
    found = []
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in skip]
            found += [os.path.join(folder, f) for f in files + dirs if name in f]
    return found


def test_rolled_back_transaction_sends_no_task(png_bytes, fs_broker):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with transaction.atomic():
            uploads.submit_upload(png_bytes(20, 20))
            raise Boom
    assert EncodeJob.objects.count() == 0
    assert fs_broker.messages() == []
    uploads.submit_upload(png_bytes(20, 20))
    assert len(fs_broker.messages()) == 1


def test_gives_up_after_max_attempts_with_clear_error(png_bytes, settings):
    settings.EMMM_JOB_MAX_ATTEMPTS = 2
    job = uploads.submit_upload(png_bytes(20, 20))
    # Its second attempt's worker died mid-encode (no heartbeat since) and the message comes back.
    from datetime import timedelta

    from django.utils import timezone

    stale = timezone.now() - timedelta(seconds=settings.EMMM_RUNNING_STALE_S + 1)
    EncodeJob.objects.filter(pk=job.pk).update(attempts=2, status=JobStatus.RUNNING, heartbeat_at=stale)
    jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.source is None
    assert job.error.startswith("Gave up after 2 attempts")
    assert Picture.objects.count() == 0


def test_undecodable_upload_fails_the_job_with_a_message(png_bytes):
    data = png_bytes(20, 20)
    job = uploads.submit_upload(data)
    # Corrupt the stored bytes after validation: the worker must fail cleanly, not retry forever.
    EncodeJob.objects.filter(pk=job.pk).update(source=data[:60])
    jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error and job.source is None


def test_sweeper_resends_unsent_and_expires_old_jobs(png_bytes, fs_broker, settings):
    from datetime import timedelta

    from django.utils import timezone

    job = uploads.submit_upload(png_bytes(20, 20))
    assert len(fs_broker.messages()) == 1
    # A job whose send failed (sends=0) is re-sent by the sweeper.
    EncodeJob.objects.filter(pk=job.pk).update(sends=0, updated=timezone.now() - timedelta(seconds=5))
    report = jobs.requeue_stale_jobs()
    assert report.resent == 1 and len(fs_broker.messages()) == 2
    # Older than EMMM_JOB_EXPIRE_S: failed, original dropped.
    EncodeJob.objects.filter(pk=job.pk).update(created=timezone.now() - timedelta(seconds=settings.EMMM_JOB_EXPIRE_S + 1))
    report = jobs.requeue_stale_jobs()
    job.refresh_from_db()
    assert report.expired == 1 and job.status == JobStatus.FAILED and job.source is None


def test_csrf_with_no_referrer_origin_null(png_bytes):
    """Browsers post with Origin: null under no-referrer: the token decides, not the origin."""
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    page = c.get("/")
    token = page.cookies["csrftoken"].value
    files = {"images": [SimpleUploadedFile("a.png", png_bytes(16, 16), content_type="image/png")]}
    assert c.post("/", files, HTTP_ORIGIN="null").status_code == 403  # no CSRF token
    files = {"images": [SimpleUploadedFile("a.png", png_bytes(16, 16), content_type="image/png")],
             "csrfmiddlewaretoken": token}
    assert c.post("/", files, HTTP_ORIGIN="https://evil.example").status_code == 403
    files["images"] = [SimpleUploadedFile("a.png", png_bytes(16, 16), content_type="image/png")]
    assert c.post("/", files, HTTP_ORIGIN="null").status_code == 303


def test_a_file_over_django_default_memory_size_is_accepted(client):
    """Django's default 2.5 MB memory limit would silently drop this file."""
    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (1100, 1100, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG", compress_level=0)
    data = buf.getvalue()
    assert 2_621_440 < len(data) < 10 * 1024 * 1024
    assert upload(client, data).status_code == 303
    assert EncodeJob.objects.count() == 1


def test_rate_limit_key_ignores_a_spoofed_forwarded_for(rf, settings):
    from django.contrib.auth.models import AnonymousUser

    from imagehost.ratelimits import SCOPES

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    request = rf.get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR="6.6.6.6")
    request.user = AnonymousUser()
    assert SCOPES["uploads"].key(request) == "ip:10.0.0.9"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.FORWARDED_ALLOW_IPS = ["10.0.0.1"]  # the proxy
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 2.2.2.2")
    request.user = AnonymousUser()
    assert SCOPES["uploads"].key(request) == "ip:2.2.2.2"


def test_missing_model_requeues_the_job_then_gives_up(png_bytes, settings, monkeypatch, tmp_path):
    """Weights missing on a worker is its set-up, not the upload's fault: retry, then fail clearly."""
    from codec.models import registry

    settings.EMMM_JOB_MAX_ATTEMPTS = 2
    monkeypatch.setenv("EMMM_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("EMMM_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EMMM_OFFLINE", "1")
    registry.unload_all()
    try:
        job = uploads.submit_upload(png_bytes(20, 20))
        with pytest.raises(errors.RetryableEncodeError, match="encoder is unavailable"):
            jobs.run_encode_job(job.pk)
        job.refresh_from_db()
        assert job.status == JobStatus.QUEUED and job.source is not None and job.attempts == 1
        jobs.run_encode_job(job.pk)
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED and job.source is None
        assert job.error.startswith("Gave up after 2 attempts. The encoder is unavailable")
    finally:
        registry.unload_all()


@pytest.mark.parametrize("size, budget, shrunk", [((10, 6), "best", False), ((16, 4000), "chat", True)])
def test_result_page_says_coded_smaller_only_when_it_was(client, png_bytes, size, budget, shrunk):
    """A side under 16 pixels is coded larger (two latent pixels), which is no budget's doing;
    a budget may shrink only the height of a 16-pixel-wide strip, which is."""
    r = client.post("/", {"images": SimpleUploadedFile("x.png", png_bytes(*size), content_type="image/png"), "budget": budget})
    assert r.status_code == 303
    job = EncodeJob.objects.get()
    jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    info = codec.inspect(job.picture.token)
    body = client.get(r["Location"]).content.decode()
    if shrunk:
        assert info.coded_width == 16 and info.coded_height < 4000
        assert f"coded at 16×{info.coded_height} to fit the link budget" in body
    else:
        assert (info.coded_width, info.coded_height) == (16, 16)
        assert "coded at" not in body and "Stored at 10×6" in body


def test_an_anonymous_upload_into_an_album_is_refused_like_the_api(client, user, png_bytes):
    """Signed out (a session that expired on the upload page), the album was silently dropped
    and the picture became an anonymous upload; the API answered 400."""
    from imagehost.services import library

    album = library.create_album(user, "Trip")
    r = client.post("/", {"images": SimpleUploadedFile("x.png", png_bytes(), content_type="image/png"), "album": album.slug})
    assert r.status_code == 400 and "Sign in to upload into an album." in r.content.decode()
    api = client.post("/api/v1/images", {"file": SimpleUploadedFile("x.png", png_bytes(), content_type="image/png"), "album": album.slug})
    assert api.status_code == 400 and "Sign in to upload into an album." in api.content.decode()
    assert not EncodeJob.objects.exists()


def test_the_budget_choices_say_what_they_do(client):
    """A budget is a bound on the link, not a quality: with no bound the default quantisation
    is not the "best" quality (a small picture under a budget gets a finer step that fits)."""
    body = client.get("/").content.decode()
    assert "Best quality" not in body and "all the detail" not in body
    assert "No length limit" in body and "may use the room for more detail" in body
