"""The benchmark's own logic (the figures themselves come from running it, not from tests)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from imagehost.similarity.bench import synthetic
from imagehost.similarity.bench.retrieval import threshold_figures
from imagehost.similarity.bench.variants import EDITS


def test_edits_make_the_copies_the_issue_asks_for():
    image = Image.new("RGB", (100, 60), (100, 100, 100))
    image.putpixel((0, 0), (255, 0, 0))
    out = {name: edit(image) for name, edit in EDITS.items()}
    assert out["crop70"].size == (70, 42)
    assert out["down50"].size == (50, 30)
    assert out["mirror"].getpixel((99, 0)) == (255, 0, 0)
    assert out["bright30"].getpixel((50, 30)) == (130, 130, 130)
    assert out["jpeg20"].size == (100, 60)


def test_threshold_is_the_strictest_that_catches_99_percent_without_false_alarms():
    t = threshold_figures([0.9, 0.95, 0.97, 0.99], [0.2, 0.3, 0.5], [0.4])
    assert t["threshold"] == 0.9 and t["caught"] == 1.0 and t["false_alarms"] == 0
    # one copy in 101 may be missed; 0.85 would miss 101 of them
    t = threshold_figures([0.82] * 100 + [0.7], [0.72], [])
    assert t["threshold"] == 0.8 and t["caught"] == 0.99


def test_no_threshold_when_copies_and_different_pictures_overlap():
    t = threshold_figures([0.6, 0.7, 0.8], [0.9], [])
    assert t["threshold"] is None


def test_synthetic_vectors_are_unit_length_repeatable_and_clustered():
    (ids_a, a), = list(synthetic.chunks(500, 1280))
    (ids_b, b), = list(synthetic.chunks(500, 1280))
    assert np.array_equal(a, b) and np.array_equal(ids_a, np.arange(500))
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    nearest = np.sort(a @ a.T, axis=1)[:, -2]
    assert np.median(nearest) > 0.25  # neighbours exist; among random 1280-d unit vectors it is ~0.1
