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

Nothing here is kept in a process's memory as an answer: every request reads the look-up and
the takedown flag from the shared cache, so a change shows at once on every worker. (Renderings,
which never change, are also kept in memory: ``services/rendering_cache.py``; ``read_link``
remembers recent look-ups only to know which keys to ask for, and checks them.)

Hit counts: ``services/hits.py``. With Redis, ``read_link`` reads a link's look-up and its
token's takedown flag and counts the hit in one round trip (a pipeline).
"""
from __future__ import annotations

import logging
import threading
from typing import NamedTuple

from cachetools import LRUCache
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save

from ..models import BlockedToken, ShortLink
from .hits import HITS_KEY, count_hit, redis_backend

log = logging.getLogger(__name__)

LOOKUP_TTL_S = 300
MISSING_TTL_S = 60
MISSING = "missing"
RECENT_LINKS = 10_000  # slugs per process whose look-up guides read_link's single round trip


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
    backend = redis_backend()
    if count_hit_of is not None and backend is not None:
        with backend.get_client(write=True).pipeline(transaction=False) as pipe:
            pipe.get(cache.make_key(key))
            pipe.hincrby(cache.make_key(HITS_KEY), str(count_hit_of), 1)
            raw, _ = pipe.execute()
        blocked = None if raw is None else backend._serializer.loads(raw)  # as cache.get would
    else:
        blocked = cache.get(key)
    if blocked is None:
        blocked = _blocked_from_database(sha)
    if count_hit_of is not None:
        if backend is None and not blocked:
            count_hit(count_hit_of)
        elif backend is not None and blocked:
            backend.get_client(write=True).hincrby(cache.make_key(HITS_KEY), str(count_hit_of), -1)
    return blocked


class LinkRead(NamedTuple):
    """One request's read of a short link: its look-up and its token's takedown flag."""

    link: CachedLink | None  # None: no such link
    blocked: bool | None  # None: not read (no link, or one reserved for an upload: no token yet)


def read_link(slug: str, now: float, *, count_hit: bool) -> LinkRead:
    """The look-up of ``slug`` and, for a link with a token, its takedown flag; counts the hit
    when ``count_hit`` and the link is live at ``now`` (epoch seconds) and not blocked.

    With Redis this is one round trip once this process has served the slug: ``_recent_links``
    only guesses which flag and hit counter to ask for beside the look-up. Every answer is read
    from Redis in that round trip, and the flag and hit are used only when the look-up read
    equals the guess; otherwise the flag is read again and the hit taken back. Nothing this
    process remembers can outlive a block, an expiry or an edit.
    """
    backend = redis_backend()
    guess = _recent_links.get(slug) if backend is not None else None
    if guess is None:
        return _read_link_step_by_step(slug, now, count_hit)
    counting = count_hit and _live(guess, now)
    hits = cache.make_key(HITS_KEY)
    with backend.get_client(write=True).pipeline(transaction=False) as pipe:
        pipe.get(cache.make_key(link_key(slug)))
        pipe.get(cache.make_key(blocked_key(guess.token_sha256)))
        if counting:
            pipe.hincrby(hits, str(guess.pk), 1)
        raw_link, raw_blocked, *_ = pipe.execute()
    loads = backend._serializer.loads  # as cache.get would
    if raw_link is None or loads(raw_link) != tuple(guess):  # changed, gone, or evicted
        if counting:
            backend.get_client(write=True).hincrby(hits, str(guess.pk), -1)
        return _read_link_step_by_step(slug, now, count_hit)
    blocked = _blocked_from_database(guess.token_sha256) if raw_blocked is None else loads(raw_blocked)
    if counting and blocked:
        backend.get_client(write=True).hincrby(hits, str(guess.pk), -1)
    return LinkRead(guess, blocked)


def _read_link_step_by_step(slug: str, now: float, count_hit: bool) -> LinkRead:
    link = lookup_link(slug)
    if link is None or not link.token_sha256:
        _recent_links.forget(slug)
        return LinkRead(link, None)
    _recent_links.remember(slug, link)
    counting = count_hit and _live(link, now)
    blocked = is_blocked(link.token_sha256, count_hit_of=link.pk if counting else None)
    return LinkRead(link, blocked)


def _live(link: CachedLink, now: float) -> bool:
    return link.expires_at is None or link.expires_at > now


class _RecentLinks:
    """Slugs this process served lately and their last look-up: a guess, never an answer."""

    def __init__(self, size: int) -> None:
        self._lru: LRUCache = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def get(self, slug: str) -> CachedLink | None:
        with self._lock:
            return self._lru.get(slug)

    def remember(self, slug: str, link: CachedLink) -> None:
        with self._lock:
            self._lru[slug] = link

    def forget(self, slug: str) -> None:
        with self._lock:
            self._lru.pop(slug, None)

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()


_recent_links = _RecentLinks(RECENT_LINKS)


def forget_recent_links() -> None:
    """Drop this process's guesses (``read_link`` then reads step by step once per slug)."""
    _recent_links.clear()


def _blocked_from_database(sha: str) -> bool:
    blocked = BlockedToken.objects.filter(token_sha256=sha).exists()
    cache.set(blocked_key(sha), blocked, LOOKUP_TTL_S)
    return blocked


def forget_link(slug: str) -> None:
    """Drop a cached short-link look-up (the next request reads the database)."""
    cache.delete(link_key(slug))


def _forget(key: str) -> None:
    """Drop a cached look-up now (a failure rolls the change back) and again once the change is
    committed (a reader may have cached the old row in between); the change is made by then,
    so a failure of the second is logged, not raised."""
    cache.delete(key)
    transaction.on_commit(lambda: _forget_after_commit(key))


def _forget_after_commit(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:  # noqa: BLE001 (committed: the entry expires with its timeout)
        log.warning("could not drop a cached look-up after a committed change; it lasts until it expires", exc_info=True)


# --- invalidation (signals: services, the admin and cascades all pass through them) ---------
def _link_pre_save(sender, instance: ShortLink, **kwargs) -> None:
    if instance.pk:  # a changed slug: forget the old one too
        old = ShortLink.objects.filter(pk=instance.pk).values_list("slug", flat=True).first()
        if old and old != instance.slug:
            _forget(link_key(old))


def _link_changed(sender, instance: ShortLink, **kwargs) -> None:
    _forget(link_key(instance.slug))


def _block_pre_save(sender, instance: BlockedToken, **kwargs) -> None:
    if instance.pk:  # a block moved to another token: the old one is no longer blocked
        old = BlockedToken.objects.filter(pk=instance.pk).values_list("token_sha256", flat=True).first()
        if old and old != instance.token_sha256:
            _forget(blocked_key(old))


def _block_changed(sender, instance: BlockedToken, **kwargs) -> None:
    _forget(blocked_key(instance.token_sha256))


def connect_signals() -> None:
    """Called once from ``ImagehostConfig.ready``."""
    pre_save.connect(_link_pre_save, sender=ShortLink, dispatch_uid="emmm-link-pre-save")
    post_save.connect(_link_changed, sender=ShortLink, dispatch_uid="emmm-link-saved")
    post_delete.connect(_link_changed, sender=ShortLink, dispatch_uid="emmm-link-deleted")
    pre_save.connect(_block_pre_save, sender=BlockedToken, dispatch_uid="emmm-block-pre-save")
    post_save.connect(_block_changed, sender=BlockedToken, dispatch_uid="emmm-block-saved")
    post_delete.connect(_block_changed, sender=BlockedToken, dispatch_uid="emmm-block-deleted")
