"""Per-process caps on work that holds a web thread for long (heavy decodes, upload waiters).

gunicorn runs a few workers with a few threads each; a request that holds a thread for
seconds (a big decode, ``wait=``) must leave the others free for ordinary pages. Each cap
is a named ``threading.BoundedSemaphore`` in this process, sized on first use.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}


def _semaphore(name: str, limit: int) -> threading.BoundedSemaphore:
    with _lock:
        return _slots.setdefault((name, limit), threading.BoundedSemaphore(max(1, limit)))


@contextmanager
def slot(name: str, limit: int, *, timeout: float) -> Iterator[bool]:
    """Hold one of ``limit`` slots called ``name`` in this process; yields False if none freed within ``timeout`` s."""
    semaphore = _semaphore(name, limit)
    got = semaphore.acquire(timeout=timeout) if timeout > 0 else semaphore.acquire(blocking=False)
    try:
        yield got
    finally:
        if got:
            semaphore.release()
