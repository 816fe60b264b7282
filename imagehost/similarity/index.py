"""A FAISS inner-product index of picture vectors, keyed by picture id.

Exact search (``IndexFlatIP`` in ``IndexIDMap2``) while the index holds at most
``flat_max`` vectors; past that it is rebuilt as ``IndexIVFFlat`` (k-means cells, ``nprobe``
of them searched). Vectors are unit length, so the inner product is the cosine similarity.

Visibility: ``search(..., allowed_ids=...)`` passes an ``IDSelectorBatch`` into FAISS, so an
id outside the allowed set is never scored, let alone returned (and the result is checked
again on the way out). With IVF, a restrictive filter widens ``nprobe`` in proportion, up
to every cell (exact), so a user with few pictures still gets their nearest ones; and when
the cells probed hold fewer allowed vectors than the answer needs (allowed ids gathered far
from the query), ``nprobe`` doubles until they do or every cell is searched.

Where it lives (see docs/benchmarks-similarity.md): one index in every web process, built
lazily from the database and brought up to date before each search. Every method takes one
lock, so one instance is safe to share between the threads of a process.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Iterable, Sequence

import faiss
import numpy as np

from .errors import InvalidVector, SimilarityError
from .vectors import check_vectors

# Measured (docs/benchmarks-similarity.md, one thread): exact search p95 is 4.7 ms at 10k
# and 106 ms at 100k (it reads every vector: memory-bound); IVF with nprobe 16 is < 10 ms
# at 100k and 1M with recall@10 = 1.0 against exact on clustered synthetic vectors.
FLAT_MAX = 25_000
NPROBE = 16
MAX_K = 1000
MIN_TRAIN_PER_CELL = 39  # FAISS warns below this many training points per centroid


TRAIN_PER_CELL = 64  # training sample per centroid (k-means cost grows with it)
TRAIN_ITERATIONS = 10


def cells_for(n: int) -> int:
    """IVF cell count for ``n`` vectors: ~sqrt(n), and enough points to train each."""
    return max(1, min(int(math.sqrt(n)), n // MIN_TRAIN_PER_CELL))


class SimilarityIndex:
    """Add, remove and search (id, unit vector) pairs of one embedding model."""

    def __init__(self, dim: int, *, model: str = "", flat_max: int = FLAT_MAX, nprobe: int = NPROBE) -> None:
        if dim < 1:
            raise SimilarityError("dimension must be positive")
        self.dim = dim
        self.model = model
        self.flat_max = flat_max
        self.nprobe = nprobe
        self._lock = threading.Lock()
        self._index: faiss.Index = self._new_flat()
        self._ids: set[int] = set()

    @classmethod
    def build(
        cls, items: Iterable[tuple[int, np.ndarray]], dim: int, *, model: str = "", flat_max: int = FLAT_MAX,
        nprobe: int = NPROBE,
    ) -> SimilarityIndex:
        """An index of ``(id, vector)`` pairs (flat or IVF, depending on how many)."""
        pairs = list(items)
        index = cls(dim, model=model, flat_max=flat_max, nprobe=nprobe)
        if pairs:
            ids = [i for i, _ in pairs]
            index.add(ids, np.stack([np.asarray(v) for _, v in pairs]))
        return index

    @classmethod
    def empty_ivf(
        cls, dim: int, training_vectors: np.ndarray, *, nlist: int | None = None, model: str = "",
        nprobe: int = NPROBE,
    ) -> SimilarityIndex:
        """An empty IVF index trained on a sample (for collections built up in pieces)."""
        index = cls(dim, model=model, flat_max=0, nprobe=nprobe)
        index._index = train_ivf(check_vectors(training_vectors, dim), dim, nlist)
        return index

    # -- state ------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"flat"`` or ``"ivf"``."""
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "flat"

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, picture_id: object) -> bool:
        return picture_id in self._ids

    def ids(self) -> set[int]:
        """A copy of the ids held."""
        with self._lock:
            return set(self._ids)

    def memory_bytes(self) -> int:
        """Size of the FAISS index when serialised (≈ its memory)."""
        with self._lock:
            return int(faiss.serialize_index(self._index).nbytes)

    # -- writes -----------------------------------------------------------------------------
    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Add or replace the vectors of ``ids`` (row i of ``vectors`` belongs to ids[i])."""
        id_array = _check_ids(ids)
        matrix = check_vectors(vectors, self.dim)
        if len(id_array) != len(matrix):
            raise InvalidVector(f"{len(id_array)} ids but {len(matrix)} vectors")
        if len(set(id_array.tolist())) != len(id_array):
            raise InvalidVector("ids repeat within one add")
        with self._lock:
            self._remove_locked(id_array)
            if self.kind == "flat" and len(self._ids) + len(id_array) > self.flat_max:
                self._to_ivf_locked(id_array, matrix)
            else:
                self._index.add_with_ids(matrix, id_array)
            self._ids.update(id_array.tolist())

    def remove(self, ids: Iterable[int]) -> int:
        """Remove ``ids`` (unknown ones are ignored); returns how many were removed."""
        id_array = _check_ids(list(ids))
        with self._lock:
            return self._remove_locked(id_array)

    def _remove_locked(self, id_array: np.ndarray) -> int:
        present = np.array([i for i in id_array.tolist() if i in self._ids], dtype=np.int64)
        if len(present) == 0:
            return 0
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(present)))
        self._ids.difference_update(present.tolist())
        return removed

    # -- search -----------------------------------------------------------------------------
    def search(
        self, vector: np.ndarray, k: int = 10, *, allowed_ids: Collection[int] | np.ndarray | None = None,
        exclude_ids: Collection[int] | np.ndarray = (),
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest ``(id, cosine)`` pairs, best first.

        ``allowed_ids``: only these ids may be returned (None = any). ``exclude_ids``: never
        these (e.g. the picture whose neighbours are asked for, or the pictures a user may
        not see when that list is the shorter one). Large sets are cheapest as int64 arrays.
        """
        if not 1 <= k <= MAX_K:
            raise SimilarityError(f"k must be between 1 and {MAX_K}")
        query = check_vectors(vector, self.dim)
        if len(query) != 1:
            raise InvalidVector("search takes one vector")
        allowed = None if allowed_ids is None else _check_ids(allowed_ids)
        excluded = _check_ids(exclude_ids)
        with self._lock:
            if not self._ids or (allowed is not None and len(allowed) == 0):
                return []
            params, selectors = self._params_locked(allowed, excluded)
            k = min(k, len(self._ids))
            scores, labels = self._index.search(query, k, params=params)
            if self.kind == "ivf" and (labels[0] < 0).any():  # fewer than k found in the cells probed
                reachable, widened = self._reachable_locked(allowed, excluded), False
                while params.nprobe < self._index.nlist:
                    if np.count_nonzero(labels[0] >= 0) >= min(k, reachable):
                        if widened:
                            break
                        widened = True  # once more: the cells beside the first that filled it
                    params.nprobe = min(self._index.nlist, 2 * params.nprobe)
                    scores, labels = self._index.search(query, k, params=params)
            # FAISS applied the selector; check each result against it again anyway, so an
            # index type that ignored it could never leak an id outside the allowed set.
            member = selectors[-1].is_member if selectors else (lambda _: True)
            return [(int(i), float(s)) for i, s in zip(labels[0], scores[0]) if i >= 0 and member(int(i))]

    def _reachable_locked(self, allowed: np.ndarray | None, excluded: np.ndarray) -> int:
        """How many indexed ids a search may return (allowed, in the index, not excluded)."""
        candidates = self._ids if allowed is None else self._ids.intersection(allowed.tolist())
        return len(candidates.difference(excluded.tolist()))

    def _params_locked(self, allowed: np.ndarray | None, excluded: np.ndarray):
        """FAISS search parameters, and the selector objects they point to (keep them alive)."""
        parts: list = []
        if allowed is not None:
            parts.append(faiss.IDSelectorBatch(allowed))
        if len(excluded):
            inner = faiss.IDSelectorBatch(excluded)
            parts += [inner, faiss.IDSelectorNot(inner)]
        if allowed is not None and len(excluded):
            parts.append(faiss.IDSelectorAnd(parts[0], parts[-1]))
        sel = parts[-1] if parts else None
        if self.kind == "flat":
            return (faiss.SearchParameters(sel=sel) if sel is not None else None), parts
        fraction = 1.0 if allowed is None else max(len(allowed) / len(self._ids), 1e-9)
        nprobe = min(self._index.nlist, max(self.nprobe, math.ceil(self.nprobe / fraction)))
        return faiss.SearchParametersIVF(sel=sel, nprobe=nprobe), parts

    # -- flat -> IVF ------------------------------------------------------------------------
    def _new_flat(self) -> faiss.Index:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _to_ivf_locked(self, new_ids: np.ndarray, new_vectors: np.ndarray) -> None:
        """Rebuild as IVF from what the flat index holds plus the new vectors."""
        old = self._index
        old_ids = faiss.vector_to_array(old.id_map).astype(np.int64)
        old_vectors = faiss.downcast_index(old.index).reconstruct_n(0, old.ntotal).reshape(-1, self.dim)
        ids = np.concatenate([old_ids, new_ids])
        vectors = np.concatenate([old_vectors, new_vectors])
        self._index = train_ivf(vectors, self.dim)
        self._index.add_with_ids(vectors, ids)


