"""In-memory 1:N index of face templates with exact, banded top-k search.

Storage
    Templates live in one preallocated row-major matrix (float32, or float16 to halve memory)
    with their squared norms. Next to it the index keeps a *projection*: an orthonormal basis
    ``P`` (``dim x m``, ``m = 32`` for 128-d templates), a centre ``c`` and, per template, the
    float32 projected vector ``y = P^T (w - c)`` with its squared norm. Ids map to rows
    through a compact open-addressing table (16 bytes per template instead of ~60 for a dict
    of int objects) next to a plain list of the id strings. Adds and removals keep every
    array in step in O(1) amortised time (capacity doubling; removal swaps the last row into
    the hole), without any rebuild. At 1M float16 templates the buffers take ~409 MB and the
    36-character id strings ~100 MB more.

Exact two-stage search
    An orthonormal projection is a contraction, ``|P^T (w - q)| <= |w - q|``, so the
    projected distance is a lower bound of the true one. A search

    1. computes the projected squared distance of every row (one ``n x m`` float32
       matrix-vector product: a quarter of the bytes of a float16 scan, no widening);
    2. takes about ``max(64, 8k)`` rows with the smallest projected distance (a cut-off
       estimated on an evenly spaced sample, then one ``np.flatnonzero`` pass; exact
       ``np.argpartition`` when the estimate misses) and computes their exact distances;
       ``tau`` is the k-th best of those (or ``max_distance`` if smaller);
    3. re-ranks exactly every row whose lower bound is at most ``tau``: any row left out is
       provably farther than ``tau``, so the result is the exact top-k. This is the "widen
       K' until the (K'+1)-th lower bound reaches the k-th exact distance" rule, jumping
       straight to the final width instead of doubling.

    Exact distances are computed in float64 from the stored values (float16 rows are widened
    exactly), so the returned distances equal a brute-force evaluation to ~1e-15. The lower
    bounds are compared with a rigorous rounding margin (float32 arithmetic, the float32
    basis' spectral norm), far below 1e-3 for face templates.

    Correctness never depends on ``P``; speed does. Before enough templates are stored, ``P``
    is a fixed random orthonormal basis (seeded QR). When the index first holds
    ``_FIT_MIN_ROWS`` templates, when ``from_pairs`` finishes, and whenever the index has
    grown 4x since the last fit, ``refit`` computes ``P`` by PCA on an evenly spaced sample of
    at most 50,000 templates and re-projects every row in place (O(n * dim * m); ~0.5 s at
    1M, holding the lock; amortised O(1) per add). ``refit`` may also be called explicitly,
    e.g. after a bulk replacement of the gallery. New templates are projected with the
    current basis (outside the lock; redone if a refit intervened).

    How much step 3 prunes depends on the data: it works when most of the spread between
    templates lies in ``m`` directions. On encodings whose variance is spread over many more
    directions it prunes little and the fallback below takes over.

    If more than ``max(4096, n // 16)`` rows survive step 3, the projection is not
    discriminative for this data and the search falls back to a full scan (the same
    candidate/exact-re-rank scheme on the ``|w|^2 - 2 w.q`` expansion, so it is exact too).
    A running success score turns the projection stage off after ~5 failures in a row
    (retried every 16th search and after each refit), so unprunable data costs about one
    full scan. Indexes below ``_TWO_STAGE_MIN_ROWS`` rows always use the full scan. The
    scheme applies to float32 and float16 storage alike. ``projection_dim=0`` disables it.
    ``search_stats()`` counts successes, fallbacks and exactly re-ranked rows.

float16 storage
    numpy has no fast float16 -> float32 cast, so the full scan widens each chunk with an
    exact integer bit trick (sign-extend, shift the 15 exponent/mantissa bits into float32
    position, clear the sign-extension bits); the result equals the stored value times
    2**-112, which is folded into the probe. Subnormal float16 values (|x| < 6.1e-5) are stored
    as zero so the trick stays exact. Rows are scanned in cache-sized blocks; large indexes are
    split over a small thread pool (numpy and BLAS release the GIL).

Adds, removals, refits and searches hold one re-entrant lock, so a search always sees a
consistent snapshot.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["BandThresholds", "Candidate", "FaceIndex"]

DEFAULT_DIM = 128
DEFAULT_PROJECTION_DIM = 32
_BLOCK_BYTES = 1 << 20  # one scan block: cache-sized, and below BLAS threading
_PARALLEL_MIN_ROWS = 131_072
_BATCH_ROWS = 65_536
_PREPARE_ROWS = 2_048  # float64 temporaries of 2 MiB: small enough for mmap, no heap residue
_EXACT_ROWS = 1_024  # rows widened to float64 at a time for exact distances (1 MiB)
_EXACT_ALL_ROWS = 1_024  # up to this many rows: exact distances for every row
_TWO_STAGE_MIN_ROWS = 4_096  # below this, the full scan is about as fast
_FIT_MIN_ROWS = 4_096  # first PCA fit when the index reaches this size
_REFIT_GROWTH = 4  # refit when the index has grown this much since the last fit
_PCA_SAMPLE_ROWS = 50_000
_FIRST_CANDIDATES = 64  # step 2 takes max(_FIRST_CANDIDATES, _CANDIDATES_PER_K * k) rows
_CANDIDATES_PER_K = 8
_SAMPLE_ROWS = 65_536  # sample size for the step-2 score cut-off
_SINGLE_THREAD_MACS = 1 << 18  # OpenBLAS runs smaller GEMMs (m * n * k) on one thread
_RERANK_MIN_CAP = 4_096  # step 3 gives up above max(_RERANK_MIN_CAP, n // _RERANK_SHARE)
_RERANK_SHARE = 16
_SKIP_SCORE = 0.25  # projection stage skipped while its success score is below this ...
_RETRY_EVERY = 16  # ... except on every 16th search
_PROJECTION_SEED = 20_240_601
_UNIT = 2.0**-24  # float32 unit roundoff
_F16_SCALE = np.float32(2.0**112)  # float16 bits shifted into float32 position = value * 2**-112
_F16_SAFE_PROBE = 2.0**14  # larger probe values could overflow once scaled by 2**112
_F16_KEEP = np.array([0x8FFFFFFF], dtype=np.uint32).view(np.int32)[0]
_F16_SMALLEST_NORMAL = np.finfo(np.float16).smallest_normal
_SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))

_POOL_WORKERS = min(os.cpu_count() or 1, 4)
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


@dataclass(frozen=True, slots=True)
class BandThresholds:
    """Distance limits (inclusive) of the match bands; above ``low`` the band is ``NONE``."""

    high: float = 0.40
    medium: float = 0.50
    low: float = 0.60

    def __post_init__(self) -> None:
        if not 0.0 <= self.high <= self.medium <= self.low:
            raise ValueError("bands must satisfy 0 <= high <= medium <= low")

    def band(self, distance: float) -> str:
        """``HIGH``, ``MEDIUM``, ``LOW`` or ``NONE`` for a Euclidean distance."""
        if distance <= self.high:
            return "HIGH"
        if distance <= self.medium:
            return "MEDIUM"
        if distance <= self.low:
            return "LOW"
        return "NONE"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One search hit."""

    template_id: str
    distance: float
    band: str


