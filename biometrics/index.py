"""In-memory 1:N index of face templates with banded top-k search.

Templates live in one preallocated row-major matrix (float32, or float16 to halve memory)
with their squared norms precomputed in float32. A search evaluates
``|w|^2 - 2 w.q + |q|^2`` for every row with one matrix-vector product (``-2q`` folded into
the probe; evaluated in cache-sized row blocks), picks the ``k`` best rows with
``np.argpartition`` and takes square roots of those ``k`` only.

float16 storage: numpy has no fast float16 -> float32 cast, so each chunk of rows is widened
with an exact integer bit trick instead (sign-extend, shift the 15 exponent/mantissa bits
into float32 position, clear the sign-extension bits). The result equals the stored value
times 2**-112, which is folded into the probe. Subnormal float16 values (|x| < 6.1e-5) are
stored as zero so the trick stays exact and free of slow denormal arithmetic. Rows are scanned
in cache-sized blocks; large indexes are split over a small thread pool (numpy and BLAS
release the GIL).

Precision: the expansion cancels for near-identical vectors, so a distance close to 0 can be
off by up to ~1e-3 (float32 squared norms are ~2); around the decision thresholds (0.4-0.6)
the error is below 1e-5.

Adds and removals are O(1) amortised (capacity doubling; removal swaps the last row into the
hole) and thread-safe; a search holds the same re-entrant lock, so it always sees a
consistent snapshot.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["BandThresholds", "Candidate", "FaceIndex"]

DEFAULT_DIM = 128
_CHUNK_ROWS = 2048  # 1 MiB of float32 per block: cache-sized, and below BLAS threading
_PARALLEL_MIN_ROWS = 131_072
_BATCH_ROWS = 65_536
_PREPARE_ROWS = 8_192
_F16_SCALE = np.float32(2.0**112)  # float16 bits shifted into float32 position = value * 2**-112
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
    """Process-wide pool for scanning large float16 indexes (None on a single core)."""
    global _pool
    if _POOL_WORKERS < 2:
        return None
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_POOL_WORKERS, thread_name_prefix="faceindex")
    return _pool


def _scan_f32(matrix: np.ndarray, probe: np.ndarray, out: np.ndarray, lo: int, hi: int) -> None:
    """``out[lo:hi] = matrix[lo:hi] @ probe`` in blocks small enough for single-threaded BLAS."""
    for start in range(lo, hi, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, hi)
        np.dot(matrix[start:stop], probe, out=out[start:stop])


def _scan_f16(matrix: np.ndarray, probe: np.ndarray, out: np.ndarray, lo: int, hi: int) -> None:
    """``out[lo:hi] = matrix[lo:hi] @ probe`` for a float16 ``matrix``, widened block by block.

    ``probe`` must already be multiplied by 2**112 (see the module docstring).
    """
    bits = matrix.view(np.int16)
    buffer = np.empty((min(_CHUNK_ROWS, max(hi - lo, 1)), matrix.shape[1]), dtype=np.int32)
    as_float = buffer.view(np.float32)
    for start in range(lo, hi, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, hi)
        block = buffer[: stop - start]
        block[...] = bits[start:stop]  # sign-extend int16 -> int32
        block <<= 13  # exponent+mantissa into float32 position
        block &= _F16_KEEP  # drop sign-extension bits 28-30, keep the sign
        np.dot(as_float[: stop - start], probe, out=out[start:stop])


def _matvec(matrix: np.ndarray, probe: np.ndarray, out: np.ndarray) -> None:
    """``out = matrix @ probe`` (float32 ``probe``), split over the worker pool when large.

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
        scan(matrix, probe, out, 0, rows)
        return
    step = -(-rows // _POOL_WORKERS)
    step = -(-step // _CHUNK_ROWS) * _CHUNK_ROWS
    futures = [
        pool.submit(scan, matrix, probe, out, lo, min(lo + step, rows))
        for lo in range(0, rows, step)
    ]
    for future in futures:
        future.result()


class FaceIndex:
    """Thread-safe 1:N index of fixed-length face templates keyed by string ids.

    ``add`` on an existing id replaces its template. ``dtype`` is ``float32`` (default) or
    ``float16`` (half the memory; distances differ from float32 by well under 0.01).
    """

    def __init__(
        self,
        dim: int = DEFAULT_DIM,
        *,
        dtype: npt.DTypeLike = np.float32,
        bands: BandThresholds | None = None,
        capacity: int = 1024,
    ) -> None:
        self._dtype = np.dtype(dtype)
        if self._dtype not in _SUPPORTED_DTYPES:
            raise ValueError("dtype must be float32 or float16")
        if dim <= 0:
            raise ValueError("dim must be positive")
        self.dim = dim
        self.bands = bands or BandThresholds()
        self._min_capacity = max(1, capacity)
        self._lock = threading.RLock()
        self._matrix = np.empty((self._min_capacity, dim), dtype=self._dtype)
        self._sqnorms = np.empty(self._min_capacity, dtype=np.float32)
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_pairs(
        cls,
        pairs: Iterable[tuple[str, np.ndarray | Sequence[float]]],
        *,
        dim: int = DEFAULT_DIM,
        dtype: npt.DTypeLike = np.float32,
        bands: BandThresholds | None = None,
    ) -> FaceIndex:
        """Build an index from ``(template_id, vector)`` pairs, consumed in batches."""
        index = cls(dim, dtype=dtype, bands=bands)
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
        return index

    @staticmethod
    def estimate_nbytes(
        count: int, dim: int = DEFAULT_DIM, dtype: npt.DTypeLike = np.float32
    ) -> int:
        """Bytes of matrix + norms for ``count`` templates (reserved exactly)."""
        return count * dim * np.dtype(dtype).itemsize + count * np.dtype(np.float32).itemsize

    # -- introspection --------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def capacity(self) -> int:
        return self._matrix.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes held by the numpy buffers (matrix and norms, at current capacity).

        The id bookkeeping (a list and a dict of Python strings) comes on top: roughly
        100-150 bytes per template depending on id length.
        """
        return self._matrix.nbytes + self._sqnorms.nbytes

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._rows

    def ids(self) -> list[str]:
        """A copy of the ids, in storage order."""
        with self._lock:
            return list(self._ids)

    def get(self, template_id: str) -> np.ndarray:
        """The stored template (as float32) for ``template_id``; KeyError if absent."""
        with self._lock:
            return self._matrix[self._rows[template_id]].astype(np.float32)

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
            fresh = [i for i, template_id in enumerate(ids) if template_id not in self._rows]
            for i, template_id in enumerate(ids):
                row = self._rows.get(template_id)
                if row is not None:
                    self._matrix[row] = rows[i]
                    self._sqnorms[row] = norms[i]
            if len(fresh) == len(ids):
                self._append(ids, rows, norms)
            elif fresh:
                self._append([ids[i] for i in fresh], rows[fresh], norms[fresh])

    def remove(self, template_id: str) -> None:
        """Delete a template (KeyError if absent); the last row moves into the hole."""
        with self._lock:
            row = self._rows.pop(template_id)
            last = len(self._ids) - 1
            if row != last:
                moved = self._ids[last]
                self._matrix[row] = self._matrix[last]
                self._sqnorms[row] = self._sqnorms[last]
                self._ids[row] = moved
                self._rows[moved] = row
            self._ids.pop()
            if self.capacity > self._min_capacity and len(self._ids) < self.capacity // 4:
                self._resize(max(self._min_capacity, self.capacity // 2))

    def discard(self, template_id: str) -> bool:
        """Delete a template if present; return whether it was."""
        with self._lock:
            if template_id not in self._rows:
                return False
            self.remove(template_id)
            return True

    # -- search -------------------------------------------------------------------------------
    def search(
        self,
        probe: np.ndarray | Sequence[float],
        k: int = 5,
        max_distance: float | None = None,
    ) -> list[Candidate]:
        """The ``k`` nearest templates to ``probe``, nearest first.

        ``max_distance`` drops candidates farther than that (inclusive limit).
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        query = self._prepare_probe(probe)
        with self._lock:
            count = len(self._ids)
            if count == 0:
                return []
            partial = self._partial_distances(query, count)
            rows = self._best_rows(partial, k)
            squared = np.maximum(partial[rows] + np.float32(query @ query), 0.0)
            distances = np.sqrt(squared.astype(np.float64))
            ids = [self._ids[row] for row in rows]
        return [
            Candidate(template_id=template_id, distance=float(d), band=self.bands.band(float(d)))
            for template_id, d in zip(ids, distances, strict=True)
            if max_distance is None or d <= max_distance
        ]

    # -- internals ------------------------------------------------------------------------
    def _partial_distances(self, query: np.ndarray, count: int) -> np.ndarray:
        """``|w|^2 - 2 w.q`` for the first ``count`` rows (caller holds the lock)."""
        minus_two_q = query * np.float32(-2.0)
        out = np.empty(count, dtype=np.float32)
        _matvec(self._matrix[:count], minus_two_q, out)
        out += self._sqnorms[:count]
        return out

    @staticmethod
    def _best_rows(partial: np.ndarray, k: int) -> np.ndarray:
        """Row numbers of the ``k`` smallest values, sorted ascending."""
        if k < partial.shape[0]:
            rows = np.argpartition(partial, k - 1)[:k]
        else:
            rows = np.arange(partial.shape[0])
        return rows[np.argsort(partial[rows], kind="stable")]

    def _prepare_probe(self, probe: np.ndarray | Sequence[float]) -> np.ndarray:
        query = np.asarray(probe, dtype=np.float32).reshape(-1)
        if query.shape != (self.dim,):
            raise ValueError(f"probe must have {self.dim} values, got {query.shape[0]}")
        if not np.all(np.isfinite(query)):
            raise ValueError("probe contains NaN or infinity")
        return np.ascontiguousarray(query)

    def _prepare(self, matrix: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Validate ``matrix``; return rows in storage dtype and their float32 squared norms.

        Works in blocks so a large batch never needs more than one storage-dtype copy plus
        a few block-sized temporaries.
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
            wide = block.astype(np.float32, copy=False)
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

    @staticmethod
    def _check_ids(ids: list[str]) -> None:
        for template_id in ids:
            if not isinstance(template_id, str) or not template_id:
                raise ValueError("template ids must be non-empty strings")
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate template ids in one batch")

    def _append(self, ids: list[str], rows: np.ndarray, norms: np.ndarray) -> None:
        """Append new rows, doubling capacity when needed (caller holds the lock)."""
        start = len(self._ids)
        needed = start + len(ids)
        if needed > self.capacity:
            self._resize(max(needed, self.capacity * 2))
        self._matrix[start:needed] = rows
        self._sqnorms[start:needed] = norms
        self._ids.extend(ids)
        for offset, template_id in enumerate(ids):
            self._rows[template_id] = start + offset

    def _resize(self, capacity: int) -> None:
        """Reallocate the buffers to ``capacity`` rows, keeping the live ones."""
        count = len(self._ids)
        matrix = np.empty((capacity, self.dim), dtype=self._dtype)
        sqnorms = np.empty(capacity, dtype=np.float32)
        matrix[:count] = self._matrix[:count]
        sqnorms[:count] = self._sqnorms[:count]
        self._matrix, self._sqnorms = matrix, sqnorms
