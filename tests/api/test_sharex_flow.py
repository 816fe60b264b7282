"""Issue 11: ShareX gets a working short link whatever the encode time, and a deletion URL.

The upload is replayed exactly as ShareX builds it from the downloaded ``.sxcu`` (tests/sharex.py);
the link it copies shows "encoding…" until the (real) encode has run, then the picture.
"""
from __future__ import annotations

import json

import pytest
from django.test import Client

from imagehost.models import EncodeJob, JobStatus, Picture, ShortLink, token_sha256
from imagehost.services import jobs, uploads
from tests.sharex import sharex_request, sharex_template

pytestmark = pytest.mark.django_db
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # a browser's Accept
IMAGE = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"  # an <img>'s Accept


def sxcu(client, owner) -> dict:
    client.force_login(owner)
    cfg = json.loads(client.post("/api/tokens/sharex.sxcu").content)
    client.logout()
    return cfg


def sharex_upload(cfg: dict, data: bytes, name: str = "Screenshot_2026-11-22.png"):
    url, headers, body = sharex_request(cfg, name, data)
    meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items() if k != "Content-Type"}
    return Client().post(url, data=body, content_type=headers["Content-Type"], **meta)


def test_sxcu_asks_for_no_wait_and_names_both_urls(client, owner):
    cfg = sxcu(client, owner)
    assert cfg["Parameters"] == {}  # the upload answers at once
    assert cfg["URL"] == "{json:short_url}" and cfg["DeletionURL"] == "{json:deletion_url}"
    assert cfg["ErrorMessage"] == "{json:error.message}"


def test_sharex_link_works_before_and_after_a_slow_encode(client, owner, png_bytes):
    cfg = sxcu(client, owner)
    r = sharex_upload(cfg, png_bytes(64, 48, seed=5))
    assert r.status_code == 202, r.content  # answered at once: the encode has not run
    url = sharex_template(cfg["URL"], r.content)
    deletion_url = sharex_template(cfg["DeletionURL"], r.content)
    assert url.startswith("http://testserver/s/") and deletion_url.startswith("http://testserver/delete/")
    job = EncodeJob.objects.get()
    assert job.owner == owner and job.status == JobStatus.QUEUED

    viewer = Client()
    page = viewer.get(url, HTTP_ACCEPT=HTML)  # someone opens the link in a browser while it encodes
    assert page.status_code == 503 and page["Cache-Control"] == "no-store" and page["Retry-After"] == "3"
    html = page.content.decode()
    assert "Encoding…" in html and 'http-equiv="refresh"' not in html  # no reload under the reader (WCAG F41)
    assert f'id="check-again" href="/s/{url.rsplit("/", 1)[-1]}"' in html  # without JavaScript: by hand
    assert viewer.get(url + "/", HTTP_ACCEPT=HTML).status_code == 503
    img = viewer.get(url, HTTP_ACCEPT=IMAGE)  # an <img> or a chat preview: retry later, not HTML
    assert img.status_code == 503 and img["Retry-After"] == "3"
    assert all("Accept" in r["Vary"] for r in (page, img))  # one URL, two shapes

    jobs.run_encode_job(job.pk)  # the worker, however long it takes
    img = viewer.get(url, HTTP_ACCEPT=IMAGE)
    assert img.status_code == 200 and img["Content-Type"] == "image/webp"
    assert viewer.get(url, HTTP_ACCEPT=HTML).status_code == 200  # the picture itself now
    job.refresh_from_db()
    link = ShortLink.objects.get(slug=url.rsplit("/", 1)[-1])
    assert link.token == job.picture.token and link.job_id == job.pk
    assert ShortLink.objects.filter(owner=owner).count() == 1  # the reserved link is the upload's link
    assert Client().get(f"/api/v1/jobs/{job.pk}").json()["short_url"] == url


def test_deletion_url_confirms_then_deletes_without_a_session(client, owner, png_bytes):
    cfg = sxcu(client, owner)
    r = sharex_upload(cfg, png_bytes(64, 48, seed=6))
    url, deletion_url = sharex_template(cfg["URL"], r.content), sharex_template(cfg["DeletionURL"], r.content)
    jobs.run_encode_job(EncodeJob.objects.get().pk)
    browser = Client(enforce_csrf_checks=True)  # no session, real CSRF checks
    page = browser.get(deletion_url)  # GET (a link preview, a prefetch) never deletes
    assert page.status_code == 200 and "Delete this upload?" in page.content.decode()
    assert Picture.objects.count() == 1 and browser.get(url).status_code == 200
    csrf = page.context["csrf_token"]
    r = browser.post(deletion_url, {"csrfmiddlewaretoken": str(csrf)}, HTTP_ORIGIN="null")
    assert r.status_code == 200 and 'id="upload-deleted"' in r.content.decode()
    assert not Picture.objects.exists() and not ShortLink.objects.exists()
    assert browser.get(url).status_code == 404 and browser.get(url + "/").status_code == 404
    assert browser.get(deletion_url).status_code == 404  # used once
    assert Client().post(deletion_url).status_code == 404


