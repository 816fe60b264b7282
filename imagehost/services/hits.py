"""Hit counts of short links: never an UPDATE per request.

Each hit is one atomic increment outside the database (Redis ``HINCRBY`` with the Redis cache;
otherwise an append to ``hits.log`` next to the file cache, one ``write`` under a shared
``flock``) and ``flush_hits`` (the beat task ``flush_link_hits``, or ``manage.py
flush_link_hits``) adds them to ``ShortLink.hits`` in batches. ``ShortLink.hits`` therefore
trails the truth by at most one flush interval. With Redis, ``services/cache.py`` counts a
short link's hit in the same round trip as its look-up (``read_link``).
"""
from __future__ import annotations

import fcntl
import os
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, F, Value, When

from ..models import ShortLink

FLUSH_BATCH = 500
HITS_KEY = "emmm:hits"  # a Redis hash: link pk -> hits not yet flushed


def redis_backend(store: Any = None):
    """Django's ``RedisCacheClient`` behind the Redis cache (``store``, default the default
    cache), or None for other backends."""
    backend = getattr(store if store is not None else cache, "_cache", None)
    return backend if hasattr(backend, "get_client") else None


def _redis_client():
    """The raw redis-py client behind the Redis cache, or None for other backends."""
    backend = redis_backend()
    return backend.get_client(write=True) if backend is not None else None


def _hits_dir(create: bool = True) -> Path:
    """The file cache's folder (else VAR_DIR): where ``hits.log`` is appended to."""
    location = settings.CACHES["default"].get("LOCATION")
    path = Path(location) if location and "filebased" in settings.CACHES["default"]["BACKEND"] else Path(settings.VAR_DIR)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def count_hit(link_pk: int) -> None:
    """Count one view of a short link (one atomic increment; no database write)."""
    client = _redis_client()
    if client is not None:
        client.hincrby(cache.make_key(HITS_KEY), str(link_pk), 1)
        return
    log = _hits_dir(create=False) / "hits.log"
    line = f"{link_pk}\n".encode()
    while True:
        try:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except FileNotFoundError:
            _hits_dir(create=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:  # the flusher may have moved the file away between open and lock
                same = os.fstat(fd).st_ino == os.stat(log).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.write(fd, line)
                return
        finally:
            os.close(fd)


def _apply(counts: Counter) -> int:
    """Add counted hits to ShortLink.hits: one UPDATE per batch of links; returns the hits added
    (those of deleted links are dropped, and not counted)."""
    items = [(int(pk), n) for pk, n in counts.items() if n]
    added = 0
    with transaction.atomic():
        for i in range(0, len(items), FLUSH_BATCH):
            batch = items[i : i + FLUSH_BATCH]
            rows = ShortLink.objects.select_for_update().filter(pk__in=[pk for pk, _ in batch])
            present = set(rows.values_list("pk", flat=True))
            rows.update(hits=F("hits") + Case(*[When(pk=pk, then=Value(n)) for pk, n in batch], default=Value(0)))
            added += sum(n for pk, n in batch if pk in present)
    return added


@contextmanager
def _flush_lock() -> Iterator[bool]:
    fd = os.open(_hits_dir() / "hits.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def flush_hits() -> int:
    """Move counted hits into the database; returns how many. Safe to run concurrently."""
    client = _redis_client()
    if client is not None:
        return _flush_redis(client)
    with _flush_lock() as mine:
        if not mine:
            return 0
        log, pending = _hits_dir() / "hits.log", _hits_dir() / "hits.flushing"
        if not pending.exists():  # else: a flush that failed before; apply it first
            try:
                fd = os.open(log, os.O_RDONLY)
            except FileNotFoundError:
                return 0
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # waits for writers that already hold the file
                os.rename(log, pending)
            finally:
                os.close(fd)
        counts = Counter(line for line in pending.read_text().split() if line.isdigit())
        flushed = _apply(counts)
        pending.unlink()
        return flushed


def _flush_redis(client) -> int:
    live, pending = cache.make_key(HITS_KEY), cache.make_key("emmm:hits:flushing")
    if not cache.add("emmm:hits:flush-lock", 1, 60):
        return 0
    try:
        if not client.exists(pending):
            if not client.exists(live):
                return 0
            client.rename(live, pending)  # atomic: later HINCRBYs start a new hash
        counts = Counter({k.decode(): int(v) for k, v in client.hgetall(pending).items()})
        flushed = _apply(counts)
        client.delete(pending)
        return flushed
    finally:
        cache.delete("emmm:hits:flush-lock")