def _worker_pool() -> ThreadPoolExecutor | None:
    """Process-wide pool for scanning large indexes (None on a single core)."""
    global _pool
    if _POOL_WORKERS < 2:
        return None
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_POOL_WORKERS, thread_name_prefix="faceindex")
    return _pool


def _block_rows(matrix: np.ndarray) -> int:
    return max(256, _BLOCK_BYTES // (4 * max(1, matrix.shape[1])))


def _scan_f32(
    matrix: np.ndarray,
    probe: np.ndarray,
    norms: np.ndarray | None,
    out: np.ndarray,
    lo: int,
    hi: int,
) -> None:
    """``out[lo:hi] = matrix[lo:hi] @ probe (+ norms[lo:hi])`` in single-threaded BLAS blocks."""
    step = _block_rows(matrix)
    for start in range(lo, hi, step):
        stop = min(start + step, hi)
        np.dot(matrix[start:stop], probe, out=out[start:stop])
        if norms is not None:
            out[start:stop] += norms[start:stop]


def _scan_f16(
    matrix: np.ndarray,
    probe: np.ndarray,
    norms: np.ndarray | None,
    out: np.ndarray,
    lo: int,
    hi: int,
) -> None:
    """``out[lo:hi] = matrix[lo:hi] @ probe (+ norms)`` for a float16 ``matrix``, widened
    block by block. ``probe`` must already be multiplied by 2**112 (see the module docstring).
    """
    step = _block_rows(matrix)
    bits = matrix.view(np.int16)
    buffer = np.empty((min(step, max(hi - lo, 1)), matrix.shape[1]), dtype=np.int32)
    as_float = buffer.view(np.float32)
    for start in range(lo, hi, step):
        stop = min(start + step, hi)
        block = buffer[: stop - start]
        block[...] = bits[start:stop]  # sign-extend int16 -> int32
        block <<= 13  # exponent+mantissa into float32 position
        block &= _F16_KEEP  # drop sign-extension bits 28-30, keep the sign
        np.dot(as_float[: stop - start], probe, out=out[start:stop])
        if norms is not None:
            out[start:stop] += norms[start:stop]


def _matvec(
    matrix: np.ndarray, probe: np.ndarray, out: np.ndarray, norms: np.ndarray | None = None
) -> None:
    """``out = matrix @ probe (+ norms)`` (float32 ``probe``), split over the pool when large.

    Scanning in fixed blocks keeps every BLAS call single-threaded: OpenBLAS's own threads
    spin-wait and stall badly when the cores are shared with a web server or database.
    """
    if matrix.dtype == np.float16:
        scan, probe = _scan_f16, probe * _F16_SCALE
    else:
        scan = _scan_f32
    rows = matrix.shape[0]
    pool = _worker_pool() if rows >= _PARALLEL_MIN_ROWS else None
    if pool is None:
        scan(matrix, probe, norms, out, 0, rows)
        return
    block = _block_rows(matrix)
    step = -(-rows // _POOL_WORKERS)
    step = -(-step // block) * block
    futures = [
        pool.submit(scan, matrix, probe, norms, out, lo, min(lo + step, rows))
        for lo in range(0, rows, step)
    ]
    for future in futures:
        future.result()


def _ceil32(value: float) -> np.float32:
    """The smallest float32 >= ``value``: comparing float32 scores with it is exact."""
    rounded = np.float32(value)
    if float(rounded) < value:
        rounded = np.nextafter(rounded, np.float32(np.inf))
    return rounded


def _small_matmul(left: np.ndarray, right: np.ndarray, out: np.ndarray) -> None:
    """``out = left @ right`` in row blocks below OpenBLAS's threading threshold: its own
    threads make mid-sized GEMMs several times slower on shared cores."""
    step = max(1, _SINGLE_THREAD_MACS // max(1, left.shape[1] * right.shape[1]))
    for start in range(0, left.shape[0], step):
        np.matmul(left[start : start + step], right, out=out[start : start + step])


def _random_basis(dim: int, m: int) -> np.ndarray:
    """A fixed orthonormal ``dim x m`` basis (QR of a seeded Gaussian matrix)."""
    gaussian = np.random.default_rng(_PROJECTION_SEED).standard_normal((dim, m))
    basis, upper = np.linalg.qr(gaussian)
    return basis * np.where(np.diag(upper) < 0, -1.0, 1.0)


class _RowTable:
    """Compact ``id -> row`` map: open addressing (linear probing) over Python's str hash.

    A dict of 1M string keys to row numbers costs ~60 MB (the dict plus one int object per
    row); this costs 16 bytes per row: the row's hash (int64) and an int32 slot table kept at
    most half full. Keys are confirmed against the shared ``ids`` list (row -> id), whose
    strings are the only per-row Python objects. Batch lookups and inserts are vectorised;
    removal uses backward-shift deletion, so there are no tombstones. Not thread-safe by
    itself: the owning index holds its lock.
    """

    def __init__(self, ids: list[str], capacity: int) -> None:
        self._ids = ids
        self._hashes = np.empty(capacity, dtype=np.int64)
        self._slots = np.zeros(0, dtype=np.int32)
        self._mask = 0
        self.resize(capacity)

    @property
    def nbytes(self) -> int:
        return self._hashes.nbytes + self._slots.nbytes

    def resize(self, capacity: int) -> None:
        """Room for ``capacity`` rows (rebuilds the slot table when its size changes)."""
        count = len(self._ids)
        hashes = np.empty(capacity, dtype=np.int64)
        hashes[:count] = self._hashes[:count]
        self._hashes = hashes
        size = 16
        while size < 2 * capacity:
            size *= 2
        if size != self._slots.size:
            self._slots = np.zeros(size, dtype=np.int32)
            self._mask = size - 1
            self._place(np.arange(count), hashes[:count])

    def find(self, key: str) -> int:
        """The row of ``key``, or -1."""
        hashed = hash(key)
        slots, hashes, ids, mask = self._slots, self._hashes, self._ids, self._mask
        slot = hashed & mask
        while True:
            entry = int(slots[slot])
            if entry == 0:
                return -1
            if hashes[entry - 1] == hashed and ids[entry - 1] == key:
                return entry - 1
            slot = (slot + 1) & mask

    def find_many(self, keys: Sequence[str]) -> np.ndarray:
        """Rows of ``keys`` (-1 where absent), vectorised over the batch."""
        hashed = np.fromiter((hash(key) for key in keys), dtype=np.int64, count=len(keys))
        found = np.full(len(keys), -1, dtype=np.int64)
        position = hashed & self._mask
        pending = np.arange(len(keys))
        while pending.size:
            entries = self._slots[position[pending]].astype(np.int64)
            occupied = entries != 0
            pending, entries = pending[occupied], entries[occupied] - 1
            same = self._hashes[entries] == hashed[pending]
            matched = np.zeros(pending.size, dtype=bool)
            for i in np.flatnonzero(same):
                if self._ids[entries[i]] == keys[pending[i]]:
                    found[pending[i]] = entries[i]
                    matched[i] = True
            pending = pending[~matched]
            position[pending] = (position[pending] + 1) & self._mask
        return found

    def insert_many(self, start: int, keys: Sequence[str]) -> None:
        """Register rows ``start..start+len(keys)-1`` (keys absent and distinct)."""
        hashed = np.fromiter((hash(key) for key in keys), dtype=np.int64, count=len(keys))
        self._hashes[start : start + len(keys)] = hashed
        self._place(np.arange(start, start + len(keys)), hashed)

    def _place(self, rows: np.ndarray, hashed: np.ndarray) -> None:
        position = hashed & self._mask
        pending = np.arange(rows.size)
        while pending.size:
            slots = position[pending]
            free = np.flatnonzero(self._slots[slots] == 0)
            claimed, first = np.unique(slots[free], return_index=True)
            winners = free[first]
            self._slots[claimed] = rows[pending[winners]] + 1
            placed = np.zeros(pending.size, dtype=bool)
            placed[winners] = True
            pending = pending[~placed]
            position[pending] = (position[pending] + 1) & self._mask

    def _slot_of(self, row: int) -> int:
        slot = int(self._hashes[row]) & self._mask
        while int(self._slots[slot]) != row + 1:
            slot = (slot + 1) & self._mask
        return slot

    def remove(self, row: int) -> None:
        """Forget ``row`` (backward-shift deletion). The caller then calls ``move``."""
        slots, mask = self._slots, self._mask
        hole = self._slot_of(row)
        slots[hole] = 0
        slot = hole
        while True:
            slot = (slot + 1) & mask
            entry = int(slots[slot])
            if entry == 0:
                return
            home = int(self._hashes[entry - 1]) & mask
            # the entry may fill the hole unless its home lies cyclically in (hole, slot]
            if (slot - home) & mask >= (slot - hole) & mask:
                slots[hole] = entry
                slots[slot] = 0
                hole = slot

    def move(self, source: int, target: int) -> None:
        """Row ``source`` now lives at row ``target`` (swap-with-last removal)."""
        self._slots[self._slot_of(source)] = target + 1
        self._hashes[target] = self._hashes[source]


class FaceIndex:
    """Thread-safe 1:N index of fixed-length face templates keyed by string ids.

    ``add`` on an existing id replaces its template. ``dtype`` is ``float32`` (default) or
    ``float16`` (half the memory; distances differ from float32 by well under 0.01).
    ``projection_dim`` is the width ``m`` of the pruning projection (default ``min(32,
    dim // 4)``; 0 disables the two-stage search). Searches are exact whatever its value.
    """

    def __init__(
        self,
        dim: int = DEFAULT_DIM,
        *,
        dtype: npt.DTypeLike = np.float32,
        bands: BandThresholds | None = None,
        capacity: int = 1024,
        projection_dim: int | None = None,
    ) -> None:
        self._dtype = np.dtype(dtype)
        if self._dtype not in _SUPPORTED_DTYPES:
            raise ValueError("dtype must be float32 or float16")
        if dim <= 0:
            raise ValueError("dim must be positive")
        self.dim = dim
        self._m = self.default_projection_dim(dim) if projection_dim is None else projection_dim
        if not 0 <= self._m <= dim:
            raise ValueError("projection_dim must be between 0 and dim")
        self.bands = bands or BandThresholds()
        self._min_capacity = max(1, capacity)
        self._lock = threading.RLock()
        self._matrix = np.empty((self._min_capacity, dim), dtype=self._dtype)
        self._sqnorms = np.empty(self._min_capacity, dtype=np.float32)
        self._proj = np.empty((self._min_capacity, self._m), dtype=np.float32)
        self._pnorms = np.empty(self._min_capacity if self._m else 0, dtype=np.float32)
        self._ids: list[str] = []
        self._rows = _RowTable(self._ids, self._min_capacity)
        # Upper bounds of |w|^2 and |y|^2 over stored rows (only grow between refits).
        self._max_sqnorm = 0.0
        self._max_pnorm = 0.0
        self._fitted_count = 0  # rows at the last PCA fit; 0 = still the random basis
        self._prune_score = 1.0
        self._stats = {"searches": 0, "two_stage": 0, "fallbacks": 0, "reranked": 0}
        self._basis = np.empty((dim, self._m), dtype=np.float32)
        self._basis64 = np.empty((dim, self._m), dtype=np.float64)
        self._center = np.zeros(dim, dtype=np.float64)
        self._basis_state = (self._basis64, self._center)
        self._sigma = 1.0
        if self._m:
            self._set_basis(_random_basis(dim, self._m), np.zeros(dim))

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_pairs(
        cls,
        pairs: Iterable[tuple[str, np.ndarray | Sequence[float]]],
        *,
        dim: int = DEFAULT_DIM,
        dtype: npt.DTypeLike = np.float32,
        bands: BandThresholds | None = None,
        projection_dim: int | None = None,
    ) -> FaceIndex:
        """Build an index from ``(template_id, vector)`` pairs, consumed in batches.

        An index of ``_FIT_MIN_ROWS`` templates or more ends with a PCA fit on its content.
        """
        index = cls(dim, dtype=dtype, bands=bands, projection_dim=projection_dim)
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        for template_id, vector in pairs:
            ids.append(template_id)
            vectors.append(np.asarray(vector, dtype=np.float32))
            if len(ids) >= _BATCH_ROWS:
                index.add_many(ids, np.stack(vectors))
                ids, vectors = [], []
        if ids:
            index.add_many(ids, np.stack(vectors))
        with index._lock:
            if len(index) >= _FIT_MIN_ROWS and index._fitted_count != len(index):
                index._refit_locked()
        return index

    @staticmethod
    def default_projection_dim(dim: int = DEFAULT_DIM) -> int:
        return min(DEFAULT_PROJECTION_DIM, dim // 4)

    @staticmethod
    def estimate_nbytes(
        count: int,
        dim: int = DEFAULT_DIM,
        dtype: npt.DTypeLike = np.float32,
        projection_dim: int | None = None,
    ) -> int:
        """Bytes of the numpy buffers for ``count`` templates (reserved exactly)."""
        m = FaceIndex.default_projection_dim(dim) if projection_dim is None else projection_dim
        per_row = dim * np.dtype(dtype).itemsize + 4 + (m * 4 + 4 if m else 0) + 8
        fixed = dim * m * (4 + 8) + dim * 8  # basis (float32 and float64) and centre
        slots = 16
        while slots < 2 * count:
            slots *= 2
        return count * per_row + fixed + 4 * slots  # + id table: row hashes and slots

    # -- introspection --------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def capacity(self) -> int:
        return self._matrix.shape[0]

    @property
    def projection_dim(self) -> int:
        return self._m

    @property
    def projection(self) -> np.ndarray:
        """A copy of the current orthonormal basis (``dim x projection_dim``, float32)."""
        with self._lock:
            return self._basis.copy()

    @property
    def nbytes(self) -> int:
        """Bytes held by the numpy buffers (templates, norms, projected templates, basis,
        id table). The id strings and the list holding them come on top: ~96 bytes per
        template for 36-character ids.
        """
        arrays = (self._matrix, self._sqnorms, self._proj, self._pnorms)
        fixed = self._basis.nbytes + self._basis64.nbytes + self._center.nbytes
        return sum(array.nbytes for array in arrays) + fixed + self._rows.nbytes

    def search_stats(self) -> dict[str, int]:
        """Counters: searches, two-stage searches that succeeded, fallbacks to a full scan,
        and rows whose exact distance was computed."""
        with self._lock:
            return dict(self._stats)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, template_id: object) -> bool:
        if not isinstance(template_id, str):
            return False
        with self._lock:
            return self._rows.find(template_id) >= 0

    def ids(self) -> list[str]:
        """A copy of the ids, in storage order."""
        with self._lock:
            return list(self._ids)

    def get(self, template_id: str) -> np.ndarray:
        """The stored template (as float32) for ``template_id``; KeyError if absent."""
        with self._lock:
            return self._matrix[self._row(template_id)].astype(np.float32)

    # -- mutation ---------------------------------------------------------------------------
    def reserve(self, capacity: int) -> None:
        """Make room for ``capacity`` templates in total without further reallocation."""
        with self._lock:
            if capacity > self.capacity:
                self._resize(capacity)

    def add(self, template_id: str, vector: np.ndarray | Sequence[float]) -> None:
        """Insert or replace one template."""
        self.add_many([template_id], np.asarray(vector, dtype=np.float32).reshape(1, -1))

    def add_many(self, template_ids: Sequence[str], matrix: np.ndarray) -> None:
        """Insert or replace several templates (one row of ``matrix`` per id)."""
        ids = list(template_ids)
        rows, norms = self._prepare(matrix, len(ids))
        self._check_ids(ids)
        with self._lock:
            basis = self._basis_state
        projected, pnorms = self._project(rows, basis)  # outside the lock: may be long
        with self._lock:
            if basis is not self._basis_state:  # a refit happened meanwhile
                projected, pnorms = self._project(rows, self._basis_state)
            existing = self._rows.find_many(ids)
            fresh = np.flatnonzero(existing < 0)
            for i in np.flatnonzero(existing >= 0):
                row = int(existing[i])
                self._matrix[row] = rows[i]
                self._sqnorms[row] = norms[i]
                if self._m:
                    self._proj[row] = projected[i]
                    self._pnorms[row] = pnorms[i]
            if len(fresh) == len(ids):
                self._append(ids, rows, norms, projected, pnorms)
            elif len(fresh):
                picked = [ids[i] for i in fresh]
                self._append(picked, rows[fresh], norms[fresh], projected[fresh], pnorms[fresh])
            if len(ids):
                self._max_sqnorm = max(self._max_sqnorm, float(norms.max()))
                if self._m:
                    self._max_pnorm = max(self._max_pnorm, float(pnorms.max()))
            self._maybe_refit()

    def remove(self, template_id: str) -> None:
        """Delete a template (KeyError if absent); the last row moves into the hole."""
        with self._lock:
            row = self._row(template_id)
            self._rows.remove(row)
            last = len(self._ids) - 1
            if row != last:
                self._rows.move(last, row)
                self._matrix[row] = self._matrix[last]
                self._sqnorms[row] = self._sqnorms[last]
                if self._m:
                    self._proj[row] = self._proj[last]
                    self._pnorms[row] = self._pnorms[last]
                self._ids[row] = self._ids[last]
            self._ids.pop()
            if self.capacity > self._min_capacity and len(self._ids) < self.capacity // 4:
                self._resize(max(self._min_capacity, self.capacity // 2))

    def discard(self, template_id: str) -> bool:
        """Delete a template if present; return whether it was."""
        with self._lock:
            if template_id not in self:
                return False
            self.remove(template_id)
            return True

    def refit(self) -> None:
        """Recompute the projection by PCA on (a sample of) the stored templates and
        re-project every row. Never changes search results, only their speed."""
        with self._lock:
            self._refit_locked()

    # -- search -------------------------------------------------------------------------------
    def search(
        self,
        probe: np.ndarray | Sequence[float],
        k: int = 5,
        max_distance: float | None = None,
    ) -> list[Candidate]:
        """The ``k`` nearest templates to ``probe``, nearest first (exact).

        ``max_distance`` drops candidates farther than that (inclusive limit).
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        query = self._prepare_probe(probe)
        limit = math.inf
        if max_distance is not None:
            if not max_distance >= 0:
                return []
            limit = float(max_distance) ** 2 * (1.0 + 1e-12)  # the final test is on distances
        with self._lock:
            if not self._ids:
                return []
            rows, squared = self._nearest(query, k, limit)
            ids = [self._ids[row] for row in rows]
        distances = np.sqrt(squared)
        return [
            Candidate(template_id=template_id, distance=float(d), band=self.bands.band(float(d)))
            for template_id, d in zip(ids, distances, strict=True)
            if max_distance is None or d <= max_distance
        ]

    # -- search internals (caller holds the lock) -------------------------------------------
    def _nearest(self, query: np.ndarray, k: int, limit: float) -> tuple[np.ndarray, np.ndarray]:
        """Rows and exact squared distances of the ``k`` nearest rows, nearest first."""
        count = len(self._ids)
        q64 = query.astype(np.float64)
        self._stats["searches"] += 1
        found: tuple[np.ndarray, np.ndarray] | None
        if k >= count or count <= _EXACT_ALL_ROWS:
            rows = np.arange(count)
            found = rows, self._exact(rows, q64)
        else:
            found = None
            if self._use_two_stage(count):
                cap = max(_RERANK_MIN_CAP, count // _RERANK_SHARE)
                found = self._two_stage(query, q64, k, limit, cap)
                self._prune_score = 0.75 * self._prune_score + (0.25 if found else 0.0)
                self._stats["two_stage" if found else "fallbacks"] += 1
            if found is None:
                found = self._full_scan(query, q64, k, limit)
        rows, squared = found
        order = np.lexsort((rows, squared))[:k]
        return rows[order], squared[order]

    def _use_two_stage(self, count: int) -> bool:
        if not self._m or count < _TWO_STAGE_MIN_ROWS:
            return False
        return self._prune_score >= _SKIP_SCORE or self._stats["searches"] % _RETRY_EVERY == 0

    def _two_stage(
        self, query: np.ndarray, q64: np.ndarray, k: int, limit: float, cap: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Candidates from projected lower bounds, or None when too many survive."""
        count = len(self._ids)
        projected = ((q64 - self._center) @ self._basis64).astype(np.float32)
        probe_sq = float(np.dot(projected.astype(np.float64), projected.astype(np.float64)))
        partial = np.empty(count, dtype=np.float32)  # |y_w|^2 - 2 y_w.y_q
        _matvec(self._proj[:count], projected * np.float32(-2.0), partial, self._pnorms[:count])
        # Rounding margins, with a = max |y_w|, b = |y_q|:
        # * the float32 ``partial + b^2`` (norm rounded once, length-m dot, one addition) is
        #   within (m + 3) u (a + b)^2 of |y_w - y_q|^2 for the stored float32 y_w and y_q;
        # * those are the float64 projections rounded to float32 (|error| <= u a and u b;
        #   the float64 products themselves err by < 1e-12 |w - c|), and the true projection
        #   is a contraction by sigma (spectral norm of the float32 basis, ~1 + 1e-7), so
        #   |y_w - y_q| <= sigma |w - q| + err_vec.
        # A row whose ``partial`` exceeds threshold(tau^2) is therefore farther than tau.
        norms_sum = math.sqrt(self._max_pnorm) + math.sqrt(probe_sq)
        spread = (
            math.sqrt(self._max_sqnorm)
            + float(np.linalg.norm(self._center))
            + float(np.linalg.norm(q64))
        )
        err_sq = 4.0 * (self._m + 4) * _UNIT * norms_sum**2 + 1e-30
        err_vec = 1.01 * _UNIT * norms_sum + 1e-12 * spread + 1e-30
        sigma = self._sigma

        def threshold(tau_sq: float) -> float:
            return (sigma * math.sqrt(tau_sq) + err_vec) ** 2 + err_sq - probe_sq

        return self._candidates(partial, threshold, k, limit, q64, cap)

    def _full_scan(
        self, query: np.ndarray, q64: np.ndarray, k: int, limit: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates from the float32 expansion ``|w|^2 - 2 w.q`` of every row."""
        count = len(self._ids)
        if self._dtype == np.float16 and float(np.abs(query).max()) > _F16_SAFE_PROBE:
            rows = np.arange(count)  # the 2**112 scaling could overflow: exact everything
            return rows, self._exact(rows, q64)
        partial = np.empty(count, dtype=np.float32)
        _matvec(self._matrix[:count], query * np.float32(-2.0), partial, self._sqnorms[:count])
        probe_sq = float(np.dot(q64, q64))
        # The float32 ``partial + |q|^2`` (norm rounded once, exact widening, length-dim dot,
        # one addition) is within (dim + 3) u (|w| + |q|)^2 of |w - q|^2.
        norms_sum = math.sqrt(self._max_sqnorm) + math.sqrt(probe_sq)
        err_sq = 4.0 * (self.dim + 4) * _UNIT * norms_sum**2 + 1e-30

        def threshold(tau_sq: float) -> float:
            return tau_sq + err_sq - probe_sq

        found = self._candidates(partial, threshold, k, limit, q64, cap=count)
        assert found is not None
        return found

    def _candidates(
        self,
        partial: np.ndarray,
        threshold: Callable[[float], float],
        k: int,
        limit: float,
        q64: np.ndarray,
        cap: int,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Rows (with exact squared distances) that provably contain the exact top-k.

        ``partial`` holds a per-row score; ``threshold(tau_sq)`` is the score at or below
        which a row may lie within ``sqrt(tau_sq)`` of the probe. None if more than ``cap``
        rows qualify.
        """
        count = partial.shape[0]
        first = min(count, max(_FIRST_CANDIDATES, _CANDIDATES_PER_K * k))
        if first >= count:
            rows = np.arange(count)
            return rows, self._exact(rows, q64)
        # Any set of rows with small scores gives an upper bound tau of the k-th distance;
        # the better the set, the tighter tau. A score cut-off estimated on an evenly spaced
        # sample selects ~``first`` rows with one comparison pass (cheaper than argpartition).
        best = self._lowest(partial, first, k)
        tau_sq = min(float(np.partition(self._exact(best, q64), k - 1)[k - 1]), limit)
        # Every row of the exact top-k (or within ``limit``) has a score <= threshold(tau_sq).
        rows = np.flatnonzero(partial <= _ceil32(threshold(tau_sq)))
        if rows.size > cap:
            return None
        return rows, self._exact(rows, q64)

    @staticmethod
    def _lowest(scores: np.ndarray, wanted: int, least: int) -> np.ndarray:
        """At least ``least`` (about ``wanted``) rows with the lowest ``scores``."""
        count = scores.shape[0]
        step = max(1, count // _SAMPLE_ROWS)
        if step > 1:
            sample = scores[::step].copy()
            rank = min(sample.size - 1, -(-wanted // step))
            cutoff = np.partition(sample, rank)[rank]
            rows = np.flatnonzero(scores <= cutoff)
            if least <= rows.size <= 4 * wanted:
                return rows
            if rows.size > 4 * wanted:
                return rows[np.argpartition(scores[rows], wanted - 1)[:wanted]]
        return np.argpartition(scores, wanted - 1)[:wanted]

    def _exact(self, rows: np.ndarray, q64: np.ndarray) -> np.ndarray:
        """Exact squared distances (float64, stored values widened exactly) of ``rows``."""
        self._stats["reranked"] += int(rows.size)
        out = np.empty(rows.size, dtype=np.float64)
        for start in range(0, rows.size, _EXACT_ROWS):
            stop = min(start + _EXACT_ROWS, rows.size)
            block = self._matrix[rows[start:stop]].astype(np.float64)
            block -= q64
            out[start:stop] = np.einsum("ij,ij->i", block, block)
        return out

    # -- projection internals ---------------------------------------------------------------
    def _set_basis(self, basis: np.ndarray, center: np.ndarray) -> None:
        self._basis = np.ascontiguousarray(basis, dtype=np.float32)
        self._basis64 = self._basis.astype(np.float64)
        self._center = np.asarray(center, dtype=np.float64).copy()
        self._basis_state = (self._basis64, self._center)
        # Spectral norm of the float32 basis: the contraction factor the bound really uses.
        norm = float(np.linalg.norm(self._basis64, 2)) if self._m else 1.0
        self._sigma = max(norm, 1.0) * (1.0 + 1e-12)

    def _project(
        self, rows: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Projected rows (float32, computed in float64) and their squared norms, with the
        current basis or the ``(basis64, centre)`` snapshot ``state``."""
        basis64, center = state or self._basis_state
        count = rows.shape[0]
        projected = np.empty((count, self._m), dtype=np.float32)
        norms = np.empty(count if self._m else 0, dtype=np.float32)
        if not self._m:
            return projected, norms
        for start in range(0, count, _PREPARE_ROWS):
            stop = min(start + _PREPARE_ROWS, count)
            block = rows[start:stop].astype(np.float64)
            block -= center
            exact = np.empty((stop - start, self._m))
            _small_matmul(block, basis64, exact)
            projected[start:stop] = exact
            wide = projected[start:stop].astype(np.float64)
            norms[start:stop] = np.einsum("ij,ij->i", wide, wide)
        return projected, norms

    def _maybe_refit(self) -> None:
        count = len(self._ids)
        if not self._m or count < _FIT_MIN_ROWS:
            return
        if self._fitted_count == 0 or count >= _REFIT_GROWTH * self._fitted_count:
            self._refit_locked()

    def _refit_locked(self) -> None:
        count = len(self._ids)
        if not self._m or count == 0:
            return
        sample = np.unique(np.linspace(0, count - 1, min(count, _PCA_SAMPLE_ROWS)).astype(int))
        total = np.zeros(self.dim)
        gram = np.zeros((self.dim, self.dim))
        part = np.empty((self.dim, self.dim))
        step = max(1, _SINGLE_THREAD_MACS // self.dim**2)
        for start in range(0, sample.size, _PREPARE_ROWS):
            block = self._matrix[sample[start : start + _PREPARE_ROWS]].astype(np.float64)
            total += block.sum(axis=0)
            for lo in range(0, block.shape[0], step):
                np.matmul(block[lo : lo + step].T, block[lo : lo + step], out=part)
                gram += part
        mean = total / sample.size
        covariance = gram / sample.size - np.outer(mean, mean)
        _, vectors = np.linalg.eigh(covariance)  # ascending eigenvalues
        self._set_basis(vectors[:, ::-1][:, : self._m], mean)
        self._max_pnorm = 0.0
        for start in range(0, count, _PREPARE_ROWS):
            stop = min(start + _PREPARE_ROWS, count)
            projected, norms = self._project(self._matrix[start:stop])
            self._proj[start:stop] = projected
            self._pnorms[start:stop] = norms
            self._max_pnorm = max(self._max_pnorm, float(norms.max()))
        self._fitted_count = count
        self._prune_score = 1.0

    # -- other internals --------------------------------------------------------------------
    def _prepare_probe(self, probe: np.ndarray | Sequence[float]) -> np.ndarray:
        query = np.asarray(probe, dtype=np.float32).reshape(-1)
        if query.shape != (self.dim,):
            raise ValueError(f"probe must have {self.dim} values, got {query.shape[0]}")
        if not np.all(np.isfinite(query)):
            raise ValueError("probe contains NaN or infinity")
        return np.ascontiguousarray(query)

    def _prepare(self, matrix: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Validate ``matrix``; return rows in storage dtype and their squared norms.

        Works in blocks so a large batch never needs more than one storage-dtype copy plus
        a few block-sized temporaries. Norms are computed in float64 and rounded once.
        """
        source = np.asarray(matrix)
        if source.ndim != 2 or source.shape != (count, self.dim):
            raise ValueError(f"expected a ({count}, {self.dim}) matrix, got {source.shape}")
        rows = np.empty((count, self.dim), dtype=self._dtype)
        norms = np.empty(count, dtype=np.float32)
        for start in range(0, count, _PREPARE_ROWS):
            stop = min(start + _PREPARE_ROWS, count)
            block = self._convert(source[start:stop])
            rows[start:stop] = block
            wide = block.astype(np.float64)
            norms[start:stop] = np.einsum("ij,ij->i", wide, wide)
        return rows, norms

    def _convert(self, block: np.ndarray) -> np.ndarray:
        """One block in storage dtype; refuses NaN, infinity and float16 overflow."""
        with np.errstate(over="ignore", invalid="ignore"):
            converted = block.astype(self._dtype)
        if not np.all(np.isfinite(converted)):
            raise ValueError("templates contain NaN/infinity or overflow the storage dtype")
        if self._dtype == np.float16:
            converted[np.abs(converted) < _F16_SMALLEST_NORMAL] = 0  # also turns -0 into +0
        return converted

    def _row(self, template_id: str) -> int:
        row = self._rows.find(template_id) if isinstance(template_id, str) else -1
        if row < 0:
            raise KeyError(template_id)
        return row

    @staticmethod
    def _check_ids(ids: list[str]) -> None:
        for template_id in ids:
            if not isinstance(template_id, str) or not template_id:
                raise ValueError("template ids must be non-empty strings")
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate template ids in one batch")

    def _append(
        self,
        ids: list[str],
        rows: np.ndarray,
        norms: np.ndarray,
        projected: np.ndarray,
        pnorms: np.ndarray,
    ) -> None:
        """Append new rows, doubling capacity when needed (caller holds the lock)."""
        start = len(self._ids)
        needed = start + len(ids)
        if needed > self.capacity:
            self._resize(max(needed, self.capacity * 2))
        self._matrix[start:needed] = rows
        self._sqnorms[start:needed] = norms
        if self._m:
            self._proj[start:needed] = projected
            self._pnorms[start:needed] = pnorms
        self._ids.extend(ids)
        self._rows.insert_many(start, ids)

    def _resize(self, capacity: int) -> None:
        """Reallocate the buffers to ``capacity`` rows, keeping the live ones."""
        count = len(self._ids)

        def moved(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
            fresh = np.empty(shape, dtype=array.dtype)
            fresh[:count] = array[:count]
            return fresh

        self._matrix = moved(self._matrix, (capacity, self.dim))
        self._sqnorms = moved(self._sqnorms, (capacity,))
        self._proj = moved(self._proj, (capacity, self._m))
        if self._m:
            self._pnorms = moved(self._pnorms, (capacity,))
        self._rows.resize(capacity)