def train_ivf(vectors: np.ndarray, dim: int, nlist: int | None = None) -> faiss.IndexIVFFlat:
    """An empty IVF-Flat inner-product index trained on ``vectors`` (a sample suffices);
    ``nlist`` cells, by default ``cells_for(len(vectors))``."""
    nlist = nlist or cells_for(len(vectors))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.own_fields = True
    quantizer.this.disown()
    ivf.cp.niter = TRAIN_ITERATIONS
    ivf.cp.max_points_per_centroid = TRAIN_PER_CELL
    sample = vectors
    if len(vectors) > nlist * TRAIN_PER_CELL:
        rng = np.random.default_rng(0)
        sample = vectors[np.sort(rng.choice(len(vectors), nlist * TRAIN_PER_CELL, replace=False))]
    ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
    return ivf


def _check_ids(ids: Iterable[int] | np.ndarray) -> np.ndarray:
    """Ids as a flat int64 array (a numpy integer array passes without a copy)."""
    if not isinstance(ids, np.ndarray):
        ids = list(ids)
    try:
        array = np.asarray(ids)
    except (OverflowError, ValueError) as exc:
        raise InvalidVector("ids must be integers that fit in 64 bits") from exc
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise InvalidVector("ids must be a flat sequence of integers")
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise InvalidVector("ids must fit in 64 bits")
    array = array.astype(np.int64, copy=False)
    if len(array) and array.min() < 0:
        raise InvalidVector("ids must be non-negative")
    return array
