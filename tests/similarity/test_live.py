"""LiveIndex: built once from the source of truth, then kept current from its changes."""

from __future__ import annotations

import numpy as np

from imagehost.similarity.live import LiveIndex


def unit(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


class FakeTable:
    """A stand-in for the vectors table with a change log (what the site's queries return)."""

    def __init__(self) -> None:
        self.rows: dict[int, np.ndarray] = {}
        self.log: list[tuple[str, int]] = []
        self.full_reads = 0

    def put(self, picture_id: int, vector: np.ndarray) -> None:
        self.rows[picture_id] = vector
        self.log.append(("put", picture_id))

    def delete(self, picture_id: int) -> None:
        del self.rows[picture_id]
        self.log.append(("delete", picture_id))

    def load_all(self):
        self.full_reads += 1
        return list(self.rows.items()), len(self.log)

    def load_changes(self, cursor: int):
        changed = self.log[cursor:]
        deleted = [i for op, i in changed if op == "delete" and i not in self.rows]
        upserts = [(i, self.rows[i]) for i in dict.fromkeys(i for op, i in changed if i in self.rows)]
        return upserts, deleted, len(self.log)


def test_built_once_then_adds_and_deletes_show_in_the_next_search():
    table = FakeTable()
    for i in range(5):
        table.put(i, unit(i))
    live = LiveIndex("m", 8, load_all=table.load_all, load_changes=table.load_changes)
    assert live.get().search(unit(3), 1)[0][0] == 3

    table.put(10, unit(10))
    table.delete(3)
    index = live.get()
    assert index.search(unit(10), 1)[0][0] == 10
    assert 3 not in index and 3 not in {i for i, _ in index.search(unit(3), 5)}
    assert table.full_reads == 1


def test_replaced_vector_and_reset():
    table = FakeTable()
    table.put(1, unit(1))
    live = LiveIndex("m", 8, load_all=table.load_all, load_changes=table.load_changes)
    live.get()
    table.put(1, unit(2))
    assert live.get().search(unit(2), 1)[0][1] > 0.999
    live.reset()
    assert len(live.get()) == 1 and table.full_reads == 2


def test_an_index_idle_longer_than_max_idle_is_built_again():
    """Its change log may have been pruned meanwhile: it reads the whole table instead."""
    table, now = FakeTable(), [0.0]
    table.put(1, unit(1))
    live = LiveIndex("m", 8, load_all=table.load_all, load_changes=table.load_changes, max_idle_s=100, clock=lambda: now[0])
    live.get()
    now[0] = 90.0
    table.put(2, unit(2))
    assert live.get().ids() == {1, 2} and table.full_reads == 1  # used within max_idle_s: changes only
    now[0] = 191.0
    table.put(3, unit(3))
    table.log.clear()  # the log was pruned: only a full read can know about 3
    assert live.get().ids() == {1, 2, 3} and table.full_reads == 2
