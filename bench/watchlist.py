"""Watchlist 1:N search benchmark: FaceIndex vs face_recognition.face_distance.

Synthetic templates imitate real dlib encodings: a shared mean vector (norm ~1.33, per-value
spread ~0.12, like the common component of real encodings) plus per-person noise of
sd 0.051, giving norms ~1.45 and impostor distances ~0.8 as measured on real photos;
"genuine" probes are stored templates plus noise of sd 0.031 (distance ~0.35).

For every size the same float32 matrix feeds both contenders: FaceIndex.search (top-5) and
``face_recognition.face_distance(matrix, probe)`` + ``argpartition`` (float32 data; pass
``--baseline-float64`` to convert to float64 first, as encodings straight out of dlib are).
The 1M float16 case runs in a fresh subprocess that generates its data in chunks straight
into the float16 index, so its peak RSS is the index's real footprint.

Usage: python bench/watchlist.py [--sizes 10000 100000 1000000] [--probes 50]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

try:
    from biometrics.index import FaceIndex
except ImportError:  # running from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from biometrics.index import FaceIndex

DIM = 128
CHUNK = 16_384  # generation block: keeps float32 temporaries to a few MB
K = 5
TARGET_MS_AT_1M = 30.0
TARGET_SPEEDUP = 10.0
TARGET_PEAK_MB = 600.0
MILLION = 1_000_000


def template_mean(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.1175, DIM).astype(np.float32)


def synthetic_chunks(count: int, seed: int) -> Iterator[np.ndarray]:
    """``count`` face-like float32 templates, ``CHUNK`` rows at a time."""
    mean = template_mean(seed)
    rng = np.random.default_rng(seed + 1)
    for start in range(0, count, CHUNK):
        rows = min(CHUNK, count - start)
        yield mean + rng.standard_normal((rows, DIM), dtype=np.float32) * np.float32(0.051)


def template_ids(start: int, stop: int) -> list[str]:
    """UUID-shaped ids (36 characters), like the registry's."""
    return [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(start, stop)]


