"""Vectors as compact blobs for a database column.

A blob is the vector's little-endian float16 (default, 2 bytes per value) or float32
values and nothing else; the reader is told the dimension (the model's, from the row's
model id), so the length alone says which dtype it is, and a blob of any other length,
or with a non-finite value, or far from unit length, is refused with InvalidVector.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidVector

BLOB_DTYPES = {"float16": np.dtype("<f2"), "float32": np.dtype("<f4")}
UNIT_TOLERANCE = 1e-2  # float16 rounding moves a unit vector's norm by ~1e-4


def check_vectors(vectors: np.ndarray, dim: int) -> np.ndarray:
    """(N, dim) or (dim,) finite unit-length vectors -> a C-contiguous float32 (N, dim) array."""
    array = np.asarray(vectors)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise InvalidVector(f"expected vectors of dimension {dim}, got shape {np.shape(vectors)}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidVector(f"expected floating-point vectors, got {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise InvalidVector("vectors contain NaN or infinity")
    norms = np.linalg.norm(array, axis=1)
    if array.shape[0] and np.abs(norms - 1.0).max() > UNIT_TOLERANCE:
        raise InvalidVector("vectors must be L2-normalised (unit length)")
    return array


def vector_to_blob(vector: np.ndarray, *, dtype: str = "float16") -> bytes:
    """A unit vector (dim,) -> ``dim * 2`` (float16) or ``dim * 4`` (float32) bytes."""
    if dtype not in BLOB_DTYPES:
        raise InvalidVector(f"blob dtype must be one of {sorted(BLOB_DTYPES)}, not {dtype!r}")
    array = np.asarray(vector)
    if array.ndim != 1:
        raise InvalidVector(f"expected one vector, got shape {array.shape}")
    checked = check_vectors(array, array.shape[0])[0]
    return checked.astype(BLOB_DTYPES[dtype]).tobytes()


def blob_to_vector(blob: bytes | bytearray | memoryview, dim: int) -> np.ndarray:
    """A blob written by ``vector_to_blob`` -> a (dim,) float32 unit vector (renormalised)."""
    if dim < 1:
        raise InvalidVector("dimension must be positive")
    data = bytes(blob)
    for dtype in BLOB_DTYPES.values():
        if len(data) == dim * dtype.itemsize:
            vector = np.frombuffer(data, dtype=dtype).astype(np.float32)
            break
    else:
        raise InvalidVector(f"a blob for dimension {dim} has {dim * 2} or {dim * 4} bytes, not {len(data)}")
    vector = check_vectors(vector, dim)[0]
    return vector / np.linalg.norm(vector)