def test_deleting_before_the_encode_stops_the_job(client, owner, png_bytes):
    cfg = sxcu(client, owner)
    r = sharex_upload(cfg, png_bytes(64, 48, seed=8))
    url, deletion_url = sharex_template(cfg["URL"], r.content), sharex_template(cfg["DeletionURL"], r.content)
    assert Client().post(deletion_url).status_code == 200
    job = EncodeJob.objects.get()
    assert job.status == JobStatus.FAILED and job.source is None and "Deleted" in job.error
    assert jobs.run_encode_job(job.pk).picture is None  # the worker finds nothing to do
    assert Client().get(url, HTTP_ACCEPT=HTML).status_code == 404


def test_a_reserved_link_whose_job_fails_says_so(client, owner, png_bytes):
    cfg = sxcu(client, owner)
    r = sharex_upload(cfg, png_bytes(64, 48, seed=9))
    url = sharex_template(cfg["URL"], r.content)
    job = EncodeJob.objects.get()
    jobs.claim(job.pk)
    jobs.fail_by_id(job.pk, "The image could not be read.")
    for accept in (HTML, IMAGE):
        page = Client().get(url, HTTP_ACCEPT=accept)
        assert page.status_code == 410
        assert "could not be encoded" in page.content.decode() and "The image could not be read." in page.content.decode()
    assert Client().get(url + "/").status_code == 410
    slug = url.rstrip("/").rsplit("/", 1)[1]
    client.force_login(owner)
    listed = client.get("/links/").content.decode()  # the owner's list says so too
    assert f"/s/{slug}</a> <span class=\"small\">(could not be encoded)</span>" in listed


def test_sharex_errors_reach_its_error_message(client, owner):
    cfg = sxcu(client, owner)
    r = sharex_upload(cfg, b"GIF89a not really")
    assert r.status_code == 415
    assert sharex_template(cfg["ErrorMessage"], r.content)
    cfg["Headers"]["Authorization"] = "Bearer emmm_revoked-or-wrong"
    r = sharex_upload(cfg, b"\x89PNG")
    assert r.status_code == 401 and sharex_template(cfg["ErrorMessage"], r.content)


def test_anonymous_uploads_get_a_deletion_url_and_their_link_when_done(anon_client, png_bytes):
    r = anon_client.post("/api/v1/images", {"file": _file(png_bytes(64, 48, seed=10))}, format="multipart")
    body = r.json()
    assert r.status_code == 202 and body["short_url"] is None and body["deletion_url"]
    assert r["Cache-Control"] == "no-store"
    jobs.run_encode_job(body["id"])
    polled = anon_client.get(f"/api/v1/jobs/{body['id']}").json()
    assert polled["short_url"] == polled["picture"]["short_url"] and "deletion_url" not in polled
    assert Client().post(body["deletion_url"]).status_code == 200
    assert Client().get(polled["short_url"]).status_code == 404


def _anonymous_upload_done(data: bytes) -> tuple[dict, str]:
    from rest_framework.test import APIClient

    body = APIClient().post("/api/v1/images", {"file": _file(data)}, format="multipart").json()
    jobs.run_encode_job(body["id"])
    return APIClient().get(f"/api/v1/jobs/{body['id']}").json(), body["deletion_url"]


def test_an_anonymous_deletion_link_never_deletes_a_link_someone_else_made(owner_client, png_bytes):
    """The anonymous link of a token is shared: an anonymous upload that finishes after someone
    else shortened its token (encoding is deterministic: the same file, the same token) gets
    that link as its short_url. Its deletion link deleted it, under the feet of whoever made it."""
    data = png_bytes(64, 48, seed=14)
    mine = owner_client.post("/api/v1/images", {"file": _file(data)}, format="multipart").json()
    jobs.run_encode_job(mine["id"])
    token = EncodeJob.objects.get(pk=mine["id"]).picture.token
    sharer = Client()
    slug = sharer.post("/shorten", {"token": token})["Location"].rstrip("/").rsplit("/", 1)[1]  # shares it anonymously
    job, deletion_url = _anonymous_upload_done(data)
    assert job["short_url"].endswith(f"/s/{slug}")  # the same token: the shared link
    assert Client().post(deletion_url).status_code == 200
    assert not Picture.objects.filter(pk=job["picture"]["id"]).exists()  # the upload is deleted
    assert sharer.get(f"/s/{slug}").status_code == 200  # the link it did not make stays


