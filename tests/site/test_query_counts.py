"""Query counts of list and poll pages: they must not grow with the number of rows shown, and
job and link reads must never load an upload's original (``EncodeJob.source``, up to 10 MB).

Each check measures the same request with few and with many rows (``CaptureQueriesContext``)
and compares the two counts, after a first request that warms the caches.
"""
from __future__ import annotations

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from imagehost.models import EncodeJob, JobStatus, PictureEmbedding, ShortLink, Visibility
from imagehost.services import library, links, search, tokens, uploads
from tests.api.conftest import token_client
from tests.similar_helpers import fresh_index, store_vector, unit  # noqa: F401 (fresh_index: autouse)

pytestmark = pytest.mark.django_db


def measured(client, url, method="get", **kw):
    """The response and the SQL of the second of two identical requests (the first warms caches)."""
    getattr(client, method)(url, **kw)
    with CaptureQueriesContext(connection) as ctx:
        response = getattr(client, method)(url, **kw)
    return response, [q["sql"] for q in ctx.captured_queries]


def reads_source(sql: str) -> bool:
    """A SELECT that reads the column ``source`` (only ``EncodeJob`` has one; not ``source_bytes``)."""
    return sql.lstrip().upper().startswith("SELECT") and '."source"' in sql


# --- 1. the original is never read by job and link pages -----------------------------------
@pytest.fixture
def queued(user, png_bytes):
    """Two queued uploads of ``user`` (their originals still stored), with their deletion keys."""
    submission = uploads.submit_uploads([png_bytes(64, 48, seed=1), png_bytes(64, 48, seed=2)], owner=user)
    assert all(j.status == JobStatus.QUEUED for j in submission.jobs)
    assert all(EncodeJob.objects.filter(pk=j.pk, source__isnull=False).exists() for j in submission.jobs)
    return submission


def test_reads_source_helper_sees_the_column():
    with CaptureQueriesContext(connection) as ctx:
        list(EncodeJob.objects.all())
    assert reads_source(ctx.captured_queries[0]["sql"])
    with CaptureQueriesContext(connection) as ctx:
        list(EncodeJob.objects.defer("source"))
    assert not reads_source(ctx.captured_queries[0]["sql"])


def test_job_and_link_pages_never_load_the_original(client, user, queued):
    client.force_login(user)
    api = token_client(user)
    job = queued.jobs[0]
    ids = ",".join(str(j.pk) for j in queued.jobs)
    key = queued.deletion_keys[job.pk]
    pages = [
        (api, f"/api/v1/jobs/{job.pk}", str(job.pk)),
        (client, f"/jobs/{job.pk}/", f"job-{job.pk}"),
        (client, f"/jobs/?ids={ids}", f"job-{queued.jobs[1].pk}"),
        (client, "/links/", ShortLink.objects.get(job=job).slug),
        (api, "/api/v1/links", ShortLink.objects.get(job=job).slug),
        (client, f"/delete/{key}/", "still being encoded"),
    ]
    loading = []
    for c, url, shown in pages:
        response, sql = measured(c, url)
        assert response.status_code == 200, url
        assert shown in response.content.decode(), url
        loading += [url for q in sql if reads_source(q)]
    assert loading == []


def test_upload_waiting_for_its_job_never_rereads_the_original(user, png_bytes):
    api = token_client(user)
    with CaptureQueriesContext(connection) as ctx:
        response = api.post("/api/v1/images", {"file": io.BytesIO(png_bytes(64, 48)), "wait": 1}, format="multipart")
    assert response.status_code == 202, response.content[:300]
    assert response.json()["status"] == "queued"
    rereads = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT") and '"imagehost_encodejob"' in q["sql"]]
    assert rereads  # wait_for_job polled the job
    assert not [q for q in rereads if reads_source(q)]


# --- 2. pictures list, search, similar: no query per picture ----------------------------------
def test_api_pictures_list_queries_do_not_grow(user, make_picture):
    api = token_client(user)
    counts = {}
    made = []
    for n in (3, 30):
        while len(made) < n:
            p = make_picture(user, title=f"p{len(made)}")
            if len(made) % 3:  # every third picture has no short link
                links.get_or_create_short_link(p.token, user)
            made.append(p)
        response, sql = measured(api, "/api/v1/pictures?page_size=100")
        assert response.status_code == 200
        assert len(response.json()["results"]) == n
        counts[n] = len(sql)
    assert counts[30] == counts[3], counts
    by_id = {r["id"]: r for r in response.json()["results"]}
    for i, p in enumerate(made):
        expected = ShortLink.objects.filter(token_sha256=p.token_sha256, owner=user).first()
        got = by_id[p.pk]["short_url"]
        assert (got is None) == (i % 3 == 0)
        if expected is not None:
            assert got.endswith(f"/s/{expected.slug}")


