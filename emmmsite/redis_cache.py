"""Django's Redis cache backend, with one redis-py client per connection pool instead of one per call.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache operation,
and each one fills a dict of ~160 response callbacks: measured in-process (cProfile, a cached
``/s/<slug>`` making 4 cache calls), that construction was the largest single Python cost of a
cache hit. A ``redis.Redis`` only holds its pool and those callbacks and is safe to share
between threads (each command takes a connection from the pool), so it is built once per pool.
Keys, values and their serialisation are Django's, unchanged.
"""
from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class SharedClientRedisCacheClient(RedisCacheClient):
    """``RedisCacheClient`` that keeps the ``redis.Redis`` of each connection pool."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}
        self._clients_lock = threading.Lock()

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            with self._clients_lock:
                client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(DjangoRedisCache):
    """The project's ``CACHES`` backend when ``REDIS_URL`` is set."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient


def cache_settings(url: str, *, timeout_s: float, default_ttl_s: int) -> dict:
    """``CACHES["default"]`` for Redis at ``url``: connecting and every read time out after
    ``timeout_s``, so a Redis that hangs costs a request that long (then a 503), never a hang."""
    return {
        "BACKEND": "emmmsite.redis_cache.RedisCache",  # Django's, one client per pool
        "LOCATION": url,
        "TIMEOUT": default_ttl_s,
        "OPTIONS": {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s},
    }
