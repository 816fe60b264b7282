"""The serving path's caches: short-link look-ups, takedowns and hit counts (issue 8, throughput).

What is cached (the Django default cache: files by default, Redis in production):

========================  ===============================================  =========================
key                       value                                            invalidated by
========================  ===============================================  =========================
``emmm:link:v2:<slug>``   ``(pk, sha256, expires_at epoch | None)``         any save/delete of a
                          or ``MISSING`` for an unknown slug                ShortLink (signals below)
``emmm:blocked:v1:<sha>`` ``True`` / ``False``                              any save/delete of a
                                                                           BlockedToken
========================  ===============================================  =========================

Invalidation deletes the key at once and again when the transaction commits (a reader that
filled the key from the old row in between is then overwritten). ``LOOKUP_TTL_S`` bounds
any remaining race. Expiry is checked against the clock on every request, so an expired
link answers 410 the moment it expires, cached or not.

Hit counts never cost an UPDATE per request: each hit is one atomic increment outside the
database (Redis ``HINCRBY`` with the Redis cache; otherwise an append to ``hits.log`` next
to the file cache, one ``write`` under a shared ``flock``) and ``flush_hits`` (the beat task
``flush_link_hits``, or ``manage.py flush_link_hits``) adds them to ``ShortLink.hits`` in
batches. ``ShortLink.hits`` therefore trails the truth by at most one flush interval.
"""
from __future__ import annotations

import fcntl
import os
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.db.models.signals import post_delete, post_save, pre_save

from ..models import BlockedToken, ShortLink

LOOKUP_TTL_S = 300
MISSING_TTL_S = 60
MISSING = "missing"
FLUSH_BATCH = 500


class CachedLink(NamedTuple):
    """What serving a short link from the decode cache needs. Stored as a plain tuple, without
    the token (up to EMMM_MAX_TOKEN_CHARS): every hit unpickles it."""

    pk: int
    token_sha256: str
    expires_at: float | None  # epoch seconds


def link_key(slug: str) -> str:
    return f"emmm:link:v2:{slug}"


def blocked_key(sha: str) -> str:
    return f"emmm:blocked:v1:{sha}"


def lookup_link(slug: str) -> CachedLink | None:
    """The short link with this slug (cached), or None when there is none."""
    key = link_key(slug)
    entry = cache.get(key)
    if entry is None:
        row = ShortLink.objects.filter(slug=slug).values_list("pk", "token_sha256", "expires_at").first()
        if row is None:
            cache.set(key, MISSING, MISSING_TTL_S)
            return None
        entry = (row[0], row[1], row[2].timestamp() if row[2] else None)
        cache.set(key, entry, LOOKUP_TTL_S)
    return None if entry == MISSING else CachedLink(*entry)


def is_blocked(sha: str, *, count_hit_of: int | None = None) -> bool:
    """Whether the token with this sha256 has been taken down (cached; a block shows at once).

    ``count_hit_of``: also count a view of that short link when the token is not blocked; with
    Redis the check and the increment are one round trip (a pipeline; a blocked token's
    increment is taken back at once).
    """
    key = blocked_key(sha)
    backend = _redis_backend()
    if count_hit_of is not None and backend is not None:
        with backend.get_client(write=True).pipeline(transaction=False) as pipe:
            pipe.get(cache.make_key(key))
            pipe.hincrby(cache.make_key("emmm:hits"), str(count_hit_of), 1)
            raw, _ = pipe.execute()
        blocked = None if raw is None else backend._serializer.loads(raw)  # as cache.get would
    else:
        blocked = cache.get(key)
    if blocked is None:
        blocked = BlockedToken.objects.filter(token_sha256=sha).exists()
        cache.set(key, blocked, LOOKUP_TTL_S)
    if count_hit_of is not None:
        if backend is None and not blocked:
            count_hit(count_hit_of)
        elif backend is not None and blocked:
            backend.get_client(write=True).hincrby(cache.make_key("emmm:hits"), str(count_hit_of), -1)
    return blocked


def forget_link(slug: str) -> None:
    """Drop a cached short-link look-up (the next request reads the database)."""
    cache.delete(link_key(slug))


def _forget(key: str) -> None:
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


# --- invalidation (signals: services, the admin and cascades all pass through them) ---------
def _link_pre_save(sender, instance: ShortLink, **kwargs) -> None:
    if instance.pk:  # a changed slug: forget the old one too
        old = ShortLink.objects.filter(pk=instance.pk).values_list("slug", flat=True).first()
        if old and old != instance.slug:
            _forget(link_key(old))


def _link_changed(sender, instance: ShortLink, **kwargs) -> None:
    _forget(link_key(instance.slug))


def _block_changed(sender, instance: BlockedToken, **kwargs) -> None:
    _forget(blocked_key(instance.token_sha256))


def connect_signals() -> None:
    """Called once from ``ImagehostConfig.ready``."""
    pre_save.connect(_link_pre_save, sender=ShortLink, dispatch_uid="emmm-link-pre-save")
    post_save.connect(_link_changed, sender=ShortLink, dispatch_uid="emmm-link-saved")
    post_delete.connect(_link_changed, sender=ShortLink, dispatch_uid="emmm-link-deleted")
    post_save.connect(_block_changed, sender=BlockedToken, dispatch_uid="emmm-block-saved")
    post_delete.connect(_block_changed, sender=BlockedToken, dispatch_uid="emmm-block-deleted")


# --- hit counts ---------------------------------------------------------------------------
def _redis_backend():
    """Django's ``RedisCacheClient`` behind the Redis cache, or None for other backends."""
    backend = getattr(cache, "_cache", None)
    return backend if hasattr(backend, "get_client") else None


def _redis_client():
    """The raw redis-py client behind the Redis cache, or None for other backends."""
    backend = _redis_backend()
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
        client.hincrby(cache.make_key("emmm:hits"), str(link_pk), 1)
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
    """Add counted hits to ShortLink.hits: one UPDATE per batch of links (deleted links are skipped)."""
    items = [(int(pk), n) for pk, n in counts.items() if n]
    with transaction.atomic():
        for i in range(0, len(items), FLUSH_BATCH):
            batch = items[i : i + FLUSH_BATCH]
            ShortLink.objects.filter(pk__in=[pk for pk, _ in batch]).update(
                hits=F("hits") + Case(*[When(pk=pk, then=Value(n)) for pk, n in batch], default=Value(0))
            )
    return sum(n for _, n in items)


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
    live, pending = cache.make_key("emmm:hits"), cache.make_key("emmm:hits:flushing")
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