def _similar_world(user, make_picture, n):
    album = library.create_album(user, "pub", Visibility.PUBLIC)
    pictures = []
    for i in range(n):
        p = make_picture(user, album=album, position=i, title=f"s{i}")
        links.get_or_create_short_link(p.token, user)
        store_vector(p, unit(1))
        pictures.append(p)
    return pictures


def test_api_similar_and_search_queries_do_not_grow_with_hits(user, make_picture, monkeypatch):
    pictures = _similar_world(user, make_picture, 32)
    monkeypatch.setattr(search, "embed_query_text", lambda text: unit(1))
    api = token_client(user)
    similar, searched = {}, {}
    for k in (3, 24):  # 24: one page of the paginated similar list
        response, sql = measured(api, f"/api/v1/pictures/{pictures[0].pk}/similar?k={k}")
        assert response.status_code == 200, response.content[:300]
        assert len(response.json()["results"]) == k
        similar[k] = len(sql)
        response, sql = measured(api, "/api/v1/search", method="post", data={"token": "x", "k": k}, format="json")
        assert response.status_code == 200, response.content[:300]
        results = response.json()["results"]
        assert len(results) == k
        searched[k] = len(sql)
    assert similar[24] == similar[3], similar
    assert searched[24] == searched[3], searched
    slugs = {p.pk: ShortLink.objects.get(token_sha256=p.token_sha256).slug for p in pictures}
    for r in results:
        assert r["short_url"].endswith(f"/s/{slugs[r['id']]}")
        assert r["album"] is not None and r["taken_down"] is False


# --- 3. the result page of many uploads --------------------------------------------------
def test_jobs_result_page_queries_do_not_grow_with_jobs(client, user, make_picture):
    client.force_login(user)
    counts, jobs = {}, []
    for n in (3, 30):
        while len(jobs) < n:
            i = len(jobs)
            p = make_picture(user, title=f"p{i}")
            now = timezone.now()
            job = EncodeJob.objects.create(owner=user, status=JobStatus.DONE, picture=p, started=now, finished=now)
            ShortLink.objects.create(slug=f"res{i}", token=p.token, owner=user, job=job)
            if i % 2:
                store_vector(p, unit(i))
            jobs.append(job)
        response, sql = measured(client, "/jobs/?ids=" + ",".join(str(j.pk) for j in jobs))
        assert response.status_code == 200
        counts[n] = len(sql)
        page = response.content.decode()
        assert page.count('class="result"') == n
        for i in range(n):
            assert f"/s/res{i}" in page
    assert counts[30] == counts[3], counts


def test_jobs_result_page_of_queued_jobs_queries_do_not_grow(client, user):
    """Queued jobs: where each stands in the queue is read with the jobs, not counted per job."""
    client.force_login(user)
    counts, jobs = {}, []
    for n in (3, 30):
        while len(jobs) < n:
            jobs.append(EncodeJob.objects.create(owner=user, source=b"original", source_bytes=8, sends=1))
        response, sql = measured(client, "/jobs/?ids=" + ",".join(str(j.pk) for j in jobs))
        assert response.status_code == 200
        counts[n] = len(sql)
        page = response.content.decode()
        assert page.count('class="result"') == n
        assert "next in line" in page and f"{n - 1} uploads ahead" in page
    assert counts[30] == counts[3], counts
    api = token_client(user)
    for i in (0, 7, 29):
        queue = api.get(f"/api/v1/jobs/{jobs[i].pk}").json()["queue"]
        assert (queue["ahead"], queue["position"]) == (i, i + 1)


