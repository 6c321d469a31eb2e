"""A post under load, with and without a login flood: 50 officers register and search while
6 loops send wrong passwords to the login as fast as they can.

The post runs as a subprocess (``borderpost serve``, SQLite). 50 officer accounts are
created through the API and logged in first; then two phases of ``--seconds`` each, each
on a fresh post prepared the same way: officers alone (the reference), then officers with
the flood. Each officer loops without pause: register a crossing (POST /api/crossings,
JSON), search a document it registered (GET /api/search/document), search the name it
just registered (GET /api/search/name). Each flood loop posts wrong passwords for an
existing officer or for an unknown username, turn about, without waiting for Retry-After
(from another process, as an attacker's own machine would).

Targets (issue 13): p95 of all officer requests under 1 s and no error in either phase;
registration p95 with the flood at most 2x its value without.
Without ``--think`` the officers never pause (a capacity test: about 1.5 requests a second
per officer, where a real desk makes one registration a minute); ``--think 1`` pauses a
second after each request.
Usage: .venv/bin/python bench/load.py [--officers 50] [--floods 6] [--seconds 60] [--think 0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from multiprocessing import Process, Queue
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.mrz import build_td3  # noqa: E402
from tests.support.servers import ServerProcess, cli, node_env  # noqa: E402

PASSWORD = "bench-password-123"
P95_TARGET_S = 1.0
FLOOD_RATIO_TARGET = 2.0
SURNAMES = ("TRAORE", "DIALLO", "KONE", "OUEDRAOGO", "SANOGO", "CISSE", "KEITA", "TOURE")


def mrz_for(prefix: str, officer: int, n: int) -> tuple[str, str, str]:
    """An MRZ, its document number and the traveller's surname."""
    number = f"{prefix}{officer:02d}{n % 1_000_000:06d}"
    # a surname of its own per traveller (a name search finds one or two people)
    suffix = "".join(chr(ord("A") + int(digit)) for digit in f"{officer:02d}{n:05d}")
    surname = f"{SURNAMES[officer % len(SURNAMES)]} {suffix}"
    lines = build_td3(
        document_code="P",
        issuing_state="MLI",
        surname=surname,
        given_names="SEKOU",
        document_number=number,
        nationality="MLI",
        date_of_birth=date(1980, 1, 1) + timedelta(days=officer),
        sex="M",
        expiry_date=date.today() + timedelta(days=800),
        optional_data="",
    )
    return "\n".join(lines), number, surname


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    flood: Counter[int] = field(default_factory=Counter)

    @property
    def all_latencies(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]

    def p95(self, kind: str | None = None) -> float:
        return percentile(self.all_latencies if kind is None else self.latencies[kind], 0.95)


def prepare_post(tmp: Path, officers: int) -> tuple[ServerProcess, list[dict[str, str]]]:
    """A migrated post with an admin (CLI) and ``officers`` officers (API), all logged in."""
    env = node_env(tmp / "post")
    cli(env, "db", "upgrade")
    cli(
        {**env, "BORDERPOST_NEW_PASSWORD": PASSWORD},
        "officer",
        "add",
        "--username",
        "bench.admin",
        "--full-name",
        "Bench admin",
        "--role",
        "admin",
    )
    server = ServerProcess(env).start()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        login = client.post(
            "/api/auth/login", json={"username": "bench.admin", "password": PASSWORD}
        )
        login.raise_for_status()
        admin = {"Authorization": f"Bearer {login.json()['token']}"}
        headers = []
        for i in range(officers):
            created = client.post(
                "/api/officers/",
                headers=admin,
                json={
                    "username": f"desk.{i:02d}",
                    "full_name": f"Desk officer {i}",
                    "role": "officer",
                    "password": PASSWORD,
                },
            )
            created.raise_for_status()
            token = client.post(
                "/api/auth/login", json={"username": f"desk.{i:02d}", "password": PASSWORD}
            )
            token.raise_for_status()
            headers.append({"Authorization": f"Bearer {token.json()['token']}"})
    return server, headers


