"""Near-duplicates: "you already have this picture".

``NEAR_DUPLICATE_THRESHOLD`` was measured by ``python -m imagehost.similarity.bench``
(docs/benchmarks-similarity.md): the cosine similarity between a picture's token image
and an edited copy of it (cropped to 70%, halved, JPEG q20, +30% brightness, mirrored,
each also through the token codec) versus the similarity between different pictures.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from .index import SimilarityIndex

NEAR_DUPLICATE_THRESHOLD = 0.75


def is_near_duplicate(score: float, threshold: float = NEAR_DUPLICATE_THRESHOLD) -> bool:
    """Whether a cosine similarity says "the same picture"."""
    return score >= threshold


def find_near_duplicates(
    index: SimilarityIndex, vector: np.ndarray, *, allowed_ids: Collection[int] | np.ndarray | None = None,
    exclude_ids: Collection[int] | np.ndarray = (), k: int = 5, threshold: float = NEAR_DUPLICATE_THRESHOLD,
) -> list[tuple[int, float]]:
    """Up to ``k`` ``(id, cosine)`` pairs at or above ``threshold``, best first."""
    hits = index.search(vector, k, allowed_ids=allowed_ids, exclude_ids=exclude_ids)
    return [(i, s) for i, s in hits if is_near_duplicate(s, threshold)]