def test_link_slugs_read_with_a_list_are_the_ones_short_link_for_gives(user, make_picture):
    """``with_link_slugs`` (one query for a list) and ``short_link_for`` (one picture) agree:
    permanent before expiring, the newest, never an expired link, none reserved for another
    copy of the picture, and an anonymous picture's shared anonymous link."""
    from datetime import timedelta

    from imagehost import selectors
    from imagehost.models import Picture

    now = timezone.now()
    plain = make_picture(user, title="permanent and expiring")
    links.get_or_create_short_link(plain.token, user)
    links.get_or_create_short_link(plain.token, user, expires_at=now + timedelta(days=1))
    expiring = make_picture(user, title="only expiring and expired")
    links.get_or_create_short_link(expiring.token, user, expires_at=now + timedelta(days=2))
    ShortLink.objects.create(slug="gone-one", token=expiring.token, owner=user, expires_at=now - timedelta(days=1))
    expired = make_picture(user, title="only expired")
    ShortLink.objects.create(slug="gone-two", token=expired.token, owner=user, expires_at=now - timedelta(days=1))
    twin_a = make_picture(user, title="twin a")
    twin_b = make_picture(user, title="twin b", token=twin_a.token)
    job_b = EncodeJob.objects.create(owner=user, status=JobStatus.DONE, picture=twin_b, finished=now)
    ShortLink.objects.create(slug="twin-b-own", token=twin_b.token, owner=user, job=job_b)
    anonymous = make_picture(None, title="anonymous")
    links.get_or_create_short_link(anonymous.token, None)
    links.get_or_create_short_link(anonymous.token, user)  # a user's link of it is not the anonymous one
    bare = make_picture(None, title="anonymous, no link")
    everyone = [plain, expiring, expired, twin_a, twin_b, anonymous, bare]
    listed = {p.pk: p.link_slug for p in selectors.with_link_slugs(Picture.objects.all())}
    for p in everyone:
        link = selectors.short_link_for(p.token, p.owner, picture=p)
        assert listed[p.pk] == (link.slug if link else None), p.title
        assert selectors.link_slug_of(Picture.objects.get(pk=p.pk)) == listed[p.pk], p.title
    assert listed[expired.pk] is None and listed[bare.pk] is None
    assert listed[twin_a.pk] is None and listed[twin_b.pk] == "twin-b-own"
    assert ShortLink.objects.get(slug=listed[anonymous.pk]).owner_id is None


def test_jobs_result_page_shows_near_duplicates_and_pending_embeddings(client, user, make_picture):
    client.force_login(user)
    first = make_picture(user, title="the first one")
    store_vector(first, unit(5))
    now = timezone.now()
    jobs = []
    for i in range(3):
        p = make_picture(user, title=f"copy{i}")
        jobs.append(EncodeJob.objects.create(owner=user, status=JobStatus.DONE, picture=p, started=now, finished=now))
        if i < 2:
            store_vector(p, unit(5))  # a near duplicate of ``first``
    assert PictureEmbedding.objects.get(picture=jobs[0].picture).duplicate_of_id == first.pk
    response, _ = measured(client, "/jobs/?ids=" + ",".join(str(j.pk) for j in jobs))
    page = response.content.decode()
    assert page.count("You already have this picture") == 2
    assert "the first one" in page
    assert 'id="check-again"' in page  # the third job's vector is not stored yet
    api = token_client(user)
    data = api.get(f"/api/v1/jobs/{jobs[0].pk}").json()
    assert data["duplicate"]["picture"] == first.pk and data["similarity_pending"] is False
    assert api.get(f"/api/v1/jobs/{jobs[2].pk}").json()["similarity_pending"] is True


# --- 4. albums list --------------------------------------------------------------------------
def test_api_albums_list_queries_do_not_grow(user, make_picture):
    api = token_client(user)
    counts, albums = {}, []
    for n in (3, 30):
        while len(albums) < n:
            album = library.create_album(user, f"a{len(albums):02d}")
            for j in range(len(albums) % 3):
                make_picture(user, album=album, position=j)
            albums.append(album)
        response, sql = measured(api, "/api/v1/albums?page_size=100")
        assert response.status_code == 200
        assert len(response.json()["results"]) == n
        counts[n] = len(sql)
    assert counts[30] == counts[3], counts


def test_api_albums_list_counts_taken_down_pictures_for_their_owner(user, other_user, make_picture):
    album = library.create_album(user, "mixed", Visibility.PUBLIC)
    make_picture(user, album=album, position=0)
    blocked = make_picture(user, album=album, position=1)
    tokens.block_token(blocked.token_sha256)
    library.create_album(user, "empty")
    listed = {a["title"]: a for a in token_client(user).get("/api/v1/albums").json()["results"]}
    assert listed["mixed"]["picture_count"] == 2  # the owner sees the taken-down picture too
    assert listed["empty"]["picture_count"] == 0
    assert listed["mixed"]["owner"] == user.get_username()
    # Anyone else sees the public album without its taken-down picture.
    assert token_client(other_user).get(f"/api/v1/albums/{album.slug}").json()["picture_count"] == 1
    assert APIClient().get(f"/api/v1/albums/{album.slug}").json()["picture_count"] == 1
