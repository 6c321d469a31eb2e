"""Portrait uploads in bounded memory (issue 13): worst-case photos against a real post.

A post server runs in a subprocess (``borderpost serve``, SQLite). The bench sends rounds of
8 concurrent registrations, each with a worst-case photo made here:

- a bilevel (1-bit) PNG of 6324 x 6324, the largest the old 40 MP limit let through (4.9 KB
  on the wire, 40 million pixels once decoded; the attack of the issue),
- a bilevel PNG of 4000 x 3000, the largest the new limits allow by size,
- a maximal JPEG (4000 x 3000, 12 MP) and a maximal WebP (4000 x 3000),

two of each, all with ``photo_quality_override`` so that accepted photos go the whole way
(decode, re-encode, face analysis, write). Meanwhile a thread polls ``/api/health`` every
50 ms. Measured: the server process's peak resident memory (``VmHWM`` in /proc) and the
health latency. Targets: peak RSS < 600 MB, every health answer within 200 ms.

The same uploads are then sent to the code as it was before issue 13 (``--baseline REV``,
default the session's starting commit, extracted with ``git archive``; ``--no-baseline``
skips it), for comparison.

Usage: .venv/bin/python bench/images.py [--rounds 3] [--baseline REV | --no-baseline]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry.mrz import build_td3  # noqa: E402
from tests.support.servers import free_port, node_env  # noqa: E402

PASSWORD = "bench-password-123"
BASELINE_REV = "316190d"  # the last commit before issue 13's image limits
RSS_TARGET_MB = 600
HEALTH_TARGET_S = 0.200
HEALTH_EVERY_S = 0.05
CONCURRENT = 8


# ---------------------------------------------------------------- worst-case photos
def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def bilevel_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG, all black: a few kilobytes that decode to width x height pixels."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def camera_frame(width: int, height: int) -> Image.Image:
    """A colour frame with gradients and grain (compresses like a photo, not like a flat
    image), 8-bit RGB."""
    rng = np.random.default_rng(13)
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)
    pixels = np.empty((height, width, 3), dtype=np.float32)
    pixels[..., 0] = x[None, :]
    pixels[..., 1] = y[:, None]
    pixels[..., 2] = (x[None, :] + y[:, None]) / 2
    pixels += rng.normal(0, 6, size=(height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def worst_case_photos() -> dict[str, tuple[str, bytes]]:
    frame = camera_frame(4000, 3000)
    jpeg, webp = io.BytesIO(), io.BytesIO()
    frame.save(jpeg, format="JPEG", quality=92)
    frame.save(webp, format="WEBP", quality=85, method=0)
    return {
        "bilevel PNG 6324x6324 (old limit)": ("bomb.png", bilevel_png(6324, 6324)),
        "bilevel PNG 4000x3000 (new limit)": ("bilevel.png", bilevel_png(4000, 3000)),
        "JPEG 4000x3000": ("camera.jpg", jpeg.getvalue()),
        "WebP 4000x3000": ("camera.webp", webp.getvalue()),
    }


# ---------------------------------------------------------------- a server process
# The `borderpost` entry point of this tree (registry.cli.main) or of a revision from
# before the CLI package (registry.cli).
CLI_ENTRY = (
    "try:\n    from registry.cli.main import main\n"
    "except ImportError:\n    from registry.cli import main\nmain()"
)


@dataclass
class Server:
    """``borderpost serve`` from ``source`` (this tree, or an extracted older revision)."""

    source: Path
    data_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = node_env(self.data_dir, node_code="MR-GOGUI", **self.settings)
        env["PYTHONPATH"] = str(self.source)
        return env

    def cli(self, *args: str, extra: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-c", CLI_ENTRY, *args]
        subprocess.run(
            command, cwd=self.source, env={**self.env, **(extra or {})}, check=True,
            capture_output=True, timeout=300,
        )  # fmt: skip

    def start(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cli("db", "upgrade")
        self.cli(
            "officer", "add", "--username", "bench", "--full-name", "Bench", "--role", "officer",
            extra={"BORDERPOST_NEW_PASSWORD": PASSWORD},
        )  # fmt: skip
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - lives with the process
        command = [sys.executable, "-c", CLI_ENTRY, "serve"]
        self.process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.source, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError("server did not become healthy")

    def memory_mb(self, field_name: str) -> float:
        """``VmHWM`` (peak) or ``VmRSS`` (now) of the server process, in MB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"{field_name} not found")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


# ---------------------------------------------------------------- the run
def mrz_for(n: int) -> str:
    lines = build_td3(
        document_code="P",
        issuing_state="MLI",
        surname="KEITA",
        given_names="OUMAR",
        document_number=f"I{n:08d}",
        nationality="MLI",
        date_of_birth=date(1982, 6, 1),
        sex="M",
        expiry_date=date.today() + timedelta(days=800),
        optional_data="",
    )
    return "\n".join(lines)


@dataclass
class Result:
    label: str
    idle_mb: float
    peak_mb: float
    health: list[float]
    quiet: list[float]
    statuses: dict[str, list[int]]
    seconds: float

    @property
    def health_max(self) -> float:
        return max(self.health)

    @property
    def health_p95(self) -> float:
        ordered = sorted(self.health)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def crossing_body(label: str) -> dict[str, str]:
    return {"direction": "entry", "photo_quality_override": f"bench: worst-case photo ({label})"}


