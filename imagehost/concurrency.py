"""Caps on work that holds a web thread or a core for long (heavy decodes, upload waiters).

gunicorn runs a few workers with a few threads each; a request that holds a thread for
seconds (a big decode, ``wait=``) must leave the others free for ordinary pages.

- ``slot``: a named ``threading.BoundedSemaphore`` in this process (upload waiters, decodes
  per worker: what they hold is this process's threads).
- ``machine_slot``: shared by every process on the machine (heavy decodes: what they hold is
  cores and memory, and 2 workers each running one kept both cores busy). An exclusive ``flock`` on one
  of ``limit`` files; never waits, so a request that finds every slot taken answers at once
  instead of holding its thread in a queue. The kernel drops the lock when its holder exits,
  even by SIGKILL (a worker killed by gunicorn's timeout mid-decode), so no slot leaks.
"""
from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_lock = threading.Lock()
_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}


def _semaphore(name: str, limit: int) -> threading.BoundedSemaphore:
    with _lock:
        return _slots.setdefault((name, limit), threading.BoundedSemaphore(max(1, limit)))


@contextmanager
def slot(name: str, limit: int, *, timeout: float) -> Iterator[bool]:
    """Hold one of ``limit`` slots called ``name`` in this process; yields False if none freed
    within ``timeout`` s (always, for a limit of 0)."""
    if limit < 1:
        yield False
        return
    semaphore = _semaphore(name, limit)
    got = semaphore.acquire(timeout=timeout) if timeout > 0 else semaphore.acquire(blocking=False)
    try:
        yield got
    finally:
        if got:
            semaphore.release()


def _try_flock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on ``path``, or None if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def machine_slot(name: str, limit: int, directory: Path) -> Iterator[bool]:
    """Try to take one of ``limit`` slots called ``name`` shared by all processes using ``directory``
    (files ``<name>.<i>.lock`` there); yields False at once when every slot is taken. Never waits."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = None
    for i in range(max(1, limit)):
        fd = _try_flock(directory / f"{name}.{i}.lock")
        if fd is not None:
            break
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)  # closing the last descriptor of the open file releases the lock
