"""The serving path's caches (services/cache.py): changes take effect at once, hits are never lost,
a cache hit costs no database query, and a finished job's first view is a decode-cache hit."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.cache import cache as django_cache
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

import codec
from imagehost.models import EncodeJob, ShortLink
from imagehost.services import cache, hits, jobs, links, rendering, tokens

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["file", "redis"])
def backend(request, settings) -> str:
    """Each correctness test runs on the file cache and on the project's Redis cache (a real
    redis-server), where ``read_link`` reads look-up, flag and hit in one round trip."""
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        server.client().flushall()
        settings.CACHES = {"default": {"BACKEND": "emmmsite.redis_cache.RedisCache", "LOCATION": server.url}}
    return request.param


def _cached_link(client, link) -> None:
    """Serve the link once, so its look-up (and rendering) are cached."""
    assert client.get(f"/s/{link.slug}").status_code == 200
    assert django_cache.get(cache.link_key(link.slug)) is not None


def test_a_cache_hit_costs_no_database_query(client, real_token, backend, django_assert_num_queries):
    link = links.get_or_create_short_link(real_token, None)
    _cached_link(client, link)
    client.get(f"/i/{real_token}")
    with django_assert_num_queries(0):
        assert client.get(f"/s/{link.slug}").status_code == 200
        assert client.get(f"/i/{real_token}").status_code == 200
    assert "sessionid" not in client.cookies


def test_a_block_takes_effect_at_once_and_an_unblock_too(client, real_token, backend):
    link = links.get_or_create_short_link(real_token, None)
    _cached_link(client, link)
    assert client.get(f"/i/{real_token}").status_code == 200
    tokens.block_token(real_token)
    assert client.get(f"/s/{link.slug}").status_code == 410
    assert client.get(f"/i/{real_token}").status_code == 410
    tokens.unblock_token(real_token)
    assert client.get(f"/s/{link.slug}").status_code == 200
    assert client.get(f"/i/{real_token}").status_code == 200


def test_an_expired_link_answers_410_at_once(client, real_token, user, monkeypatch, backend):
    link = links.get_or_create_short_link(real_token, user)  # no expiry yet
    _cached_link(client, link)
    # Setting an expiry through the service replaces the cached look-up...
    links.get_or_create_short_link(real_token, user, slug=link.slug, expires_at=timezone.now() + timedelta(minutes=5))
    assert client.get(f"/s/{link.slug}").status_code == 200
    # ...and the cached expiry is compared with the clock on every request.
    later = timezone.now() + timedelta(minutes=5, seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert client.get(f"/s/{link.slug}").status_code == 410


def test_a_deleted_link_is_404_at_once(client, real_token, user, backend):
    link = links.get_or_create_short_link(real_token, user)
    _cached_link(client, link)
    links.delete_short_link(ShortLink.objects.get(pk=link.pk), owner=user)
    assert client.get(f"/s/{link.slug}").status_code == 404
    assert client.get(f"/s/{link.slug}/").status_code == 404


def test_a_renamed_slug_is_404_at_once_and_the_new_one_works(client, real_token, backend):
    link = links.get_or_create_short_link(real_token, None)
    _cached_link(client, link)
    assert client.get("/s/renamed-link").status_code == 404  # cached as missing
    link.slug = "renamed-link"
    link.save()  # the admin's way
    assert client.get(f"/s/{ShortLink.objects.get(pk=link.pk).slug}").status_code == 200
    assert client.get(f"/s/{link.slug}").status_code == 200


def test_a_link_given_another_token_serves_it_at_once(client, token_pool, backend):
    first, second = token_pool(0).token, token_pool(1).token
    link = links.get_or_create_short_link(first, None)
    _cached_link(client, link)
    assert client.get(f"/s/{link.slug}").content == client.get(f"/i/{first}").content
    row = ShortLink.objects.get(pk=link.pk)
    row.token = second
    row.save()  # the admin's way
    assert client.get(f"/s/{link.slug}").content == client.get(f"/i/{second}").content != client.get(f"/i/{first}").content
    tokens.block_token(second)
    assert client.get(f"/s/{link.slug}").status_code == 410
    assert hits.flush_hits() == 3  # the blocked view is not counted


def test_impossible_slugs_are_404_without_a_lookup(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/s/" + "a" * 65).status_code == 404
        assert client.get("/s/not%20a%20slug").status_code == 404


def _hammer_and_flush(link_pks: list[int], per_thread: int, threads: int) -> int:
    """Count hits from several threads while flushing concurrently; returns hits flushed."""
    stop = threading.Event()
    flushed = 0

    def hit(pk: int) -> None:
        for _ in range(per_thread):
            hits.count_hit(pk)

    workers = [threading.Thread(target=hit, args=(link_pks[i % len(link_pks)],)) for i in range(threads)]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        flushed += hits.flush_hits()
    for w in workers:
        w.join()
    stop.set()
    return flushed + hits.flush_hits()


def test_hits_of_a_deleted_link_are_not_counted_as_flushed(token_pool):
    """They were skipped by the UPDATE but counted in what flush_hits (and its command) reports."""
    kept, gone = (links.get_or_create_short_link(token_pool(i).token, None) for i in range(2))
    for pk in (kept.pk, gone.pk, gone.pk):
        hits.count_hit(pk)
    gone.delete()
    assert hits.flush_hits() == 1 and ShortLink.objects.get(pk=kept.pk).hits == 1


def test_hits_are_not_lost_across_flushes_file_cache(token_pool):
    link_pks = [links.get_or_create_short_link(token_pool(i).token, None).pk for i in range(2)]
    assert _hammer_and_flush(link_pks, per_thread=300, threads=6) == 1800
    assert sorted(ShortLink.objects.values_list("hits", flat=True)) == [900, 900]
    assert hits.flush_hits() == 0


def test_hits_are_not_lost_across_flushes_redis(token_pool, redis_server):
    redis_server.client().flushall()
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                               "LOCATION": redis_server.url}}):
        link_pks = [links.get_or_create_short_link(token_pool(i).token, None).pk for i in range(2)]
        assert _hammer_and_flush(link_pks, per_thread=300, threads=6) == 1800
        assert sorted(ShortLink.objects.values_list("hits", flat=True)) == [900, 900]


def test_flush_command_and_views_count_hits(client, real_token, capsys, backend):
    link = links.get_or_create_short_link(real_token, None)
    for _ in range(3):
        assert client.get(f"/s/{link.slug}").status_code == 200
    client.head(f"/s/{link.slug}")  # HEAD is not a view
    assert ShortLink.objects.get(pk=link.pk).hits == 0  # no UPDATE per request
    call_command("flush_link_hits")
    assert "flushed 3 hits" in capsys.readouterr().out
    assert ShortLink.objects.get(pk=link.pk).hits == 3


def test_a_refused_request_is_not_counted_as_a_view(client, real_token, capsys, backend):
    """A bad ?w= or extension (400, 404) on a short link counted a hit: it was counted first."""
    link = links.get_or_create_short_link(real_token, None)
    assert client.get(f"/s/{link.slug}", {"w": "abc"}).status_code == 400
    assert client.get(f"/s/{link.slug}.gifx").status_code == 404
    assert client.get(f"/s/{link.slug}", {"w": "64"}).status_code == 200
    call_command("flush_link_hits")
    assert "flushed 1 hits" in capsys.readouterr().out


def test_a_finished_job_has_its_first_view_cached(client, png_bytes, monkeypatch):
    job = EncodeJob.objects.create(source=png_bytes(64, 48, seed=7), model_name="")
    claimed = jobs.claim(job.pk)
    result = jobs.encode(claimed)
    jobs.complete(job.pk, result)
    link = ShortLink.objects.get(token_sha256=EncodeJob.objects.get(pk=job.pk).picture.token_sha256)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the first view decoded: the worker did not warm the cache")

    monkeypatch.setattr(codec, "decode", no_decoding)
    r = client.get(f"/s/{link.slug}")
    assert r.status_code == 200 and r["Content-Type"] == "image/webp"
    assert rendering.render_token_image(result.token).from_cache
