"""Near-duplicate retrieval (recall@1, mean average precision), the near-duplicate
threshold, and the semantic-neighbour contact sheet, all on the Kodak set."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..embedding import embed_images
from ..index import SimilarityIndex
from .dataset import NearDuplicateSet

SHEET_MAX_BYTES = 290_000


def retrieval(data: NearDuplicateSet) -> tuple[dict, np.ndarray]:
    """Query the index of token-decoded originals with every copy; returns (figures, index vectors)."""
    indexed = embed_images(data.indexed)
    index = SimilarityIndex.build(enumerate(indexed), indexed.shape[1])
    queries = embed_images([img for _, _, img in data.queries])
    per_variant: dict[str, list[tuple[int, float, str]]] = {}
    positives, negatives = [], []
    for (truth, variant, _), q in zip(data.queries, queries):
        ranked = [i for i, _ in index.search(q, len(data.names))]
        rank = ranked.index(truth) + 1
        per_variant.setdefault(variant, []).append((rank, float(q @ indexed[truth]), data.names[truth]))
        positives.append(float(q @ indexed[truth]))
        negatives += [float(q @ indexed[j]) for j in range(len(data.names)) if j != truth]
    between = indexed @ indexed.T
    distinct = between[np.triu_indices(len(indexed), 1)].tolist()
    ranks = [r for rows in per_variant.values() for r, _, _ in rows]
    figures = {
        "indexed": len(data.names),
        "queries": len(data.queries),
        "recall_at_1": round(float(np.mean([r == 1 for r in ranks])), 4),
        "mean_average_precision": round(float(np.mean([1 / r for r in ranks])), 4),
        "per_variant": {
            v: {
                "recall_at_1": round(float(np.mean([r == 1 for r, _, _ in rows])), 3),
                "map": round(float(np.mean([1 / r for r, _, _ in rows])), 3),
                "cos_min": round(min(s for _, s, _ in rows), 3),
                "cos_median": round(float(np.median([s for _, s, _ in rows])), 3),
                "misses": [f"{name} (rank {r})" for r, _, name in rows if r != 1],
            }
            for v, rows in per_variant.items()
        },
        "threshold": threshold_figures(positives, negatives, distinct),
    }
    return figures, indexed


CANDIDATES = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.50 .. 0.95
MIN_CAUGHT = 0.99


def threshold_figures(positives: list[float], negatives: list[float], distinct: list[float]) -> dict:
    """Cosine distributions of true near-duplicates vs different pictures, and the threshold:
    the strictest candidate that still catches >= 99% of the copies with no false alarm
    (strict, because a false "you already have this picture" is worse than a missed one)."""
    pos, neg = np.array(positives), np.array(negatives + distinct)
    out: dict = {
        "positives": len(pos),
        "negatives": len(neg),
        "positive_percentiles": {p: round(float(np.percentile(pos, p)), 3) for p in (0, 5, 25, 50)},
        "negative_percentiles": {p: round(float(np.percentile(neg, p)), 3) for p in (50, 95, 99, 100)},
        "threshold": None,
    }
    for t in CANDIDATES:
        caught, false_alarms = round(float((pos >= t).mean()), 3), int((neg >= t).sum())
        out[f"at_{t:.2f}"] = {"caught": caught, "false_alarms": false_alarms}
        if caught >= MIN_CAUGHT and false_alarms == 0:
            out.update(threshold=t, caught=caught, false_alarms=false_alarms)
    return out


def neighbours(vectors: np.ndarray, count: int = 3) -> list[list[tuple[int, float]]]:
    """For each picture its ``count`` nearest others, through the index."""
    index = SimilarityIndex.build(enumerate(vectors), vectors.shape[1])
    return [index.search(v, count, exclude_ids=[i]) for i, v in enumerate(vectors)]


def contact_sheet(data: NearDuplicateSet, near: list[list[tuple[int, float]]], path: Path) -> int:
    """A PNG: each picture, then its neighbours with their cosine; returns its size in bytes."""
    thumb_w = 120
    while True:
        png = _render_sheet(data, near, thumb_w)
        if len(png) <= SHEET_MAX_BYTES or thumb_w <= 48:
            break
        thumb_w -= 8
    path.write_bytes(png)
    return len(png)


def _render_sheet(data: NearDuplicateSet, near: list[list[tuple[int, float]]], thumb_w: int) -> bytes:
    thumb_h = thumb_w * 2 // 3
    label_h, pad, groups = 12, 4, 2
    per_group = len(data.names) // groups + len(data.names) % groups
    cols = 1 + len(near[0])
    cell_w, cell_h = thumb_w + pad, thumb_h + label_h + pad
    group_w = cols * cell_w + 3 * pad
    sheet = Image.new("RGB", (groups * group_w, per_group * cell_h + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(data.names):
        gx, row = (i // per_group) * group_w, i % per_group
        entries = [(i, name, None)] + [(j, data.names[j], s) for j, s in near[i]]
        for c, (j, label, score) in enumerate(entries):
            x = gx + pad + c * cell_w + (2 * pad if c else 0)
            y = pad + row * cell_h
            thumb = data.indexed[j].copy()
            thumb.thumbnail((thumb_w, thumb_h))
            sheet.paste(thumb, (x, y))
            draw.text((x, y + thumb_h + 1), label if score is None else f"{label} {score:.2f}", fill="black")
    buf = io.BytesIO()
    sheet.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
    return buf.getvalue()
