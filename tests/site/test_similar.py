"""Similar pictures on the site: the encode job's hook, backfill, the live index, /search/,
the picture page's sections and the near-duplicate notice. Real weights where a test embeds."""
from __future__ import annotations

import io
import logging
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from imagehost.models import EmbeddingChange, EncodeJob, PictureEmbedding, Visibility
from imagehost.services import jobs, library, links, similar, tokens
from imagehost import similarity as sim
from tests.similar_helpers import build_world, fresh_index, store_vector, unit  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def upload_as(client, data: bytes):
    return client.post("/", {"images": [SimpleUploadedFile("x.png", data, content_type="image/png")]})


def test_encode_job_stores_the_vector_and_flags_a_near_duplicate(client, user, other_user, png_bytes):
    client.force_login(user)
    data = png_bytes(64, 48, seed=5)
    first, second = upload_as(client, data), upload_as(client, data)
    job1, job2 = EncodeJob.objects.order_by("created")
    jobs.run_encode_job(job1.pk)
    jobs.run_encode_job(job2.pk)
    job1.refresh_from_db(), job2.refresh_from_db()
    row1, row2 = PictureEmbedding.objects.get(picture=job1.picture), PictureEmbedding.objects.get(picture=job2.picture)
    assert row1.model == sim.DEFAULT_MODEL and len(bytes(row1.vector)) == 1280 * 2
    assert row1.duplicate_of is None  # nothing earlier to duplicate
    assert row2.duplicate_of_id == job1.picture_id and row2.duplicate_score >= sim.NEAR_DUPLICATE_THRESHOLD
    page = client.get(second["Location"]).content.decode()
    assert "You already have this picture" in page and reverse("picture", args=[job1.picture_id]) in page
    assert "You already have this picture" not in client.get(first["Location"]).content.decode()
    client.force_login(other_user)  # whoever holds the job id sees the result, never the owner's library
    assert "You already have this picture" not in client.get(second["Location"]).content.decode()

    # The upload page's script reads the same notice from the API's job representation.
    api = client.get(f"/api/v1/jobs/{job2.pk}").json()
    assert api["duplicate"] is None and api["similarity_pending"] is False
    client.force_login(user)
    api = client.get(f"/api/v1/jobs/{job2.pk}").json()
    assert api["duplicate"]["picture"] == job1.picture_id and api["similarity_pending"] is False
    assert api["duplicate"]["url"].endswith(reverse("picture", args=[job1.picture_id]))
    assert api["duplicate"]["score"] >= sim.NEAR_DUPLICATE_THRESHOLD
    assert client.get(f"/api/v1/jobs/{job1.pk}").json()["duplicate"] is None


def test_a_failing_embedding_never_breaks_the_job(client, png_bytes, monkeypatch, caplog):
    def boom(picture):
        raise RuntimeError("embedding exploded")

    monkeypatch.setattr(similar, "embed_picture", boom)
    upload_as(client, png_bytes(64, 48))
    job = EncodeJob.objects.get()
    with caplog.at_level(logging.ERROR):
        jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    assert job.status == "done" and job.picture is not None
    assert not PictureEmbedding.objects.exists()
    assert "could not embed picture" in caplog.text and "embedding exploded" in caplog.text


def test_result_page_waits_briefly_for_the_owners_vector(client, user, png_bytes, monkeypatch):
    monkeypatch.setattr(similar, "index_finished_job", lambda job: None)  # the worker has not embedded yet
    monkeypatch.setattr(jobs, "index_finished_job", lambda job: None)
    client.force_login(user)
    location = upload_as(client, png_bytes(64, 48))["Location"]
    job = EncodeJob.objects.get()
    jobs.run_encode_job(job.pk)
    assert b'http-equiv="refresh"' in client.get(location).content  # done, vector pending: refresh
    assert client.get(f"/api/v1/jobs/{job.pk}").json()["similarity_pending"] is True  # the script polls on
    similar.embed_picture(EncodeJob.objects.get().picture)
    assert b'http-equiv="refresh"' not in client.get(location).content
    assert client.get(f"/api/v1/jobs/{job.pk}").json()["similarity_pending"] is False


