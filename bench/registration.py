"""Registrations per second on SQLite, server in a subprocess, against a bare Litestar
handler doing one INSERT through the same stack, measured in the same run.

Targets (issue 2): >= 0.5 of the baseline and >= 300 registrations/s on a 2-core machine.
Usage: .venv/bin/python bench/registration.py [--requests 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.mrz import build_td3  # noqa: E402
from tests.servers import ServerProcess, cli, free_port, node_env  # noqa: E402

PASSWORD = "bench-password-123"


def mrz_for(n: int) -> str:
    lines = build_td3(
        document_code="P",
        issuing_state="MLI",
        surname="TRAORE",
        given_names="SEKOU",
        document_number=f"B{n:08d}",
        nationality="MLI",
        date_of_birth=date(1980, 1, 1),
        sex="M",
        expiry_date=date.today() + timedelta(days=800),
        optional_data="",
    )
    return "\n".join(lines)


async def hammer(
    url: str, headers: dict[str, str], bodies: list[dict], concurrency: int
) -> tuple[float, list[float]]:
    """POST every body with `concurrency` workers; return (seconds, latencies)."""
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(url, json=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 201:
                    raise RuntimeError(f"{response.status_code}: {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def start_baseline(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "BASELINE_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.baseline_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.post(f"{url}/insert", json={"warmup": True}, timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("baseline did not start")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = node_env(Path(tmp) / "post")
        cli(env, "db", "upgrade")
        cli(
            {**env, "BORDERPOST_NEW_PASSWORD": PASSWORD},
            "officer",
            "add",
            "--username",
            "bench",
            "--full-name",
            "Bench",
            "--role",
            "officer",
        )
        server = ServerProcess(env).start()
        baseline, baseline_url = start_baseline(Path(tmp) / "baseline")
        try:
            token = httpx.post(
                f"{server.url}/api/auth/login", json={"username": "bench", "password": PASSWORD}
            ).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            bodies = [
                {"direction": "entry", "mode": "car", "mrz": mrz_for(n)}
                for n in range(args.requests)
            ]
            asyncio.run(hammer(f"{server.url}/api/crossings", headers, bodies[:100], 4))
            ours, our_lat = asyncio.run(
                hammer(f"{server.url}/api/crossings", headers, bodies[100:], args.concurrency)
            )
            base, base_lat = asyncio.run(
                hammer(f"{baseline_url}/insert", {}, bodies[100:], args.concurrency)
            )
        finally:
            server.stop()
            baseline.terminate()
    n = args.requests - 100
    ours_rate, base_rate = n / ours, n / base
    ratio = ours_rate / base_rate
    print(f"registrations: {n} requests, concurrency {args.concurrency}, SQLite WAL FULL")
    print(
        f"  borderpost  {ours_rate:8.1f} /s   p50 {percentile(our_lat, 0.5) * 1000:6.1f} ms"
        f"   p95 {percentile(our_lat, 0.95) * 1000:6.1f} ms"
    )
    print(
        f"  baseline    {base_rate:8.1f} /s   p50 {percentile(base_lat, 0.5) * 1000:6.1f} ms"
        f"   p95 {percentile(base_lat, 0.95) * 1000:6.1f} ms   (bare handler, one INSERT)"
    )
    print(f"  ratio       {ratio:8.2f}   target >= 0.50: {'PASS' if ratio >= 0.5 else 'FAIL'}")
    print(
        f"  absolute    {ours_rate:8.1f} /s target >= 300: {'PASS' if ours_rate >= 300 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
