"""Cost: embedding time per picture, and query latency / memory of the index at 10k, 100k
and 1M synthetic vectors, exact (flat) and IVF at several ``nprobe`` (with recall@10
against exact search on the same queries). One thread for torch and FAISS: on the 2-core
production machine one request gets about one core.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import faiss
import numpy as np

from .. import embedding
from ..index import SimilarityIndex, cells_for
from . import synthetic
from .variants import kodak_images

DIM = 1280
K = 10
NPROBES = (4, 8, 16, 32, 64)


def rss_bytes() -> int:
    """Resident memory of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def embedding_cost(kodak: Path) -> dict:
    """Model load time and per-picture embedding time (one picture per call)."""
    started = time.perf_counter()
    embedding.load_model()
    load_s = time.perf_counter() - started
    images = list(kodak_images(kodak).values())
    embedding.embed_image(images[0])  # warm-up
    times = []
    for image in images:
        t = time.perf_counter()
        embedding.embed_image(image)
        times.append(time.perf_counter() - t)
    return {"load_s": round(load_s, 2), "images": len(images), "size": f"{images[0].width}x{images[0].height}",
            "mean_ms": round(1000 * float(np.mean(times)), 1), **percentiles(times)}


def _timed_search(index: SimilarityIndex, queries: np.ndarray, **kwargs) -> tuple[dict, list[list[int]]]:
    times, labels = [], []
    for q in queries:
        t = time.perf_counter()
        hits = index.search(q, K, **kwargs)
        times.append(time.perf_counter() - t)
        labels.append([i for i, _ in hits])
    return percentiles(times), labels


def _recall(got: list[list[int]], truth: list[list[int]]) -> float:
    return round(float(np.mean([len(set(g) & set(t)) / len(t) for g, t in zip(got, truth)])), 3)


def _fill(index: SimilarityIndex, n: int) -> float:
    started = time.perf_counter()
    for ids, vectors in synthetic.chunks(n, DIM):
        index.add(ids.tolist(), vectors)
    return time.perf_counter() - started


def index_cost(n: int, query_count: int) -> dict:
    """Flat then IVF over ``n`` synthetic vectors: build time, memory, latency, recall."""
    faiss.omp_set_num_threads(1)
    queries = synthetic.queries(n, DIM, query_count)
    rng = np.random.default_rng(1)
    mine = np.sort(rng.choice(n, size=min(1000, n), replace=False))  # one user's pictures
    public = np.flatnonzero(rng.random(n) < 0.5)  # half of all pictures
    out: dict = {"n": n, "queries": query_count}

    gc.collect()
    before = rss_bytes()
    flat = SimilarityIndex(DIM, flat_max=n + 1)
    build_s = _fill(flat, n)
    stats, truth = _timed_search(flat, queries)
    out["flat"] = {"build_s": round(build_s, 1), "rss_mb": round((rss_bytes() - before) / 2**20),
                   "bytes_mb": round(n * (DIM * 4 + 8) / 2**20), **stats}
    out["flat"]["mine_1k"], truth_mine = _timed_search(flat, queries[:50], allowed_ids=mine)
    out["flat"]["public_50pct"], truth_public = _timed_search(flat, queries[:50], allowed_ids=public)
    del flat
    gc.collect()

    before = rss_bytes()
    nlist = cells_for(n)
    started = time.perf_counter()
    ivf = SimilarityIndex.empty_ivf(DIM, synthetic.sample(n, DIM, nlist * 64), nlist=nlist)
    train_s = time.perf_counter() - started
    add_s = _fill(ivf, n)
    out["ivf"] = {"nlist": nlist, "train_s": round(train_s, 1), "add_s": round(add_s, 1),
                  "rss_mb": round((rss_bytes() - before) / 2**20),
                  "bytes_mb": round((n * (DIM * 4 + 8) + nlist * DIM * 4) / 2**20), "nprobe": {}}
    for nprobe in NPROBES:
        ivf.nprobe = nprobe
        stats, labels = _timed_search(ivf, queries)
        out["ivf"]["nprobe"][nprobe] = {**stats, "recall_at_10": _recall(labels, truth)}
    ivf.nprobe = 16
    stats, labels = _timed_search(ivf, queries[:50], allowed_ids=mine)
    out["ivf"]["mine_1k"] = {**stats, "recall_at_10": _recall(labels, truth_mine)}
    stats, labels = _timed_search(ivf, queries[:50], allowed_ids=public)
    out["ivf"]["public_50pct"] = {**stats, "recall_at_10": _recall(labels, truth_public)}
    del ivf
    gc.collect()
    return out
