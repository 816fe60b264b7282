"""The FAISS index: add, replace, remove, search best first, and the visibility filter."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from imagehost.similarity import InvalidVector, SimilarityError, SimilarityIndex

DIM = 32


def units(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact(vectors: np.ndarray, ids: list[int], query: np.ndarray, k: int, allowed=None) -> list[int]:
    keep = [j for j, i in enumerate(ids) if allowed is None or i in allowed]
    order = np.argsort(-(vectors[keep] @ query))[:k]
    return [ids[keep[j]] for j in order]


@pytest.fixture(params=["flat", "ivf"])
def built(request):
    """(index, ids, vectors): 3,000 vectors under ids 1000.., flat or IVF."""
    vectors = units(3000)
    ids = list(range(1000, 4000))
    flat_max = 10_000 if request.param == "flat" else 500
    index = SimilarityIndex.build(zip(ids, vectors), DIM, model="test", flat_max=flat_max)
    assert index.kind == request.param
    return index, ids, vectors


def test_search_is_best_first_and_finds_itself(built):
    index, ids, vectors = built
    hits = index.search(vectors[42], 5)
    assert hits[0][0] == ids[42] and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)


def test_flat_search_is_exact():
    vectors = units(2000, seed=3)
    ids = list(range(2000))
    index = SimilarityIndex.build(zip(ids, vectors), DIM)
    query = units(1, seed=99)[0]
    assert [i for i, _ in index.search(query, 10)] == exact(vectors, ids, query, 10)


def test_ivf_search_with_nprobe_all_cells_is_exact():
    vectors = units(3000, seed=4)
    ids = list(range(3000))
    index = SimilarityIndex.build(zip(ids, vectors), DIM, flat_max=500, nprobe=10_000)
    query = units(1, seed=98)[0]
    assert [i for i, _ in index.search(query, 10)] == exact(vectors, ids, query, 10)


def test_allowed_ids_are_the_only_ids_ever_returned(built):
    index, ids, vectors = built
    rng = np.random.default_rng(7)
    for trial in range(40):
        allowed = set(rng.choice(ids, size=int(rng.integers(1, 400)), replace=False).tolist())
        query = vectors[int(rng.integers(len(ids)))]
        hits = index.search(query, 20, allowed_ids=allowed)
        assert hits, "the allowed set is never empty here"
        assert {i for i, _ in hits} <= allowed
        assert len(hits) == min(20, len(allowed))


def test_a_filtered_search_still_finds_the_nearest_allowed(built):
    """A user with few pictures gets their true nearest ones, also from IVF."""
    index, ids, vectors = built
    allowed = set(ids[::97])
    query = units(1, seed=5)[0]
    got = [i for i, _ in index.search(query, 5, allowed_ids=allowed)]
    assert got == exact(vectors, ids, query, 5, allowed)


def test_a_large_allowed_set_far_from_the_query_still_fills_k_from_ivf():
    """nprobe was widened by the allowed fraction alone, as if allowed ids were spread evenly:
    40% of the vectors allowed, all in cells far from a query among the other 60%, gave no
    result at all (the public pictures, seen from a private one's page)."""
    rng = np.random.default_rng(11)
    centre = units(2, seed=12)
    near = centre[0] + 0.25 * rng.standard_normal((1800, DIM)).astype(np.float32)
    far = centre[1] + 0.25 * rng.standard_normal((1200, DIM)).astype(np.float32)
    vectors = np.concatenate([near, far])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = list(range(3000))
    index = SimilarityIndex.build(zip(ids, vectors), DIM, flat_max=500, nprobe=2)
    assert index.kind == "ivf"
    allowed = set(ids[1800:])
    query = vectors[0]
    got = [i for i, _ in index.search(query, 8, allowed_ids=allowed)]
    assert len(got) == 8 and set(got) <= allowed
    assert len(set(got) & set(exact(vectors, ids, query, 8, allowed))) >= 6  # IVF: approximate (1.0 here)
    excluded_all_but_3 = index.search(query, 8, allowed_ids=allowed, exclude_ids=ids[1803:])
    assert {i for i, _ in excluded_all_but_3} == {1800, 1801, 1802}  # fewer than k exist: all of them


def test_allowed_ids_not_in_the_index_and_empty_sets_return_nothing(built):
    index, _, vectors = built
    assert index.search(vectors[0], 5, allowed_ids=[]) == []
    assert index.search(vectors[0], 5, allowed_ids=[999_999]) == []


def test_exclude_ids(built):
    index, ids, vectors = built
    hits = index.search(vectors[0], 5, exclude_ids=[ids[0]])
    assert ids[0] not in {i for i, _ in hits} and len(hits) == 5
    both = index.search(vectors[0], 5, allowed_ids=ids[:3], exclude_ids=[ids[0]])
    assert {i for i, _ in both} == {ids[1], ids[2]}


def test_remove_takes_ids_out_of_results(built):
    index, ids, vectors = built
    assert index.remove([ids[10], ids[11], 123_456_789]) == 2
    assert len(index) == len(ids) - 2 and ids[10] not in index
    hits = index.search(vectors[10], 50)
    assert ids[10] not in {i for i, _ in hits} and ids[11] not in {i for i, _ in hits}
    assert index.remove([ids[10]]) == 0


def test_add_with_an_existing_id_replaces_its_vector(built):
    index, ids, vectors = built
    index.add([ids[0]], vectors[1:2])
    assert len(index) == len(ids)
    hits = dict(index.search(vectors[1], 2))
    assert hits[ids[0]] == pytest.approx(1.0, abs=1e-5) and hits[ids[1]] == pytest.approx(1.0, abs=1e-5)


def test_growing_past_flat_max_switches_to_ivf_and_keeps_everything():
    vectors = units(1200, seed=8)
    index = SimilarityIndex.build(zip(range(1000), vectors[:1000]), DIM, flat_max=1000)
    assert index.kind == "flat"
    index.add(list(range(1000, 1200)), vectors[1000:])
    assert index.kind == "ivf" and len(index) == 1200
    for j in (0, 500, 1100, 1199):
        assert index.search(vectors[j], 1)[0][0] == j


def test_empty_index_searches_to_nothing():
    index = SimilarityIndex(DIM)
    assert len(index) == 0 and index.search(units(1)[0], 5) == []


def test_k_larger_than_the_index_returns_everything():
    index = SimilarityIndex.build(zip(range(3), units(3)), DIM)
    assert len(index.search(units(1, seed=2)[0], 10)) == 3


@pytest.mark.parametrize("k", [0, -1, 10_001])
def test_bad_k_is_refused(k):
    index = SimilarityIndex.build(zip(range(3), units(3)), DIM)
    with pytest.raises(SimilarityError, match="k must be"):
        index.search(units(1)[0], k)


@pytest.mark.parametrize(
    "ids, vectors",
    [
        ([1, 2], units(1)),  # count mismatch
        ([1, 1], units(2)),  # repeated id
        ([-1], units(1)),  # negative id
        ([1.5], units(1)),  # not an integer
        (["7"], units(1)),  # not an integer
        ([1], units(1, dim=DIM + 1)),  # wrong dimension
        ([1], np.ones((1, DIM), dtype=np.float32)),  # not unit length
        ([1], np.full((1, DIM), np.nan, dtype=np.float32)),  # NaN
    ],
)
def test_bad_adds_are_refused_and_change_nothing(ids, vectors):
    index = SimilarityIndex.build(zip(range(3), units(3)), DIM)
    with pytest.raises(InvalidVector):
        index.add(ids, vectors)
    assert len(index) == 3 and index.ids() == {0, 1, 2}


def test_bad_query_vector_is_refused():
    index = SimilarityIndex.build(zip(range(3), units(3)), DIM)
    with pytest.raises(InvalidVector):
        index.search(np.zeros(DIM, dtype=np.float32), 1)
    with pytest.raises(InvalidVector):
        index.search(units(2), 1)


def test_memory_grows_with_the_vectors():
    small = SimilarityIndex.build(zip(range(10), units(10)), DIM)
    large = SimilarityIndex.build(zip(range(1000), units(1000)), DIM)
    assert large.memory_bytes() - small.memory_bytes() >= 990 * DIM * 4


def test_concurrent_adds_removes_and_filtered_searches():
    """Threads of one web process share the index: no crash, no id outside the filter."""
    vectors = units(4000, seed=11)
    index = SimilarityIndex.build(zip(range(2000), vectors[:2000]), DIM, flat_max=2005)
    allowed = set(range(0, 4000, 3))
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for j in range(start, start + 500, 10):
                index.add(list(range(j, j + 10)), vectors[j : j + 10])
                index.remove(range(j - 2000, j - 1990))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader(seed: int) -> None:
        try:
            rng = np.random.default_rng(seed)
            for _ in range(200):
                hits = index.search(vectors[int(rng.integers(4000))], 10, allowed_ids=allowed)
                assert {i for i, _ in hits} <= allowed
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(2000 + 500 * t,)) for t in range(2)]
    threads += [threading.Thread(target=reader, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert index.kind == "ivf"
    assert index.ids() == set(range(1000, 3000))