async def officer_loop(
    client: httpx.AsyncClient,
    index: int,
    headers: dict[str, str],
    counter: itertools.count[int],
    until: float,
    phase: Phase,
    think: float,
) -> None:
    """Register, search the document, search the name, until the phase ends, pausing
    ``think`` seconds after each request."""
    registered: list[str] = []

    async def timed(kind: str, request: httpx.Request) -> None:
        started = time.perf_counter()
        try:
            response = await client.send(request)
        except httpx.HTTPError as exc:
            phase.errors[f"{kind}: {type(exc).__name__}"] += 1
            return
        phase.latencies[kind].append(time.perf_counter() - started)
        if response.status_code >= 300:
            phase.errors[f"{kind}: {response.status_code}"] += 1
        if think:
            await asyncio.sleep(think)

    while time.monotonic() < until:
        mrz, number, surname = mrz_for(phase.name[0].upper(), index, next(counter))
        await timed(
            "register",
            client.build_request(
                "POST",
                "/api/crossings/",
                headers=headers,
                json={"direction": "entry", "mode": "car", "mrz": mrz},
            ),
        )
        registered.append(number)
        target = registered[len(registered) // 2]
        await timed(
            "search_document",
            client.build_request(
                "GET",
                "/api/search/document",
                headers=headers,
                params={"issuing_state": "MLI", "number": target},
            ),
        )
        await timed(
            "search_name",
            client.build_request(
                "GET",
                "/api/search/name",
                headers=headers,
                params={"name": f"{surname} SEKOU", "limit": 20},
            ),
        )


async def flood_loop(
    client: httpx.AsyncClient, index: int, until: float, seen: Counter[int]
) -> None:
    """Wrong passwords, as fast as the server answers, never honouring Retry-After."""
    for attempt in itertools.count():
        if time.monotonic() >= until:
            return
        username = f"desk.{index:02d}" if attempt % 2 == 0 else f"nobody.{index}.{attempt}"
        try:
            response = await client.post(
                "/api/auth/login", json={"username": username, "password": f"wrong-{attempt}"}
            )
            seen[response.status_code] += 1
        except httpx.HTTPError:
            seen[0] += 1


async def _flood(url: str, floods: int, seconds: float) -> Counter[int]:
    seen: Counter[int] = Counter()
    until = time.monotonic() + seconds
    limits = httpx.Limits(keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await asyncio.gather(*(flood_loop(client, i, until, seen) for i in range(floods)))
    return seen


def flood_process(url: str, floods: int, seconds: float, answers: Queue) -> None:  # type: ignore[type-arg]
    """The attacker runs in its own process, as it would on its own machine, so that its
    loops do not take the officers' client time."""
    answers.put(dict(asyncio.run(_flood(url, floods, seconds))))


async def run_phase(
    url: str,
    headers: list[dict[str, str]],
    floods: int,
    seconds: float,
    name: str,
    think: float = 0.0,
) -> Phase:
    phase = Phase(name)
    counter = itertools.count()
    answers: Queue = Queue()  # type: ignore[type-arg]
    attacker = None
    if floods:
        attacker = Process(target=flood_process, args=(url, floods, seconds, answers))
        attacker.start()
    # drop idle connections before the server does (uvicorn: 5 s), so that no request is
    # sent on a connection the server is closing
    limits = httpx.Limits(max_connections=len(headers) + 4, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as officers:
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(
            *(
                officer_loop(officers, i, h, counter, until, phase, think)
                for i, h in enumerate(headers)
            )
        )
        phase.seconds = time.monotonic() - started
    if attacker is not None:
        phase.flood.update(answers.get(timeout=120))
        attacker.join(60)
    return phase


def report(phase: Phase) -> None:
    total = sum(len(v) for v in phase.latencies.values())
    title = "with the login flood" if phase.flood else "without flood"
    print(f"{title}: {total} officer requests in {phase.seconds:.0f} s")
    for kind in ("register", "search_document", "search_name"):
        values = phase.latencies[kind]
        print(
            f"  {kind:16s} {len(values):6d}   p50 {percentile(values, 0.5) * 1000:7.1f} ms"
            f"   p95 {percentile(values, 0.95) * 1000:7.1f} ms"
            f"   max {max(values, default=0) * 1000:7.1f} ms"
        )
    print(f"  all              p95 {phase.p95() * 1000:7.1f} ms")
    errors = sum(phase.errors.values())
    print(f"  errors           {errors}" + (f"   {dict(phase.errors)}" if errors else ""))
    if phase.flood:
        answered = ", ".join(f"{status}: {n}" for status, n in sorted(phase.flood.items()))
        print(f"  login flood      {sum(phase.flood.values())} attempts ({answered})")


def verdict(label: str, ok: bool) -> bool:
    print(f"  {label}: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--officers", type=int, default=50)
    parser.add_argument("--floods", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds an officer pauses after each request (0: none, a capacity test)",
    )
    args = parser.parse_args()
    print(
        f"post: borderpost serve (SQLite), {args.officers} officers, "
        f"{args.seconds:.0f} s per phase, pause {args.think:g} s after each request, "
        f"login flood of {args.floods} loops; "
        "each phase on a fresh post"
    )
    phases = []
    for name, floods in (("calm", 0), ("flood", args.floods)):
        with tempfile.TemporaryDirectory(prefix="bp-load-") as tmp:
            server, headers = prepare_post(Path(tmp), args.officers)
            try:
                phase = run_phase(server.url, headers, floods, args.seconds, name, args.think)
                phases.append(asyncio.run(phase))
            finally:
                server.stop()
    calm, stormy = phases
    report(calm)
    report(stormy)
    ratio = stormy.p95("register") / calm.p95("register")
    print("targets")
    results = [
        verdict(f"p95 without flood {calm.p95() * 1000:.0f} ms < 1000 ms", calm.p95() < 1.0),
        verdict(f"p95 with flood {stormy.p95() * 1000:.0f} ms < 1000 ms", stormy.p95() < 1.0),
        verdict(
            f"errors {sum(calm.errors.values())} + {sum(stormy.errors.values())} == 0",
            not calm.errors and not stormy.errors,
        ),
        verdict(
            f"registration p95 with flood / without = {ratio:.2f} <= {FLOOD_RATIO_TARGET}",
            ratio <= FLOOD_RATIO_TARGET,
        ),
    ]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
