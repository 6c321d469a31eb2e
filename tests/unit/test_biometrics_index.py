"""FaceIndex: distances vs brute force, top-k, bands, mutation, thread-safety, memory."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import biometrics.index as index_module
from biometrics.index import BandThresholds, Candidate, FaceIndex

DIM = 128
MEAN = np.random.default_rng(42).normal(0.0, 0.1175, DIM).astype(np.float32)


def encodings(count: int, seed: int = 0) -> np.ndarray:
    """Face-encoding-like vectors: a shared mean plus per-person spread (norm ~1.4)."""
    rng = np.random.default_rng(seed)
    return (MEAN + rng.normal(0.0, 0.051, (count, DIM))).astype(np.float32)


def brute_force(matrix: np.ndarray, probe: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    distances = np.linalg.norm(matrix.astype(np.float64) - probe.astype(np.float64), axis=1)
    order = np.argsort(distances, kind="stable")[:k]
    return order, distances[order]


def build(matrix: np.ndarray, dtype: type = np.float32) -> tuple[FaceIndex, list[str]]:
    ids = [f"t{i}" for i in range(len(matrix))]
    index = FaceIndex(dtype=dtype)
    index.add_many(ids, matrix)
    return index, ids


def check_internal_consistency(index: FaceIndex) -> None:
    count = len(index)
    assert len(index._rows) == count
    for row, template_id in enumerate(index._ids):
        assert index._rows[template_id] == row
    stored = index._matrix[:count].astype(np.float32)
    np.testing.assert_allclose(index._sqnorms[:count], (stored**2).sum(axis=1), rtol=1e-5)


# ---------------------------------------------------------------- distances and ranking
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_search_matches_brute_force(dtype: type) -> None:
    matrix = encodings(3000)
    index, ids = build(matrix, dtype)
    rounded = matrix.astype(dtype)
    probes = np.vstack([matrix[:5] + encodings(5, seed=1) * 0.2, encodings(5, seed=2)])
    for probe in probes:
        hits = index.search(probe, k=10)
        order, expected = brute_force(rounded, probe, 10)
        assert [hit.template_id for hit in hits] == [ids[i] for i in order]
        got = np.array([hit.distance for hit in hits])
        np.testing.assert_allclose(got, expected, atol=2e-4 if dtype == np.float16 else 1e-4)
        _, exact = brute_force(matrix, probe, 10)  # float16 storage vs float32 truth
        np.testing.assert_allclose(got, exact, atol=2e-3)


def test_float16_widening_is_exact() -> None:
    special = np.array([0.0, -0.0, 65504.0, -65504.0, 6.104e-05, -6.104e-05, 1e-7, -3e-6, 0.5])
    rows = np.vstack([np.resize(special, DIM), encodings(4999, seed=3).astype(np.float64)])
    index = FaceIndex(dtype=np.float16)
    index.add_many([f"r{i}" for i in range(len(rows))], rows)
    stored = index._matrix[: len(rows)]
    assert not np.any((stored != 0) & (np.abs(stored) < np.finfo(np.float16).smallest_normal))
    probe = np.random.default_rng(5).normal(0, 0.1, DIM).astype(np.float32)
    out = np.empty(len(rows), dtype=np.float32)
    index_module._matvec(stored, probe, out)
    expected = stored.astype(np.float64) @ probe.astype(np.float64)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_parallel_scan_matches_brute_force(dtype: type) -> None:
    count = index_module._PARALLEL_MIN_ROWS + 1234  # uses the worker pool on multi-core hosts
    matrix = encodings(count, seed=9)
    index, ids = build(matrix, dtype)
    probe = matrix[count - 7] + 0.01
    hits = index.search(probe, k=5)
    order, expected = brute_force(matrix.astype(dtype), probe, 5)
    assert [hit.template_id for hit in hits] == [ids[i] for i in order]
    np.testing.assert_allclose([hit.distance for hit in hits], expected, atol=2e-4)


def test_results_are_sorted_and_k_is_respected() -> None:
    index, _ = build(encodings(50))
    hits = index.search(encodings(1, seed=8)[0], k=7)
    assert len(hits) == 7
    assert [hit.distance for hit in hits] == sorted(hit.distance for hit in hits)
    assert len(index.search(encodings(1, seed=8)[0], k=500)) == 50
    with pytest.raises(ValueError):
        index.search(encodings(1)[0], k=0)


def test_exact_probe_is_found_at_distance_zero() -> None:
    matrix = encodings(100)
    index, ids = build(matrix)
    hit = index.search(matrix[42], k=1)[0]
    assert hit == Candidate(ids[42], hit.distance, "HIGH") and hit.distance < 2e-3


def test_max_distance_filters() -> None:
    matrix = encodings(200)
    index, _ = build(matrix)
    probe = matrix[0] + 0.02
    hits = index.search(probe, k=10, max_distance=0.5)
    assert hits and all(hit.distance <= 0.5 for hit in hits)
    assert index.search(probe, k=10, max_distance=0.0) == []


def test_empty_index_and_bad_probes() -> None:
    index = FaceIndex()
    assert index.search(np.zeros(DIM)) == []
    with pytest.raises(ValueError):
        index.search(np.zeros(DIM - 1))
    with pytest.raises(ValueError):
        index.search(np.full(DIM, np.nan))


# ---------------------------------------------------------------- bands
@pytest.mark.parametrize(
    ("distance", "band"),
    [(0.0, "HIGH"), (0.40, "HIGH"), (0.45, "MEDIUM"), (0.50, "MEDIUM"), (0.55, "LOW")]
    + [(0.60, "LOW"), (0.6001, "NONE"), (1.3, "NONE")],
)
def test_default_bands(distance: float, band: str) -> None:
    assert BandThresholds().band(distance) == band


def test_custom_bands_are_used_by_search() -> None:
    bands = BandThresholds(high=0.1, medium=0.2, low=0.3)
    index = FaceIndex(bands=bands)
    base = encodings(1)[0]
    direction = np.zeros(DIM, dtype=np.float32)
    direction[0] = 1.0
    for name, offset in [("a", 0.05), ("b", 0.15), ("c", 0.25), ("d", 0.35)]:
        index.add(name, base + offset * direction)
    hits = index.search(base, k=4)
    assert [(hit.template_id, hit.band) for hit in hits] == [
        ("a", "HIGH"),
        ("b", "MEDIUM"),
        ("c", "LOW"),
        ("d", "NONE"),
    ]
    with pytest.raises(ValueError):
        BandThresholds(high=0.5, medium=0.4, low=0.6)


# ---------------------------------------------------------------- mutation
def test_growth_is_amortised_and_remove_needs_no_rebuild() -> None:
    matrix = encodings(5000)
    index = FaceIndex(capacity=16)
    reallocations = 0
    buffer = index._matrix
    for i, vector in enumerate(matrix):
        index.add(f"t{i}", vector)
        if index._matrix is not buffer:
            reallocations += 1
            buffer = index._matrix
    assert reallocations <= 9  # 16 -> 8192 by doubling
    for i in range(0, 1000, 3):
        index.remove(f"t{i}")
        assert index._matrix is buffer  # swap-with-last, no reallocation
    assert len(index) == 5000 - 334
    check_internal_consistency(index)
    for i in (1, 2, 4999, 3001):
        assert index.search(matrix[i], k=1)[0].template_id == f"t{i}"


def test_removed_ids_never_come_back() -> None:
    matrix = encodings(300)
    index, ids = build(matrix)
    removed = set(ids[::4])
    for template_id in removed:
        index.remove(template_id)
    for i in range(0, 300, 4):
        hits = index.search(matrix[i], k=len(index))
        assert removed.isdisjoint(hit.template_id for hit in hits)
    assert all(template_id not in index for template_id in removed)


def test_shrinks_after_mass_removal() -> None:
    index, ids = build(encodings(4096))
    for template_id in ids[:4000]:
        index.remove(template_id)
    assert index.capacity < 4096 and len(index) == 96
    check_internal_consistency(index)


def test_add_replaces_existing_template() -> None:
    matrix = encodings(3)
    index, _ = build(matrix[:2])
    index.add("t0", matrix[2])
    assert len(index) == 2
    np.testing.assert_array_equal(index.get("t0"), matrix[2])
    index.add_many(["t1", "new"], matrix[:2])
    assert len(index) == 3 and index.search(matrix[0], k=1)[0].template_id in {"t1"}
    check_internal_consistency(index)


def test_remove_and_discard() -> None:
    index, _ = build(encodings(3))
    with pytest.raises(KeyError):
        index.remove("missing")
    assert index.discard("t1") is True and index.discard("t1") is False
    assert index.ids() == ["t0", "t2"]


@pytest.mark.parametrize(
    ("ids", "rows"),
    [
        (["a", "a"], np.zeros((2, DIM))),
        (["a"], np.zeros((1, DIM - 1))),
        (["a", "b"], np.zeros((1, DIM))),
        ([""], np.zeros((1, DIM))),
        (["a"], np.full((1, DIM), np.inf)),
    ],
    ids=["duplicate", "width", "count", "empty-id", "inf"],
)
def test_invalid_batches_are_refused(ids: list[str], rows: np.ndarray) -> None:
    index = FaceIndex()
    with pytest.raises(ValueError):
        index.add_many(ids, rows)
    assert len(index) == 0


def test_float16_overflow_is_refused() -> None:
    with pytest.raises(ValueError):
        FaceIndex(dtype=np.float16).add("big", np.full(DIM, 1e6))
    with pytest.raises(ValueError):
        FaceIndex(dtype=np.float64)


def test_from_pairs_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "_BATCH_ROWS", 7)
    matrix = encodings(30)
    index = FaceIndex.from_pairs(((f"p{i}", row) for i, row in enumerate(matrix)))
    assert len(index) == 30 and "p29" in index
    assert index.search(matrix[17], k=1)[0].template_id == "p17"


@settings(max_examples=40, deadline=None)
@given(
    operations=st.lists(st.tuples(st.booleans(), st.integers(0, 25)), min_size=1, max_size=80),
    dtype=st.sampled_from([np.float32, np.float16]),
)
def test_random_operation_sequences_match_a_model(
    operations: list[tuple[bool, int]], dtype: type
) -> None:
    vectors = encodings(26, seed=11)
    index = FaceIndex(dtype=dtype, capacity=2)
    model: dict[str, np.ndarray] = {}
    for is_add, key in operations:
        name = f"k{key}"
        if is_add:
            index.add(name, vectors[key])
            model[name] = vectors[key]
        else:
            assert index.discard(name) is (model.pop(name, None) is not None)
    assert len(index) == len(model) and set(index.ids()) == set(model)
    check_internal_consistency(index)
    if model:
        names = sorted(model)
        gallery = np.vstack([model[name] for name in names]).astype(dtype)
        order, expected = brute_force(gallery, vectors[0], 3)
        hits = index.search(vectors[0], k=3)
        # near 0 the float32 expansion |w|^2 - 2wq + |q|^2 cancels: compare squared distances
        got = np.array([hit.distance for hit in hits])
        np.testing.assert_allclose(got**2, expected**2, atol=2e-5)


# ---------------------------------------------------------------- concurrency
def test_concurrent_adds_removes_and_searches() -> None:
    matrix = encodings(4000, seed=21)
    index, ids = build(matrix[:1000])
    removed: set[str] = set()
    removed_lock = threading.Lock()
    errors: list[BaseException] = []

    def adder(lo: int, hi: int) -> None:
        start.wait()
        for i in range(lo, hi):
            index.add(f"t{i}", matrix[i])

    def remover() -> None:
        start.wait()
        for i in range(0, 1000, 2):
            index.remove(f"t{i}")
            with removed_lock:
                removed.add(f"t{i}")

    def searcher(seed: int) -> None:
        rng = np.random.default_rng(seed)
        start.wait()
        try:
            for _ in range(200):
                with removed_lock:
                    gone_before = set(removed)
                i = int(rng.integers(0, 1000))
                hits = index.search(matrix[i], k=5)
                distances = [hit.distance for hit in hits]
                assert distances == sorted(distances)
                assert gone_before.isdisjoint(hit.template_id for hit in hits)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=adder, args=(1000, 2500)),
        threading.Thread(target=adder, args=(2500, 4000)),
        threading.Thread(target=remover),
        threading.Thread(target=searcher, args=(1,)),
        threading.Thread(target=searcher, args=(2,)),
    ]
    start = threading.Barrier(len(threads))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # force frequent thread switches to provoke races
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    expected = {f"t{i}" for i in range(4000)} - {f"t{i}" for i in range(0, 1000, 2)}
    assert set(index.ids()) == expected and len(index) == len(expected)
    check_internal_consistency(index)
    for i in range(1, 4000, 98):  # odd ids survive
        np.testing.assert_array_equal(index.get(f"t{i}"), matrix[i])
        assert index.search(matrix[i], k=1)[0].template_id == f"t{i}"


# ---------------------------------------------------------------- memory
def test_float16_million_fits_the_memory_budget() -> None:
    budget = 600 * 1024 * 1024
    assert FaceIndex.estimate_nbytes(1_000_000, dtype=np.float16) <= budget
    index = FaceIndex(dtype=np.float16)
    index.reserve(1_000_000)  # np.empty: address space only, pages are not touched
    assert index.nbytes == FaceIndex.estimate_nbytes(1_000_000, dtype=np.float16)
    assert index.nbytes == 1_000_000 * DIM * 2 + 1_000_000 * 4  # 260 MB
    assert FaceIndex.estimate_nbytes(1_000_000) == 2 * 256_000_000 + 4_000_000
