"""``Idempotency-Key`` on ``POST /api/v1/images``: a program that retries an upload whose
answer it never got (a timeout, a dropped connection) gets the first upload's job again,
not a second picture."""

from __future__ import annotations

import pytest

from imagehost.models import EncodeJob, JobStatus, Picture
from imagehost.services import jobs, uploads

from .conftest import token_client

pytestmark = pytest.mark.django_db

KEY = "0b6f9d3e-4c1a-4f7e-9a8b-2d5c6e7f8a90"


def post(client, data: bytes, key: str | None = KEY, query: str = "title=Cat", **headers):
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(f"/api/v1/images?{query}", data=data, content_type="image/png", **headers)


def test_a_retried_upload_gets_the_first_uploads_job(owner_client, png_bytes, fs_broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(owner_client, png_bytes(40, 30))
    assert first.status_code == 202, first.content
    assert "Idempotent-Replayed" not in first
    with django_capture_on_commit_callbacks(execute=True):
        again = post(owner_client, png_bytes(40, 30))
    assert again.status_code == 202, again.content
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["short_url"] == first.json()["short_url"]
    assert again["Location"] == first["Location"]
    assert EncodeJob.objects.count() == 1
    assert len(fs_broker.messages()) == 1  # one encode, not two
    # the answer that got through carries a deletion link that works (the lost one no longer does)
    client = owner_client.__class__()
    assert client.get(first.json()["deletion_url"]).status_code == 404
    assert client.get(again.json()["deletion_url"]).status_code == 200


def test_a_retry_after_the_encode_finished_answers_with_the_picture(owner_client, png_bytes):
    first = post(owner_client, png_bytes(40, 30))
    jobs.run_encode_job(first.json()["id"])
    again = post(owner_client, png_bytes(40, 30))
    assert again.status_code == 201, again.content  # finished, as a first request that waited would say
    assert again.json()["status"] == JobStatus.DONE and again.json()["picture"]["id"] == Picture.objects.get().pk
    assert Picture.objects.count() == 1


@pytest.mark.parametrize("query, other_image", [("title=Cat", True), ("title=Dog", False), ("title=Cat&max_chars=5000", False)])
def test_a_key_used_for_another_upload_is_refused(owner_client, png_bytes, query, other_image):
    assert post(owner_client, png_bytes(40, 30)).status_code == 202
    r = post(owner_client, png_bytes(40, 30, seed=1) if other_image else png_bytes(40, 30), query=query)
    assert r.status_code == 422, r.content
    error = r.json()["error"]
    assert error["code"] == "idempotency_key_reused" and "Idempotency-Key" in error["message"]
    assert EncodeJob.objects.count() == 1


def test_keys_belong_to_their_user(owner_client, other_client, png_bytes):
    mine, theirs = post(owner_client, png_bytes(40, 30)), post(other_client, png_bytes(40, 30))
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.json()["id"] != theirs.json()["id"]
    assert EncodeJob.objects.count() == 2


def test_uploads_without_a_key_are_not_deduplicated(owner_client, png_bytes):
    ids = {post(owner_client, png_bytes(40, 30), key=None).json()["id"] for _ in range(2)}
    assert len(ids) == 2 and EncodeJob.objects.count() == 2


def test_an_anonymous_upload_cannot_use_a_key(anon_client, png_bytes):
    """Anonymous clients cannot be told apart: one's key would hand another its job (and
    deletion link)."""
    r = post(anon_client, png_bytes(40, 30))
    assert r.status_code == 400, r.content
    assert r.json()["error"]["fields"] == {"Idempotency-Key": [r.json()["error"]["message"]]}
    assert "signed-in" in r.json()["error"]["message"]
    assert not EncodeJob.objects.exists()


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "caf\u00e9", "a b", "tab\there"])
def test_malformed_keys_are_refused(owner_client, png_bytes, key):
    r = post(owner_client, png_bytes(40, 30), key=key)
    assert r.status_code == 400, r.content
    assert "Idempotency-Key" in r.json()["error"]["fields"]
    assert not EncodeJob.objects.exists()


def test_keys_are_exact_strings_up_to_255_characters(owner_client, png_bytes):
    assert post(owner_client, png_bytes(40, 30), key="k" * 255).status_code == 202
    assert post(owner_client, png_bytes(40, 30), key='"k"').status_code == 202  # quotes are part of the key
    assert EncodeJob.objects.count() == 2


def test_two_requests_racing_with_one_key_make_one_job(owner, png_bytes, monkeypatch):
    """The second request looked before the first one's row was committed: the unique
    constraint stops its insert, and it answers with the first one's job, not a 500."""
    first = uploads.submit_uploads([png_bytes(40, 30)], owner=owner, title="Cat", idempotency_key=KEY)
    real_lookup, lookups = uploads._job_for_key, []

    def looks_too_early(owner, key):  # the first lookup misses the row, as a racing request's does
        lookups.append(key)
        return None if len(lookups) == 1 else real_lookup(owner, key)

    monkeypatch.setattr(uploads, "_job_for_key", looks_too_early)
    again = uploads.submit_uploads([png_bytes(40, 30)], owner=owner, title="Cat", idempotency_key=KEY)
    assert again.replayed and again.jobs[0].pk == first.jobs[0].pk
    assert EncodeJob.objects.count() == 1
    with pytest.raises(uploads.IdempotencyKeyReused):
        uploads.submit_uploads([png_bytes(40, 30)], owner=owner, title="Dog", idempotency_key=KEY)


def test_a_replay_after_the_deletion_link_was_used_has_none(owner, owner_client, png_bytes):
    first = post(owner_client, png_bytes(40, 30))
    jobs.run_encode_job(first.json()["id"])
    assert owner_client.__class__().post(first.json()["deletion_url"]).status_code in (200, 302)
    again = post(owner_client, png_bytes(40, 30))
    assert again.status_code == 201 and again.json()["deletion_url"] is None
    assert again.json()["picture"] is None  # deleted, and not made again


def test_the_schema_documents_the_header(client):
    op = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]["/api/v1/images"]["post"]
    header = next(p for p in op["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and not header.get("required")
    assert "422" in op["responses"]


def test_a_second_api_token_of_the_same_user_shares_the_keys(owner, owner_client, png_bytes):
    first = post(owner_client, png_bytes(40, 30))
    again = post(token_client(owner), png_bytes(40, 30))
    assert again.json()["id"] == first.json()["id"]


def test_a_deleted_uploads_row_cannot_confirm_a_guessed_image(owner_client, png_bytes):
    """The row keeps the request's digest after the upload is deleted: a plain sha256 of the
    image and title let whoever reads the database confirm a guess."""
    import hashlib
    import json

    r = post(owner_client, png_bytes(40, 30), query="title=Secret+holiday")
    digest = EncodeJob.objects.get(pk=r.json()["id"]).request_digest
    options = {"album": None, "title": "Secret holiday", "max_chars": None, "model": "", "kind": "vae"}
    plain = hashlib.sha256(json.dumps(options, sort_keys=True).encode() + b"\0" + png_bytes(40, 30)).hexdigest()
    assert len(digest) == 64 and digest != plain