def make_probes(sample: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Half genuine (stored template + noise), half unknown travellers."""
    rng = np.random.default_rng(seed + 2)
    genuine = sample[rng.integers(0, len(sample), count - count // 2)]
    genuine = genuine + rng.normal(0.0, 0.031, genuine.shape)
    unknown = template_mean(seed) + rng.normal(0.0, 0.051, (count // 2, DIM))
    return np.vstack([genuine, unknown]).astype(np.float32)


def time_per_call(function: Callable[[np.ndarray], object], probes: np.ndarray) -> list[float]:
    """Milliseconds per call, after two warm-up calls."""
    for probe in probes[:2]:
        function(probe)
    timings = []
    for probe in probes:
        start = time.perf_counter()
        function(probe)
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def vm_hwm_mb() -> float | None:
    """Peak RSS of this process image from /proc (Linux); unlike ru_maxrss it is not
    inherited from the parent across fork+exec."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return None


def build_index(chunks: Iterator[np.ndarray], count: int, dtype: type) -> FaceIndex:
    index = FaceIndex(dtype=dtype)
    index.reserve(count)
    start = 0
    for chunk in chunks:
        index.add_many(template_ids(start, start + len(chunk)), chunk)
        start += len(chunk)
    return index


def child_float16(count: int, probes: int, seed: int) -> None:
    """Subprocess body: float16 index only, report timings and own peak RSS as JSON."""
    started = time.perf_counter()
    index = build_index(synthetic_chunks(count, seed), count, np.float16)
    build_s = time.perf_counter() - started
    sample = next(synthetic_chunks(min(count, CHUNK), seed))
    queries = make_probes(sample, probes, seed)
    timings = time_per_call(lambda probe: index.search(probe, k=K), queries)
    print(
        json.dumps(
            {
                "count": count,
                "build_s": build_s,
                "ms_mean": statistics.fmean(timings),
                "ms_median": statistics.median(timings),
                "index_nbytes_mb": index.nbytes / 2**20,
                "peak_rss_mb": peak_rss_mb(),
                "vm_hwm_mb": vm_hwm_mb(),
            }
        )
    )


def run_child(count: int, probes: int, seed: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--child-float16", str(count)]
    command += ["--probes", str(probes), "--seed", str(seed)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def baseline_search(matrix: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    import face_recognition

    def search(probe: np.ndarray) -> np.ndarray:
        distances = face_recognition.face_distance(matrix, probe.astype(matrix.dtype))
        top = np.argpartition(distances, K)[:K]
        return top[np.argsort(distances[top])]

    return search


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def bench_size(count: int, args: argparse.Namespace) -> dict[str, float]:
    matrix = np.concatenate(list(synthetic_chunks(count, args.seed)))
    queries = make_probes(matrix, args.probes, args.seed)
    index = build_index(iter(np.array_split(matrix, max(1, count // CHUNK))), count, np.float32)
    ours = time_per_call(lambda probe: index.search(probe, k=K), queries)
    base_matrix = matrix.astype(np.float64) if args.baseline_float64 else matrix
    base_probes = queries[: args.baseline_probes_1m] if count >= MILLION else queries
    baseline = baseline_search(base_matrix)
    theirs = time_per_call(baseline, base_probes)
    ids = index.ids()
    agree = sum(
        [hit.template_id for hit in index.search(probe, k=K)] == [ids[i] for i in baseline(probe)]
        for probe in base_probes
    )
    result = {
        "ours": statistics.fmean(ours),
        "baseline": statistics.fmean(theirs),
        "agree": agree,
        "checked": len(base_probes),
    }
    if count < MILLION:
        half = build_index(iter(np.array_split(matrix, max(1, count // CHUNK))), count, np.float16)
        result["float16"] = statistics.fmean(
            time_per_call(lambda probe: half.search(probe, k=K), queries)
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="FaceIndex 1:N benchmark")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, MILLION])
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--baseline-probes-1m", type=int, default=5)
    parser.add_argument("--baseline-float64", action="store_true")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--child-float16", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_float16:
        child_float16(args.child_float16, args.probes, args.seed)
        return 0

    dtype_name = "float64" if args.baseline_float64 else "float32 (same array as the index)"
    print(f"cores={os.cpu_count()} load={os.getloadavg()[0]:.2f} probes={args.probes} k={K}")
    print(f"baseline: face_recognition.face_distance + argpartition on {dtype_name}")
    print(
        f"{'templates':>10} {'FaceIndex f32':>14} {'FaceIndex f16':>14} {'face_distance':>14} "
        f"{'speed-up':>9} {'top-5 agree':>12}"
    )
    # The float16 child runs first, while this process is still small: ru_maxrss survives
    # fork+exec, so a child forked from a parent holding gigabytes would report those too.
    children = {
        count: run_child(count, args.probes, args.seed) for count in args.sizes if count >= MILLION
    }
    results: dict[int, dict[str, float]] = {}
    for count in args.sizes:
        result = bench_size(count, args)
        if count in children:
            result["float16"] = children[count]["ms_mean"]
            result["child"] = children[count]
        results[count] = result
        speedup = result["baseline"] / result["ours"]
        print(
            f"{count:>10} {result['ours']:>11.2f} ms {result['float16']:>11.2f} ms "
            f"{result['baseline']:>11.2f} ms {speedup:>8.1f}x "
            f"{result['agree']:>5}/{result['checked']}"
        )
    return report_targets(results)


def report_targets(results: dict[int, dict[str, float]]) -> int:
    """Print PASS/FAIL against the targets; exit code 1 if any measured target fails."""
    largest = results.get(MILLION)
    if largest is None:
        print("targets are defined at 1M templates; run with --sizes ... 1000000")
        return 0
    child = largest["child"]
    speedup = largest["baseline"] / largest["ours"]
    checks = [
        (
            f"<= {TARGET_MS_AT_1M:.0f} ms/probe at 1M, float32 index",
            largest["ours"],
            largest["ours"] <= TARGET_MS_AT_1M,
            "ms",
        ),
        (
            f"<= {TARGET_MS_AT_1M:.0f} ms/probe at 1M, float16 index",
            child["ms_mean"],
            child["ms_mean"] <= TARGET_MS_AT_1M,
            "ms",
        ),
        (
            f">= {TARGET_SPEEDUP:.0f}x faster than face_distance at 1M (float32)",
            speedup,
            speedup >= TARGET_SPEEDUP,
            "x",
        ),
        (
            f"peak RSS <= {TARGET_PEAK_MB:.0f} MB at 1M float16 (fresh process)",
            child["peak_rss_mb"],
            child["peak_rss_mb"] <= TARGET_PEAK_MB,
            "MB",
        ),
    ]
    hwm = child["vm_hwm_mb"]
    print(
        f"1M float16 child: build {child['build_s']:.1f} s, index buffers "
        f"{child['index_nbytes_mb']:.0f} MiB, median {child['ms_median']:.2f} ms/probe, "
        f"ru_maxrss {child['peak_rss_mb']:.0f} MiB, VmHWM "
        + (f"{hwm:.0f} MiB" if hwm is not None else "n/a")
    )
    for label, value, ok, unit in checks:
        print(f"[{verdict(ok)}] {label}: {value:.1f} {unit}")
    return 0 if all(ok for _, _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
