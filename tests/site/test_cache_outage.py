"""The cache (Redis in production) unreachable: a clear 503 with Retry-After on both surfaces,
never a 500 or a hang."""
from __future__ import annotations

import socket

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def unreachable_cache(settings):
    """The project's Redis cache backend pointed at a port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: connections are refused
    settings.CACHES = {"default": {"BACKEND": "emmmsite.redis_cache.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0"}}


def test_site_pages_that_need_the_cache_answer_503_with_retry_after(client, real_token, unreachable_cache):
    for url in (f"/i/{real_token}", "/i/!bad", "/s/some-link"):
        r = client.get(url)
        assert r.status_code == 503, url
        assert r["Retry-After"] == "5"
        assert "try again in a few seconds" in r.content.decode()
    assert client.get("/").status_code == 200  # pages that do not touch the cache still work
    r = client.get(f"/i/{real_token}", HTTP_ACCEPT="application/json")
    assert r.status_code == 503 and r.json()["error"]["code"] == "cache_unavailable"


def test_api_answers_503_with_its_error_shape(client, real_token, unreachable_cache):
    r = client.post("/api/v1/decode", {"token": real_token}, content_type="application/json")
    assert r.status_code == 503 and r["Retry-After"] == "5"
    assert r.json()["error"]["code"] == "cache_unavailable"


def test_a_cache_that_never_answers_costs_a_request_the_timeout_not_a_hang(client, settings):
    """A Redis that accepts connections and never replies (a hung server, a black-holed route)."""
    import time

    from emmmsite.redis_cache import cache_settings

    client.get("/s/some-link")  # the process's first request imports modules: not part of the timing
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes the handshakes; nobody ever reads or writes
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings.CACHES = {"default": cache_settings(url, timeout_s=0.5, default_ttl_s=60)}
        started = time.monotonic()
        r = client.get("/s/some-link")
        elapsed = time.monotonic() - started
    assert r.status_code == 503 and r["Retry-After"] == "5"
    assert elapsed < 5  # one read's timeout (plus a retry or two), not a hang
