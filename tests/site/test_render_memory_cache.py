"""Renderings kept in each web process's memory (services/rendering_cache.py), in front of Redis.

A hot image costs no Redis read of its rendering (commands watched with a real redis-server's
MONITOR), the memory stays under its byte bound, and what can change (takedowns, short links)
is still read from Redis on every request: a block answers 410 at once on every worker
process, including processes that hold the rendering in memory.
"""
from __future__ import annotations

import http.client
import threading
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache as django_cache
from django.test import override_settings
from django.utils import timezone

from imagehost.models import ShortLink
from imagehost.services import hits, links, rendering, rendering_cache, tokens

pytestmark = pytest.mark.django_db

MARK = "emmm-test-monitor-end"


def _redis_caches(url: str) -> dict:
    return {"default": {"BACKEND": "emmmsite.redis_cache.RedisCache", "LOCATION": url}}


@pytest.fixture
def redis_cache(redis_server, settings):
    """The project's Redis cache backend on the private redis-server (emptied first)."""
    redis_server.client().flushall()
    settings.CACHES = _redis_caches(redis_server.url)
    yield redis_server
    redis_server.client().flushall()


@contextmanager
def redis_commands(server) -> Iterator[list[list[str]]]:
    """Every command redis-server runs inside the block (its MONITOR): [name, *args] each."""
    seen: list[list[str]] = []
    client = server.client()
    monitor = client.monitor()
    monitor.__enter__()  # MONITOR is on once this returns

    def read() -> None:
        while True:
            command = monitor.next_command()["command"]
            if MARK in command:
                return
            seen.append(command.replace('"', "").split())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        client.echo(MARK)
        reader.join(10)
        monitor.__exit__(None, None, None)
        assert not reader.is_alive(), "MONITOR never saw the end mark"


def _serving(commands: list[list[str]]) -> list[list[str]]:
    """The serving path's commands (not the rate limiter's: ``throttle_*`` keys)."""
    return [c for c in commands if len(c) > 1 and ":emmm:" in c[1]]


def _gets(commands: list[list[str]]) -> list[str]:
    return [c[1] for c in _serving(commands) if c[0].upper() == "GET"]


# --- the LRU itself -----------------------------------------------------------------------
def test_memory_renderings_stay_under_their_byte_bound_least_recently_used_first():
    overhead = rendering_cache.ENTRY_OVERHEAD_BYTES
    memory = rendering_cache.MemoryRenderings(max_bytes=3 * (1000 + overhead))
    for name in "abc":
        memory.put(name, (b"x" * 1000, 1, 1))
    assert memory.get("a") is not None  # "a" is now the most recently used
    memory.put("d", (b"y" * 1000, 1, 1))
    assert memory.get("b") is None  # the least recently used went
    assert [memory.get(k) is not None for k in "acd"] == [True, True, True]
    assert memory.bytes_used == 3 * (1000 + overhead) <= memory.max_bytes
    memory.put("huge", (b"z" * 4000, 1, 1))  # larger than the whole bound: not kept, nothing lost
    assert memory.get("huge") is None and len(memory) == 3
    memory.put("e", (b"w" * 2500, 1, 1))  # one rendering may push out several
    assert memory.bytes_used <= memory.max_bytes and memory.get("e") is not None


def test_the_bound_follows_the_setting_and_zero_keeps_nothing(settings):
    settings.EMMM_RENDER_MEMORY_CACHE_MB = 1
    assert rendering_cache.memory().max_bytes == 1024 * 1024
    settings.EMMM_RENDER_MEMORY_CACHE_MB = 0
    rendering_cache.memory().put("k", (b"x", 1, 1))
    assert rendering_cache.memory().get("k") is None


def test_renderings_kept_in_memory_fill_the_bound_and_no_more(settings, real_token):
    settings.EMMM_RENDER_MEMORY_CACHE_MB = 1
    widths = rendering.RENDER_WIDTHS[:6]
    for w in widths:
        rendering.render_token_image(real_token, "png", w)
    memory = rendering_cache.memory()
    assert 0 < memory.bytes_used <= memory.max_bytes
    assert len(memory) >= 1


