"""Where decoded renderings are kept: this process's memory (a small LRU), then the shared cache.

A rendering's key names immutable content (the sha256 of the token's canonical bytes, the
format, the width: ``rendering.rendering_key``), so a copy kept in memory can never be stale
and needs no invalidation. What can change, whether a token is taken down and what a short
link points to, is never kept here: those are read from the shared cache on every request
(``services/cache.py``), so a block answers 410 at once on every worker.

The memory copy saves a hot image its read from the shared cache (with Redis, a 24 KB value
over the socket and unpickled per request). It is bounded in bytes per process by
``EMMM_RENDER_MEMORY_CACHE_MB`` (0 turns it off); a rendering larger than the bound is not kept.
"""
from __future__ import annotations

import threading

from cachetools import LRUCache
from django.conf import settings
from django.core.cache import cache

#: What a rendering costs besides its bytes (the key, the tuple, two ints): counted in the bound.
ENTRY_OVERHEAD_BYTES = 256
MIB = 1024 * 1024

Rendering = tuple[bytes, int, int]  # (content, width, height): what the shared cache stores too


class MemoryRenderings:
    """A thread-safe LRU of renderings whose size (content bytes + overhead) stays under ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lru: LRUCache = LRUCache(maxsize=max(1, max_bytes), getsizeof=_entry_bytes)
        self._lock = threading.Lock()

    def get(self, key: str) -> Rendering | None:
        with self._lock:
            return self._lru.get(key)

    def put(self, key: str, value: Rendering) -> None:
        if _entry_bytes(value) > self.max_bytes:
            return
        with self._lock:
            self._lru[key] = value

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()

    @property
    def bytes_used(self) -> int:
        return int(self._lru.currsize)

    def __len__(self) -> int:
        return len(self._lru)


def _entry_bytes(value: Rendering) -> int:
    return len(value[0]) + ENTRY_OVERHEAD_BYTES


_memory = MemoryRenderings(0)


def memory() -> MemoryRenderings:
    """This process's renderings (rebuilt empty when ``EMMM_RENDER_MEMORY_CACHE_MB`` changes)."""
    global _memory
    max_bytes = settings.EMMM_RENDER_MEMORY_CACHE_MB * MIB
    if _memory.max_bytes != max_bytes:
        _memory = MemoryRenderings(max_bytes)
    return _memory


def get_rendering(key: str) -> Rendering | None:
    """A rendering from memory, else from the shared cache (then kept in memory), else None."""
    local = memory()
    value = local.get(key)
    if value is None:
        value = cache.get(key)
        if value is not None:
            local.put(key, value)
    return value


def put_rendering(key: str, value: Rendering) -> None:
    """Store a new rendering in the shared cache and in this process's memory."""
    cache.set(key, value)
    memory().put(key, value)