def test_backfill_embeds_missing_pictures_and_skips_bad_tokens(make_picture, user, token_pool):
    good = [make_picture(user, token=token_pool(i).token) for i in (0, 1)]
    bad = make_picture(user)  # a fake token: cannot be decoded
    out = io.StringIO()
    call_command("backfill_embeddings", "--batch-size", "2", stdout=out)
    assert set(PictureEmbedding.objects.values_list("picture_id", flat=True)) == {p.pk for p in good}
    assert f"picture {bad.pk}: skipped" in out.getvalue() and "Done: 2 pictures embedded." in out.getvalue()
    out = io.StringIO()
    call_command("backfill_embeddings", stdout=out)
    assert "Done: 0 pictures embedded." in out.getvalue()


def test_index_follows_additions_and_deletions(make_picture, user):
    a, b = make_picture(user), make_picture(user)
    store_vector(a, unit(1))
    index = similar.live_index()
    assert index.get().ids() == {a.pk}
    store_vector(b, unit(2))
    assert index.get().ids() == {a.pk, b.pk}
    a_id = a.pk
    library.delete_picture(a)  # cascades to the embedding; the change log tells the index
    assert index.get().ids() == {b.pk}
    assert EmbeddingChange.objects.filter(picture_id=a_id).count() == 2  # stored, then deleted


# --- /search/ ---------------------------------------------------------------------------------
def test_search_page_has_no_inline_script_or_style(client):
    body = client.get("/search/").content.decode()
    assert 'name="image"' in body and 'name="q"' in body
    assert not re.search(r"<script(?![^>]*\bsrc=)", body) and "style=" not in body and "<style" not in body


def test_search_by_token_url_and_short_link_finds_public_pictures_only(client, user, other_user, make_picture, token_pool):
    public = library.create_album(user, "pub", Visibility.PUBLIC)
    unlisted = library.create_album(user, "unl", Visibility.UNLISTED)
    shown = make_picture(user, album=public, token=token_pool(0).token, title="shown-public")
    hidden = make_picture(user, album=unlisted, token=token_pool(1).token, title="hidden-unlisted")
    for pic in (shown, hidden):
        similar.embed_picture(pic)
    page = client.post("/search/", {"q": f"http://testserver/i/{hidden.token}.png"}).content.decode()
    assert "shown-public" in page and "hidden-unlisted" not in page
    assert re.search(r"Embedded and searched in \d+ ms", page)
    link = links.get_or_create_short_link(shown.token, user)
    client.force_login(other_user)
    page = client.post("/search/", {"q": f"http://testserver/s/{link.slug}/", "scope": "public"}).content.decode()
    assert "shown-public" in page and "hidden-unlisted" not in page


def test_search_page_upload_is_embedded_not_stored(client, png_bytes, user, make_picture):
    before = EncodeJob.objects.count()
    r = client.post("/search/", {"image": SimpleUploadedFile("q.png", png_bytes(), content_type="image/png")})
    assert r.status_code == 200 and b"Results" in r.content
    assert EncodeJob.objects.count() == before


@pytest.mark.parametrize(
    "data, status",
    [({}, 400), ({"q": "bad token!"}, 400), ({"q": "AAAA"}, 400), ({"q": "x", "scope": "mine"}, 401),
     ({"q": "x", "scope": "nope"}, 400), ({"q": "http://testserver/s/nope"}, 404)],
)
def test_search_page_bad_input(client, data, status):
    assert client.post("/search/", data).status_code == status


def test_search_page_bounds_the_query_image(client, settings, png_bytes):
    settings.EMMM_MAX_UPLOAD_BYTES = 1000
    big = png_bytes(200, 200, seed=3)
    r = client.post("/search/", {"image": SimpleUploadedFile("q.png", big, content_type="image/png")})
    assert r.status_code == 413
    r = client.post("/search/", {"image": SimpleUploadedFile("q.png", b"GIF89a nonsense", content_type="image/gif")})
    assert r.status_code == 415


def test_search_page_blocked_token_is_410(client, real_token):
    tokens.block_token(real_token)
    assert client.post("/search/", {"q": f"http://testserver/i/{real_token}"}).status_code == 410


# --- the picture page ---------------------------------------------------------------------------
def test_picture_page_shows_similar_pictures_without_leaks(client, user, other_user, make_picture):
    w = build_world(make_picture, user, other_user)
    client.force_login(user)
    page = client.get(reverse("picture", args=[w.alice_loose.pk])).content.decode()
    mine, public = page.split("Similar public pictures")
    for name in ("alice private", "alice unlisted", "alice public"):
        assert name in mine
    assert "bob public" in public and "alice public" in public
    for leaked in ("bob loose", "bob private", "bob unlisted", "anonymous", "blocked"):
        assert leaked not in page
