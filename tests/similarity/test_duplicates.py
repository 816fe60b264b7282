"""The near-duplicate rule on top of the index."""

from __future__ import annotations

import numpy as np

from imagehost.similarity import NEAR_DUPLICATE_THRESHOLD, SimilarityIndex, find_near_duplicates, is_near_duplicate


def test_threshold_is_a_cosine_between_zero_and_one():
    assert 0 < NEAR_DUPLICATE_THRESHOLD < 1
    assert is_near_duplicate(NEAR_DUPLICATE_THRESHOLD) and not is_near_duplicate(NEAR_DUPLICATE_THRESHOLD - 1e-3)


def test_only_neighbours_above_the_threshold_within_the_allowed_ids():
    rng = np.random.default_rng(0)
    base = rng.standard_normal(16).astype(np.float32)
    base /= np.linalg.norm(base)
    other = rng.standard_normal(16).astype(np.float32)
    other -= (other @ base) * base  # orthogonal: cosine 0 with base
    other /= np.linalg.norm(other)
    close = base + 0.1 * other
    close /= np.linalg.norm(close)
    index = SimilarityIndex.build([(1, base), (2, other), (3, close)], 16)
    assert [i for i, _ in find_near_duplicates(index, base)] == [1, 3]
    assert [i for i, _ in find_near_duplicates(index, base, exclude_ids=[1])] == [3]
    assert find_near_duplicates(index, base, allowed_ids=[2]) == []
