"""The per-process index, kept current from the source of truth (the database).

The site gives two callables and gets back an index that is built on first use and
brought up to date before each use:

    live = LiveIndex(model, dim, load_all=all_vectors, load_changes=changes_since)
    live.get().search(vector, k, allowed_ids=...)

- ``load_all() -> (rows, cursor)``: every ``(id, vector)`` of the model, and an opaque
  cursor saying how far that read went (e.g. the highest change-log id).
- ``load_changes(cursor) -> (upserts, deleted_ids, new_cursor)``: what changed since.

With ``max_idle_s``, an index not brought up to date for that long is built again from
``load_all`` (the change log it would read from may have been pruned meanwhile).

No Django here; the callables are where the ORM queries live.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .index import FLAT_MAX, NPROBE, SimilarityIndex

Rows = Iterable[tuple[int, np.ndarray]]


class LiveIndex:
    """A lazily built ``SimilarityIndex`` that applies database changes before each ``get``."""

    def __init__(
        self, model: str, dim: int, *, load_all: Callable[[], tuple[Rows, Any]],
        load_changes: Callable[[Any], tuple[Rows, Iterable[int], Any]], flat_max: int = FLAT_MAX,
        nprobe: int = NPROBE, max_idle_s: float | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model, self.dim = model, dim
        self._load_all, self._load_changes = load_all, load_changes
        self._flat_max, self._nprobe = flat_max, nprobe
        self._max_idle_s, self._clock = max_idle_s, clock
        self._lock = threading.Lock()
        self._index: SimilarityIndex | None = None
        self._cursor: Any = None
        self._updated = 0.0

    def get(self) -> SimilarityIndex:
        """The index, including every change the callables report up to now."""
        with self._lock:
            now = self._clock()
            if self._index is not None and self._max_idle_s is not None and now - self._updated > self._max_idle_s:
                self._index = None  # idle too long: the changes since may be pruned
            self._updated = now
            if self._index is None:
                rows, cursor = self._load_all()
                self._index = SimilarityIndex.build(
                    rows, self.dim, model=self.model, flat_max=self._flat_max, nprobe=self._nprobe
                )
                self._cursor = cursor
                return self._index
            upserts, deleted, cursor = self._load_changes(self._cursor)
            deleted = list(deleted)
            if deleted:
                self._index.remove(deleted)
            pairs = list(upserts)
            if pairs:
                self._index.add([i for i, _ in pairs], np.stack([np.asarray(v) for _, v in pairs]))
            self._cursor = cursor
            return self._index

    def reset(self) -> None:
        """Forget the index; the next ``get`` rebuilds it from ``load_all``."""
        with self._lock:
            self._index, self._cursor = None, None