def poll_health(url: str, stop: EventType, out: Connection) -> None:
    """In a process of its own (so the uploading threads cannot delay it): GET /api/health
    every 50 ms until ``stop``, then send the latencies back."""
    latencies: list[float] = []
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                client.get(f"{url}/api/health")
                latencies.append(time.perf_counter() - started)
            except httpx.HTTPError:
                latencies.append(10.0)
            time.sleep(HEALTH_EVERY_S)
    out.send(latencies)
    out.close()


class HealthPoller:
    """Polls ``/api/health`` from a forked process while the ``with`` block runs."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=poll_health, args=(url, self._stop, send))
        self.latencies: list[float] = []

    def __enter__(self) -> HealthPoller:
        self._process.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.latencies = self._receive.recv()
        self._process.join(30)


def run(label: str, server: Server, photos: dict[str, tuple[str, bytes]], rounds: int) -> Result:
    token = httpx.post(
        f"{server.url}/api/auth/login", json={"username": "bench", "password": PASSWORD}
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    uploads = [kind for kind in photos for _ in range(CONCURRENT // len(photos))]
    statuses: dict[str, list[int]] = {kind: [] for kind in photos}
    counter = iter(range(10**9))

    def register(kind: str) -> tuple[str, int]:
        name, data = photos[kind]
        crossing = {**crossing_body(label), "mrz": mrz_for(next(counter))}
        response = httpx.post(
            f"{server.url}/api/crossings",
            headers=headers,
            data={"crossing": json.dumps(crossing)},
            files={"photo": (name, data, "application/octet-stream")},
            timeout=300,
        )
        return kind, response.status_code

    warm = io.BytesIO()
    camera_frame(640, 480).save(warm, format="JPEG")
    for _ in range(2):  # the first photo loads the face models (once per process): not measured
        response = httpx.post(
            f"{server.url}/api/crossings",
            headers=headers,
            data={"crossing": json.dumps({**crossing_body(label), "mrz": mrz_for(next(counter))})},
            files={"photo": ("warm.jpg", warm.getvalue(), "image/jpeg")},
            timeout=300,
        )
        assert response.status_code == 201, response.text
    time.sleep(1.0)
    idle = server.memory_mb("VmRSS")
    with HealthPoller(server.url) as quiet:  # without uploads: what the machine itself costs
        time.sleep(3.0)
    started = time.perf_counter()
    with HealthPoller(server.url) as loaded, ThreadPoolExecutor(CONCURRENT) as pool:
        for _ in range(rounds):
            for kind, status in pool.map(register, uploads):
                statuses[kind].append(status)
    elapsed = time.perf_counter() - started
    peak = server.memory_mb("VmHWM")
    return Result(label, idle, peak, loaded.latencies, quiet.latencies, statuses, elapsed)


def report(result: Result, targets: bool) -> bool:
    rss_ok = result.peak_mb < RSS_TARGET_MB
    health_ok = result.health_max <= HEALTH_TARGET_S
    print(f"{result.label}: {result.seconds:.1f} s")
    for kind, statuses in result.statuses.items():
        counts = {status: statuses.count(status) for status in sorted(set(statuses))}
        print(f"  {kind:36s} answers {counts}")
    verdict = (lambda ok: f"  {'PASS' if ok else 'FAIL'}") if targets else (lambda ok: "")
    print(
        f"  server RSS idle {result.idle_mb:7.0f} MB   peak {result.peak_mb:7.0f} MB"
        f"   target < {RSS_TARGET_MB} MB{verdict(rss_ok)}"
    )
    print(
        f"  /api/health {len(result.health)} polls: p50 "
        f"{statistics.median(result.health) * 1000:6.1f} ms  p95 {result.health_p95 * 1000:6.1f}"
        f" ms  max {result.health_max * 1000:7.1f} ms   target <= "
        f"{HEALTH_TARGET_S * 1000:.0f} ms{verdict(health_ok)}"
    )
    print(
        f"  /api/health without uploads ({len(result.quiet)} polls, the machine's own noise): p50 "
        f"{statistics.median(result.quiet) * 1000:.1f} ms  max {max(result.quiet) * 1000:.1f} ms"
    )
    return rss_ok and health_ok


def extract(revision: str, target: Path) -> Path:
    """The tree of ``revision`` (git archive), to serve the code as it was."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=BASELINE_REV, help="revision before the limits")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--slots", type=int, default=None, help="photo_decode_slots (default: the setting's)"
    )
    args = parser.parse_args()
    photos = worst_case_photos()
    print(f"{CONCURRENT} concurrent uploads per round, {args.rounds} rounds; photos:")
    for kind, (_, data) in photos.items():
        print(f"  {kind:36s} {len(data) / 1024:9.1f} KB")
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        settings = {} if args.slots is None else {"photo_decode_slots": str(args.slots)}
        server = Server(ROOT, Path(tmp) / "post", settings).start()
        try:
            ours = run("this tree (issue 13 limits)", server, photos, args.rounds)
        finally:
            server.stop()
        passed = report(ours, targets=True)
        if not args.no_baseline:
            source = extract(args.baseline, Path(tmp) / "baseline-src")
            old = Server(source, Path(tmp) / "baseline-post").start()
            try:
                before = run(f"baseline {args.baseline} (before)", old, photos, args.rounds)
            finally:
                old.stop()
            report(before, targets=False)
            print(
                f"  peak RSS {before.peak_mb:.0f} MB -> {ours.peak_mb:.0f} MB, health max "
                f"{before.health_max * 1000:.0f} ms -> {ours.health_max * 1000:.0f} ms"
            )
    print("ALL TARGETS PASS" if passed else "SOME TARGETS FAIL")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
