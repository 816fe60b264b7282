"""Synthetic unit vectors with cluster structure, generated in chunks (1M x 1280 floats
is 5 GB, so the benchmark never holds them all at once outside the index).

Each vector is a random "topic" centre plus Gaussian noise, scaled so that its cosine with
its centre is about 0.6 and with an unrelated vector about 0: neighbours exist, as among
real picture embeddings. Uniformly random unit vectors would have none, and would make
IVF's recall meaningless.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

NOISE = 0.037  # per-dimension sigma for dim 1280: cos(vector, centre) ~ 1/sqrt(1 + 1280 s^2) ~ 0.6
CHUNK = 50_000


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def centres(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """``max(10, n // 1000)`` random topic centres for an ``n``-vector collection."""
    rng = np.random.default_rng(seed)
    return _unit(rng.standard_normal((max(10, n // 1000), dim), dtype=np.float32))


def _draw(topic: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    dim = topic.shape[1]
    which = rng.integers(len(topic), size=count)
    noise = rng.standard_normal((count, dim), dtype=np.float32) * np.float32(NOISE * np.sqrt(1280 / dim))
    return _unit(topic[which] + noise)


def chunks(n: int, dim: int, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(ids, vectors)`` chunks covering ids ``0 .. n-1``; the same for the same seed."""
    topic = centres(n, dim, seed)
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        vectors = _draw(topic, count, np.random.default_rng((seed, 0, start)))
        yield np.arange(start, start + count, dtype=np.int64), vectors


def queries(n: int, dim: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` query vectors from the same topics (not in the collection)."""
    return _draw(centres(n, dim, seed), count, np.random.default_rng((seed, 1)))


def sample(n: int, dim: int, count: int, seed: int = 0) -> np.ndarray:
    """A training sample of ``count`` vectors drawn like the collection (not in it)."""
    return _draw(centres(n, dim, seed), count, np.random.default_rng((seed, 2)))