def test_an_anonymous_deletion_link_leaves_the_link_another_anonymous_upload_shares(png_bytes):
    data = png_bytes(64, 48, seed=15)
    first, first_deletion = _anonymous_upload_done(data)
    second, second_deletion = _anonymous_upload_done(data)
    assert first["short_url"] == second["short_url"]
    assert Client().post(first_deletion).status_code == 200
    assert Client().get(second["short_url"]).status_code == 200  # still the second upload's link
    assert Client().post(second_deletion).status_code == 200  # the last upload using it
    assert Client().get(second["short_url"]).status_code == 404


def _file(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("a.png", data, content_type="image/png")


def test_submit_reserves_links_only_for_signed_in_owners(owner, png_bytes):
    sub = uploads.submit_uploads([png_bytes(), png_bytes(seed=2)], owner=owner)
    assert ShortLink.objects.filter(job__in=sub.jobs, token="").count() == 2
    assert set(sub.deletion_keys) == {j.pk for j in sub.jobs}
    anon = uploads.submit_uploads([png_bytes()], owner=None)
    assert not ShortLink.objects.filter(job__in=anon.jobs).exists()


def test_a_stale_reserved_look_up_in_this_cache_does_not_hold_the_link_back(client, owner, png_bytes, real_token):
    """Another process filled the token in and its cache invalidation never reached this cache."""
    job = uploads.submit_upload(png_bytes(), owner=owner)
    link = ShortLink.objects.get(job=job)
    assert Client().get(f"/s/{link.slug}").status_code == 503  # cached as reserved
    ShortLink.objects.filter(pk=link.pk).update(token=real_token, token_sha256=token_sha256(real_token))
    EncodeJob.objects.filter(pk=job.pk).update(status=JobStatus.DONE, source=None)
    r = Client().get(f"/s/{link.slug}")
    assert r.status_code == 200 and r["Content-Type"] == "image/webp"


def test_a_deletion_link_after_the_owner_deleted_the_picture(client, owner, png_bytes):
    cfg = sxcu(client, owner)
    r = sharex_upload(cfg, png_bytes(64, 48, seed=12))
    deletion_url = sharex_template(cfg["DeletionURL"], r.content)
    job = EncodeJob.objects.get()
    jobs.run_encode_job(job.pk)
    client.force_login(owner)
    client.post(f"/p/{EncodeJob.objects.get().picture_id}/", {"action": "delete", "confirm": "yes"})
    assert Client().get(deletion_url).status_code == 404  # "deleted already", not "still encoding"


def test_a_reserved_link_cannot_be_blocked_as_an_empty_identity(owner, png_bytes):
    from imagehost.models import BlockedToken
    from imagehost.services import errors, tokens

    job = uploads.submit_upload(png_bytes(), owner=owner)
    slug = ShortLink.objects.get(job=job).slug
    with pytest.raises(errors.BadToken, match="still being encoded"):
        tokens.block_token(f"http://testserver/s/{slug}")
    assert not BlockedToken.objects.exists()


def test_the_migration_gives_existing_anonymous_links_the_upload_that_made_them(png_bytes, real_token):
    """Links made before ShortLink.job recorded it: one made by an upload's completion (created
    just after the job finished) gets its job; one a person made earlier with /shorten does not."""
    import importlib
    from datetime import timedelta

    from django.apps import apps
    from django.utils import timezone

    migration = importlib.import_module("imagehost.migrations.0009_shortlink_job_made_for")
    job, _ = _anonymous_upload_done(png_bytes(64, 48, seed=16))
    made = ShortLink.objects.get(job_id=job["id"])
    ShortLink.objects.filter(pk=made.pk).update(job=None)
    shared_first = Client().post("/shorten", {"token": real_token})  # a person's link ...
    person = ShortLink.objects.get(token_sha256=token_sha256(real_token))
    later = EncodeJob.objects.create(owner=None, status=JobStatus.DONE, finished=timezone.now() + timedelta(minutes=1),
                                     picture=Picture.objects.create(owner=None, token=real_token, width=1, height=1))
    assert shared_first.status_code == 302 and later.finished > person.created  # ... before any upload of its token
    migration.record_uploads_that_made_anonymous_links(apps, None)
    assert ShortLink.objects.get(pk=made.pk).job_id == EncodeJob.objects.get(pk=job["id"]).pk
    assert ShortLink.objects.get(pk=person.pk).job_id is None


def test_a_job_whose_picture_was_deleted_still_has_its_pages(png_bytes):
    """The job pages were a 500 (VariableDoesNotExist: token_url in None) once the picture had
    been deleted; the upload page's script then polled for ever."""
    job, deletion_url = _anonymous_upload_done(png_bytes(64, 48, seed=17))
    assert Client().post(deletion_url).status_code == 200
    for page in (f"/jobs/{job['id']}/", f"/jobs/?ids={job['id']}"):
        r = Client().get(page)
        assert r.status_code == 200 and "This picture has been deleted." in r.content.decode()
    polled = Client().get(f"/api/v1/jobs/{job['id']}", HTTP_ACCEPT="application/json").json()
    assert polled["status"] == "done" and polled["picture"] is None and polled["short_url"] is None
