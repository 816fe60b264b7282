"""Vector blobs for the database: round trips and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from imagehost.similarity import InvalidVector, blob_to_vector, vector_to_blob


def unit(dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_float16_round_trip_keeps_the_direction():
    v = unit(1280)
    blob = vector_to_blob(v)
    assert len(blob) == 1280 * 2
    back = blob_to_vector(blob, 1280)
    assert back.dtype == np.float32 and back.shape == (1280,)
    assert float(v @ back) > 0.99999
    assert abs(np.linalg.norm(back) - 1) < 1e-6


def test_float32_round_trip_is_exact():
    v = unit(1280, seed=1)
    blob = vector_to_blob(v, dtype="float32")
    assert len(blob) == 1280 * 4
    np.testing.assert_allclose(blob_to_vector(blob, 1280), v, rtol=0, atol=1e-7)


def test_blob_round_trip_from_memoryview():
    v = unit(8)
    assert np.allclose(blob_to_vector(memoryview(vector_to_blob(v)), 8), v, atol=1e-3)


@pytest.mark.parametrize("length", [0, 1, 2559, 2561, 5119, 10240])
def test_blob_of_the_wrong_length_is_refused(length):
    with pytest.raises(InvalidVector, match="bytes"):
        blob_to_vector(b"\x00" * length, 1280)


def test_blob_of_another_dimension_is_refused():
    with pytest.raises(InvalidVector):
        blob_to_vector(vector_to_blob(unit(512)), 1280)


def test_blob_with_nan_is_refused():
    blob = np.full(4, np.nan, dtype="<f2").tobytes()
    with pytest.raises(InvalidVector, match="NaN"):
        blob_to_vector(blob, 4)


def test_blob_of_zeros_is_refused():
    with pytest.raises(InvalidVector, match="unit length"):
        blob_to_vector(bytes(8), 4)


@pytest.mark.parametrize(
    "bad",
    [np.ones(4, dtype=np.float32), np.zeros((2, 4), dtype=np.float32), np.array([1, 0, 0, 0]), np.array([np.inf, 0, 0, 0])],
)
def test_bad_vectors_are_refused(bad):
    with pytest.raises(InvalidVector):
        vector_to_blob(bad)


def test_unknown_blob_dtype_is_refused():
    with pytest.raises(InvalidVector, match="dtype"):
        vector_to_blob(unit(4), dtype="int8")