# --- against a real redis-server ----------------------------------------------------------
def test_a_hot_image_costs_no_redis_read_of_its_rendering(client, real_token, redis_cache):
    link = links.get_or_create_short_link(real_token, None)
    assert client.get(f"/i/{real_token}").status_code == 200  # decodes: Redis and memory
    key = django_cache.make_key(rendering.rendering_key(tokens.token_identity(real_token), "webp", None))
    assert redis_cache.client().exists(key)  # the rendering is in Redis too: a GET would find it

    with redis_commands(redis_cache) as image_commands:
        r = client.get(f"/i/{real_token}")
    assert r.status_code == 200 and r["Content-Type"] == "image/webp"
    assert not [k for k in _gets(image_commands) if ":img:" in k]
    assert len(_gets(image_commands)) == 1  # the takedown flag, nothing else

    assert client.get(f"/s/{link.slug}").status_code == 200  # its look-up is cached now
    with redis_commands(redis_cache) as link_commands:
        r = client.get(f"/s/{link.slug}")
    assert r.status_code == 200 and r.content == client.get(f"/i/{real_token}").content
    assert not [k for k in _gets(link_commands) if ":img:" in k]
    assert sorted(c[0].upper() for c in _serving(link_commands)) == ["GET", "GET", "HINCRBY"]  # look-up, flag, hit


def test_a_hot_image_and_a_hot_short_link_cost_one_redis_round_trip_each(client, real_token, redis_cache, monkeypatch):
    import redis.connection

    link = links.get_or_create_short_link(real_token, None)
    for path in (f"/i/{real_token}", f"/s/{link.slug}"):
        assert client.get(path).status_code == 200
    sent: list[int] = []
    real_send = redis.connection.AbstractConnection.send_packed_command

    def counting_send(self, command, check_health=True):
        sent.append(1)
        return real_send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting_send)
    monkeypatch.setattr(django_settings, "EMMM_RATELIMIT_ENABLE", False)  # the limiter's own reads aside
    for path in (f"/i/{real_token}", f"/s/{link.slug}"):
        sent.clear()
        assert client.get(path).status_code == 200
        assert len(sent) == 1, path


def test_without_the_memory_copy_each_request_reads_the_rendering(client, real_token, redis_cache, settings):
    settings.EMMM_RENDER_MEMORY_CACHE_MB = 0
    assert client.get(f"/i/{real_token}").status_code == 200
    with redis_commands(redis_cache) as commands:
        assert client.get(f"/i/{real_token}").status_code == 200
    assert len([k for k in _gets(commands) if ":img:" in k]) == 1


def test_a_block_answers_410_with_the_rendering_in_memory_and_hits_are_not_counted(client, real_token, redis_cache):
    link = links.get_or_create_short_link(real_token, None)
    for _ in range(2):
        assert client.get(f"/s/{link.slug}").status_code == 200
        assert client.get(f"/i/{real_token}").status_code == 200
    tokens.block_token(real_token)
    assert client.get(f"/s/{link.slug}").status_code == 410
    assert client.get(f"/i/{real_token}").status_code == 410
    assert hits.flush_hits() == 2  # the blocked view counted no hit
    tokens.unblock_token(real_token)
    assert client.get(f"/s/{link.slug}").status_code == 200


def _get(base_url: str, path: str) -> tuple[int, bytes]:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_blocks_edits_and_expiry_show_at_once_on_two_worker_processes_holding_the_rendering(
    gunicorn_server_factory, redis_server, token_pool
):
    real_token, other_token = token_pool(0).token, token_pool(1).token
    redis_server.client().flushall()
    with override_settings(CACHES=_redis_caches(redis_server.url)):
        link = links.get_or_create_short_link(real_token, None)
        expected = rendering.render_token_image(real_token).content  # in Redis, as the worker leaves it
        servers = [gunicorn_server_factory(REDIS_URL=redis_server.url) for _ in range(2)]  # 1 worker each
        paths = (f"/i/{real_token}", f"/s/{link.slug}")
        for server in servers:
            for path in paths * 2:
                assert _get(server.url, path) == (200, expected)
        with redis_commands(redis_server) as commands:  # both processes now serve it from memory
            for server in servers:
                for path in paths:
                    assert _get(server.url, path)[0] == 200
        assert _gets(commands) and not [k for k in _gets(commands) if ":img:" in k]

        tokens.block_token(real_token)
        for server in servers:
            for path in paths:
                assert _get(server.url, path)[0] == 410, (server.url, path)

        tokens.unblock_token(real_token)
        for server in servers:
            for path in paths:
                assert _get(server.url, path) == (200, expected)

        row = ShortLink.objects.get(pk=link.pk)
        row.token = other_token
        row.save()  # the link now shows another picture: at once, on both
        other = rendering.render_token_image(other_token).content
        for server in servers:
            assert _get(server.url, f"/s/{link.slug}") == (200, other)
        row.expires_at = timezone.now() - timedelta(seconds=1)
        row.save()  # and it has expired
        for server in servers:
            assert _get(server.url, f"/s/{link.slug}")[0] == 410
