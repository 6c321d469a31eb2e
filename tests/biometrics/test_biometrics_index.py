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
    assert np.count_nonzero(index._rows._slots) == count
    for row, template_id in enumerate(index._ids):
        assert index._rows.find(template_id) == row
        assert index._rows._hashes[row] == hash(template_id)
    stored = index._matrix[:count].astype(np.float64)
    np.testing.assert_allclose(index._sqnorms[:count], (stored**2).sum(axis=1), rtol=1e-6)
    if index.projection_dim:
        expected = (stored - index._center) @ index._basis.astype(np.float64)
        np.testing.assert_allclose(index._proj[:count], expected, rtol=1e-5, atol=1e-6)
        projected = index._proj[:count].astype(np.float64)
        np.testing.assert_allclose(index._pnorms[:count], (projected**2).sum(axis=1), rtol=1e-6)


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
@pytest.mark.parametrize("kind", ["isotropic", "structured"])
def test_parallel_scan_matches_brute_force(dtype: type, kind: str) -> None:
    count = index_module._PARALLEL_MIN_ROWS + 1234  # uses the worker pool on multi-core hosts
    generate = encodings if kind == "isotropic" else structured
    matrix = generate(count, seed=9)
    index, ids = build(matrix, dtype)
    for probe in (matrix[count - 7] + 0.01, matrix[5] + 0.03, generate(1, seed=10)[0]):
        hits = index.search(probe, k=5)
        order, expected = brute_force(matrix.astype(dtype), probe, 5)
        assert [hit.template_id for hit in hits] == [ids[i] for i in order]
        np.testing.assert_allclose([hit.distance for hit in hits], expected, atol=2e-4)
    stats = index.search_stats()
    # isotropic data defeats the projection (full-scan fallback); structured data does not
    assert stats["two_stage" if kind == "structured" else "fallbacks"] == 3


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
    assert hit == Candidate(ids[42], 0.0, "HIGH")  # exact float64 re-rank: no cancellation


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
@pytest.mark.parametrize("two_stage", [False, True])
def test_concurrent_adds_removes_and_searches(
    two_stage: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if two_stage:  # projection stage and refits racing with adds, removals and searches
        force_two_stage(monkeypatch)
        monkeypatch.setattr(index_module, "_FIT_MIN_ROWS", 200)
    matrix = structured(4000, seed=21) if two_stage else encodings(4000, seed=21)
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

    def refitter() -> None:
        start.wait()
        for _ in range(20):
            index.refit()

    threads = [
        threading.Thread(target=adder, args=(1000, 2500)),
        threading.Thread(target=adder, args=(2500, 4000)),
        threading.Thread(target=remover),
        threading.Thread(target=searcher, args=(1,)),
        threading.Thread(target=searcher, args=(2,)),
    ]
    if two_stage:
        threads.append(threading.Thread(target=refitter))
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
    for probe in probes_for(matrix, seed=23, count=2):
        assert_exact(index, probe, 10)


# ---------------------------------------------------------------- memory
def test_float16_million_fits_the_memory_budget() -> None:
    budget = 600_000_000
    ids_and_strings = 1_000_000 * 96  # list pointer + 36-character str object per template
    assert FaceIndex.estimate_nbytes(1_000_000, dtype=np.float16) + ids_and_strings <= budget
    index = FaceIndex(dtype=np.float16)
    index.reserve(1_000_000)  # np.empty / np.zeros: pages are not touched until written
    assert index.nbytes == FaceIndex.estimate_nbytes(1_000_000, dtype=np.float16)
    m = index.projection_dim
    assert m == 32
    per_row = DIM * 2 + 4 + m * 4 + 4 + 8  # float16 row, norm, projected row, its norm, hash
    fixed = DIM * m * 12 + DIM * 8 + 4 * 2**21  # basis (float32 + float64), centre, slots
    assert index.nbytes == 1_000_000 * per_row + fixed  # ~409 MB
    assert FaceIndex.estimate_nbytes(1_000_000, projection_dim=0) == (
        1_000_000 * (DIM * 4 + 4 + 8) + DIM * 8 + 4 * 2**21
    )


# ---------------------------------------------------------------- exact two-stage search
def structured(count: int, seed: int, rank: int = 8, noise: float = 0.01) -> np.ndarray:
    """Low-rank + noise encodings: the projection prunes well on these. With ``noise=0`` the
    projected distances equal the true ones, so the lower bounds are tight."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(99).normal(size=(DIM, rank)))[0]
    coords = rng.normal(0.0, 0.2, (count, rank))
    return (MEAN + coords @ basis.T + rng.normal(0.0, noise, (count, DIM))).astype(np.float32)


def force_two_stage(monkeypatch: pytest.MonkeyPatch, *, min_cap: int = 0) -> None:
    """Use the projection stage (and its sampled cut-off) at unit-test sizes."""
    monkeypatch.setattr(index_module, "_EXACT_ALL_ROWS", 0)
    monkeypatch.setattr(index_module, "_TWO_STAGE_MIN_ROWS", 0)
    monkeypatch.setattr(index_module, "_FIT_MIN_ROWS", 256)
    monkeypatch.setattr(index_module, "_SAMPLE_ROWS", 64)
    monkeypatch.setattr(index_module, "_RERANK_MIN_CAP", min_cap)
    monkeypatch.setattr(index_module, "_SKIP_SCORE", 0.0)  # never skip: test both outcomes


def expected_hits(
    index: FaceIndex, probe: np.ndarray, k: int, max_distance: float | None
) -> tuple[list[str], np.ndarray]:
    """Brute force over the stored values, in float64."""
    names = index.ids()
    stored = np.vstack([index.get(name) for name in names]).astype(np.float64)
    distances = np.sqrt(((stored - probe.astype(np.float64)) ** 2).sum(axis=1))
    order = np.argsort(distances, kind="stable")[:k]
    if max_distance is not None:
        order = order[distances[order] <= max_distance]
    return [names[i] for i in order], distances[order]


def assert_exact(
    index: FaceIndex, probe: np.ndarray, k: int, max_distance: float | None = None
) -> None:
    hits = index.search(probe, k=k, max_distance=max_distance)
    names, distances = expected_hits(index, probe, k, max_distance)
    assert [hit.template_id for hit in hits] == names
    np.testing.assert_allclose([hit.distance for hit in hits], distances, rtol=0, atol=1e-4)
    assert [hit.band for hit in hits] == [index.bands.band(float(d)) for d in distances]


def probes_for(matrix: np.ndarray, seed: int, count: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    genuine = matrix[rng.integers(0, len(matrix), count)] + rng.normal(0, 0.03, (count, DIM))
    return np.vstack([genuine, structured(count, seed + 1000), encodings(count, seed + 2000)])


def test_projection_is_orthonormal() -> None:
    index = FaceIndex()
    for fitted in (False, True):
        basis = index.projection.astype(np.float64)
        assert basis.shape == (DIM, 32) and index.projection_dim == 32
        np.testing.assert_allclose(basis.T @ basis, np.eye(32), atol=1e-6)
        assert 1.0 <= index._sigma < 1.0 + 1e-5
        if not fitted:
            index.add_many([f"t{i}" for i in range(500)], structured(500, seed=1))
            index.refit()
    # PCA: the leading direction carries the most variance of the stored templates
    stored = np.vstack([index.get(name) for name in index.ids()]).astype(np.float64)
    variances = ((stored - stored.mean(axis=0)) @ index.projection.astype(np.float64)).var(axis=0)
    assert np.all(np.diff(variances) <= 1e-9)
    assert variances.sum() / stored.var(axis=0).sum() > 0.95  # rank-8 data: nearly all of it


def test_random_basis_is_fixed_and_orthonormal() -> None:
    a, b = FaceIndex().projection, FaceIndex().projection
    np.testing.assert_array_equal(a, b)
    small = FaceIndex(dim=10, projection_dim=3).projection.astype(np.float64)
    np.testing.assert_allclose(small.T @ small, np.eye(3), atol=1e-6)
    with pytest.raises(ValueError):
        FaceIndex(dim=10, projection_dim=11)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("max_distance", [None, 0.3, 0.6, 2.0])
def test_two_stage_equals_brute_force(
    dtype: type, max_distance: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    force_two_stage(monkeypatch)
    matrix = structured(3000, seed=3)
    index, _ = build(matrix, dtype)
    assert index._fitted_count == 3000  # PCA fitted when the index reached _FIT_MIN_ROWS
    for probe in probes_for(matrix, seed=4):
        for k in (1, 5, 17, 50):
            assert_exact(index, probe, k, max_distance)
    stats = index.search_stats()
    assert stats["two_stage"] > 0  # the projection really was used (and pruned)
    assert stats["reranked"] < stats["searches"] * 3000 / 2


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_two_stage_is_exact_when_lower_bounds_are_tight(
    dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Templates and impostor probes in one 8-d affine subspace: projected distance == true
    distance, so the k-th neighbour sits right at the pruning threshold."""
    force_two_stage(monkeypatch)
    matrix = structured(2500, seed=21, noise=0.0)
    index, _ = build(matrix, dtype)
    for probe in structured(8, seed=22, noise=0.0):
        for k in (1, 5, 30):
            assert_exact(index, probe, k)
            assert_exact(index, probe, k, max_distance=0.25)
    stats = index.search_stats()
    assert stats["two_stage"] == stats["searches"] and stats["fallbacks"] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_fallback_is_exact_when_projection_cannot_prune(
    dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    force_two_stage(monkeypatch)
    matrix = encodings(2000, seed=5)  # isotropic: a 32-d projection keeps a quarter of it
    index, _ = build(matrix, dtype)
    for probe in probes_for(matrix, seed=6, count=3):
        for k in (1, 5, 50):
            assert_exact(index, probe, k)
            assert_exact(index, probe, k, max_distance=0.8)
    assert index.search_stats()["fallbacks"] > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_two_stage_after_adds_removes_and_refits(
    dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    force_two_stage(monkeypatch)
    rng = np.random.default_rng(7)
    pool = structured(6000, seed=8)
    index = FaceIndex(dtype=dtype, capacity=8)
    index.add_many([f"p{i}" for i in range(300)], pool[:300])
    assert index._fitted_count == 300  # first fit at _FIT_MIN_ROWS (patched to 256)
    present = set(range(300))
    next_id = 300
    for step in range(12):
        # grow (auto-refit at 4x), replace some, remove some
        fresh = list(range(next_id, next_id + int(rng.integers(100, 700))))
        next_id = fresh[-1] + 1
        index.add_many([f"p{i}" for i in fresh], pool[fresh])
        present.update(fresh)
        replaced = rng.choice(sorted(present), 20, replace=False)
        index.add_many([f"p{i}" for i in replaced], pool[rng.integers(0, 6000, 20)])
        for i in rng.choice(sorted(present), int(rng.integers(50, 400)), replace=False):
            index.remove(f"p{i}")
            present.discard(int(i))
        if step == 6:
            before = index.projection
            index.refit()
            assert not np.array_equal(before, index.projection)
        check_internal_consistency(index)
        assert set(index.ids()) == {f"p{i}" for i in present}
        for probe in probes_for(pool, seed=100 + step, count=2):
            for k in (1, 9, 50):
                assert_exact(index, probe, k)
            assert_exact(index, probe, 20, max_distance=0.5)
    assert index._fitted_count >= 1200  # grown 4x since the first fit at least once
    assert index.search_stats()["two_stage"] > 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    count=st.integers(1, 700),
    k=st.integers(1, 50),
    dtype=st.sampled_from([np.float32, np.float16]),
    max_distance=st.one_of(st.none(), st.floats(0.0, 1.5)),
    refit=st.booleans(),
)
def test_property_search_equals_brute_force(
    seed: int, count: int, k: int, dtype: type, max_distance: float | None, refit: bool
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        force_two_stage(monkeypatch)
        rng = np.random.default_rng(seed)
        kind = seed % 3
        matrix = (
            structured(count, seed, noise=0.01 * (kind == 1)) if kind else encodings(count, seed)
        )
        index, _ = build(matrix, dtype)
        for name in rng.choice(index.ids(), count // 5, replace=False):
            index.remove(str(name))
        if refit:
            index.refit()
        if len(index) == 0:
            assert index.search(matrix[0], k=k) == []
            return
        for probe in probes_for(matrix, seed, count=1):
            assert_exact(index, probe, k, max_distance)


def test_projection_can_be_disabled() -> None:
    matrix = encodings(2000, seed=12)
    index = FaceIndex(dtype=np.float16, projection_dim=0)
    index.add_many([f"t{i}" for i in range(2000)], matrix)
    index.refit()  # no-op
    assert index.projection.shape == (DIM, 0)
    assert index.nbytes == FaceIndex.estimate_nbytes(
        index.capacity, dtype=np.float16, projection_dim=0
    )
    for probe in probes_for(matrix, seed=13, count=2):
        assert_exact(index, probe, 10)
    check_internal_consistency(index)


def test_huge_float16_probe_does_not_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    force_two_stage(monkeypatch)
    matrix = encodings(1500, seed=14)
    index, _ = build(matrix, np.float16)
    probe = np.full(DIM, 3e4, dtype=np.float32)  # times 2**112 would overflow float32
    probe[::2] = -1e5
    assert_exact(index, probe, 5)


def test_max_distance_is_inclusive_on_exact_distances() -> None:
    matrix = encodings(300, seed=15)
    index, ids = build(matrix)
    probe = matrix[7] + 0.01
    exact = float(np.linalg.norm(matrix[7].astype(np.float64) - probe.astype(np.float64)))
    hits = index.search(probe, k=3, max_distance=exact)
    assert [hit.template_id for hit in hits] == [ids[7]] and hits[0].distance == exact
    assert index.search(probe, k=3, max_distance=np.nextafter(exact, 0.0)) == []


# ---------------------------------------------------------------- id table
@settings(max_examples=40, deadline=None)
@given(
    operations=st.lists(
        st.tuples(st.sampled_from(["add", "remove", "batch"]), st.integers(0, 300)),
        min_size=1,
        max_size=150,
    )
)
def test_id_table_matches_a_dict(operations: list[tuple[str, int]]) -> None:
    index = FaceIndex(dim=4, capacity=1)
    model: dict[str, int] = {}
    vector = np.ones(4, dtype=np.float32)
    for action, key in operations:
        if action == "add":
            index.add(f"id-{key}", vector * key)
            model[f"id-{key}"] = key
        elif action == "batch":
            names = [f"id-{key + j}" for j in range(0, 40, 3)]
            index.add_many(names, np.outer(np.arange(len(names)), vector))
            model.update({name: j for j, name in enumerate(names)})
        else:
            assert index.discard(f"id-{key}") is (model.pop(f"id-{key}", None) is not None)
        assert len(index) == len(model)
    check_internal_consistency(index)
    assert set(index.ids()) == set(model)
    for key in range(0, 350):
        assert (f"id-{key}" in index) is (f"id-{key}" in model)
    assert 123 not in index  # non-string keys are simply absent
    for name, value in model.items():
        np.testing.assert_array_equal(index.get(name), vector * value)
    with pytest.raises(KeyError):
        index.get("id-missing")
