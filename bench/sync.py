"""Sync throughput and digest economy.

1. Push: 100k crossings registered at a post (SQLite, through the real registration path)
   are pushed to a national node (PostgreSQL, `borderpost serve` subprocess) and timed.
   Baseline in the same run: one INSERT per record through an ORM session (add + flush),
   measured on a sample and reported per crossing. Targets: >= 20,000 crossings/s
   ingested and >= 10x the naive path. For information, the same batches are also
   prepared (read, compressed, signed) before the clock starts and pushed into a second
   national database: national's ingest alone, without the post's own work competing for
   the same cores (on a real network the post is another machine).
2. Digest: two sets of 1M crossings that differ in 100 records; bytes the digest check
   transfers (day hashes, then hour hashes of differing days, then ids of differing hours)
   against the bytes of a full resend of the 1M records. Target: under 1%.

Usage: .venv/bin/python bench/sync.py [--crossings 100000] [--digest-records 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.crossings.registration import prepare_registration  # noqa: E402
from registry.crossings.schemas import RegistrationRequest  # noqa: E402
from registry.db import make_engine  # noqa: E402
from registry.migrate import upgrade_database  # noqa: E402
from registry.mrz import build_td3  # noqa: E402
from registry.node import Node  # noqa: E402
from registry.officers.service import create_officer  # noqa: E402
from registry.settings import Settings  # noqa: E402
from sync.batches import compress, encode_body  # noqa: E402
from sync.client import IN_FLIGHT, NationalLink, SyncClient  # noqa: E402
from sync.digest import bucket_hash  # noqa: E402
from tests.support.cluster import enrol  # noqa: E402
from tests.support.nodes import create_pg_database, drop_pg_database, pg_url  # noqa: E402
from tests.support.servers import ServerProcess, cli, node_env  # noqa: E402

NATIONAL = "MR-NATIONAL"
T = TypeVar("T")
POST = "MR-GOGUI"


def _mrz(n: int) -> str:
    lines = build_td3(
        document_code="P",
        issuing_state="MLI",
        surname="DIALLO",
        given_names="AMADOU",
        document_number=f"S{n:08d}",
        nationality="MLI",
        date_of_birth=date(1975, 1, 1) + timedelta(days=n % 9000),
        sex="M",
        expiry_date=date.today() + timedelta(days=900),
        optional_data="",
    )
    return "\n".join(lines)


async def fill_post(node: Node, crossings: int) -> float:
    """Register crossings through the real path (group commit) without HTTP."""
    async with node.db.write_transaction() as session:
        officer = await create_officer(
            session,
            node=node,
            actor=None,
            username="bench",
            full_name="Bench",
            role="officer",
            password="bench-password-1",
        )
    started = time.perf_counter()
    for first in range(0, crossings, 256):
        items = [
            prepare_registration(
                node, officer, RegistrationRequest(direction="entry", mrz=_mrz(n)), None
            )
            for n in range(first, min(first + 256, crossings))
        ]
        await asyncio.gather(*(node.registrations.submit(item) for item in items))
    return time.perf_counter() - started


@dataclass(frozen=True)
class CpuSeconds:
    """CPU time (user + system) of the three processes a push keeps busy."""

    post: float
    national: float
    postgres: float

    @property
    def total(self) -> float:
        return self.post + self.national + self.postgres

    def since(self, earlier: CpuSeconds) -> CpuSeconds:
        return CpuSeconds(
            self.post - earlier.post,
            self.national - earlier.national,
            self.postgres - earlier.postgres,
        )


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(national_pid: int) -> CpuSeconds:
    """Linux /proc: this process (the post's push), the national server, every postgres."""
    backends = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _comm(p).startswith("postgres")
    ]
    return CpuSeconds(
        _process_cpu(os.getpid()),
        _process_cpu(national_pid),
        sum(_process_cpu(pid) for pid in backends),
    )


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text()
    except OSError:
        return ""


async def push(node: Node, url: str, national_key: object) -> tuple[float, int, int]:
    link = NationalLink(NATIONAL, url, national_key)  # type: ignore[arg-type]
    async with httpx.AsyncClient(timeout=300) as http:
        client = SyncClient(node, link, http)  # the post's configured batch bounds
        started = time.perf_counter()
        records, batches = await client.push_records()
        return time.perf_counter() - started, records, batches


async def prepared_push(node: Node, url: str, national_key: object) -> float:
    """Seconds national takes to ingest every batch when the post prepared them all before
    the clock started; sent as the client sends them (``IN_FLIGHT`` at a time, in order)."""
    link = NationalLink(NATIONAL, url, national_key)  # type: ignore[arg-type]
    async with httpx.AsyncClient(timeout=300) as http:
        client = SyncClient(node, link, http)
        batches, after = [], 0
        while signed := await client._next_batch(after):
            batches.append(signed)
            after = signed.header.seq_to
        started = time.perf_counter()
        sending: list[asyncio.Task[tuple[int, int]]] = []
        for signed in batches:
            sending.append(asyncio.create_task(client._send_batch(signed)))
            if len(sending) >= IN_FLIGHT:
                status, ack = await sending.pop(0)
                assert status == 200, (status, ack)
        for task in sending:
            assert (await task)[0] == 200
        return time.perf_counter() - started


async def naive_ingest(national_url: str, node: Node, sample: int) -> float:
    """One INSERT per record through an ORM session: the same records, the naive way."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlmodel import SQLModel

    from registry.models import OutboxEntry
    from sync.records import row_from_payload

    async with node.db.session() as session:
        rows = (
            await session.execute(
                select(OutboxEntry.record_type, OutboxEntry.payload)
                .order_by(OutboxEntry.seq)
                .limit(sample * 4 + 2)
            )
        ).all()
    engine = create_async_engine(national_url)
    tables = SQLModel.metadata.tables
    models = {
        m.__tablename__: m
        for m in SQLModel.__subclasses__()
        if getattr(m, "__tablename__", None) in tables
    }
    crossings = sum(1 for r in rows if r.record_type == "crossing")
    started = time.perf_counter()
    async with async_sessionmaker(engine)() as session:
        for record_type, payload in rows:
            model = models[record_type]
            data = row_from_payload(record_type, payload)
            if record_type == "audit_event":
                data.pop("seq", None)
            session.add(model(**data))
            await session.flush()
        await session.rollback()  # leave the national database as the real push left it
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return crossings / elapsed


def _national(tmp: Path, name: str, database: str) -> tuple[dict[str, str], ServerProcess]:
    env = node_env(
        tmp / name,
        role="national",
        node_code=NATIONAL,
        database_url=pg_url(database),
        secret_key="b" * 40,
    )
    cli(env, "db", "upgrade")
    return env, ServerProcess(env).start()


def _enrol(post_env: dict[str, str], national_env: dict[str, str], url: str) -> Any:
    from registry.receipts import public_key_from_text

    enrol(post_env, national_env, url)
    return public_key_from_text(json.loads(cli(national_env, "keys", "show").stdout)["public_key"])


def run_push(crossings: int, naive_sample: int) -> None:
    database = f"bp_bench_sync_{uuid.uuid4().hex[:6]}"
    asyncio.run(create_pg_database(database))
    second = f"bp_bench_ingest_{uuid.uuid4().hex[:6]}"
    asyncio.run(create_pg_database(second))
    naive_db = f"bp_bench_naive_{uuid.uuid4().hex[:6]}"
    asyncio.run(create_pg_database(naive_db))
    with tempfile.TemporaryDirectory() as tmp:
        national_env, national = _national(Path(tmp), "national", database)
        post_settings = replace(Settings(), data_dir=Path(tmp) / "post", node_code=POST)
        node = Node.build(post_settings)
        try:
            asyncio.run(_migrate(post_settings))
            fill_seconds = asyncio.run(fill_post(node, crossings))
            post_env = node_env(Path(tmp) / "post", node_code=POST)
            key = _enrol(post_env, national_env, national.url)
            before = cpu_seconds(national.process.pid)  # type: ignore[union-attr]
            seconds, records, batches = asyncio.run(
                _on_fresh_node(post_settings, lambda node: push(node, national.url, key))
            )
            spent = cpu_seconds(national.process.pid).since(before)  # type: ignore[union-attr]
            national.stop()
            ingest_env, national = _national(Path(tmp), "national", second)  # same keys
            key = _enrol(post_env, ingest_env, national.url)
            ingest_seconds = asyncio.run(
                _on_fresh_node(post_settings, lambda node: prepared_push(node, national.url, key))
            )
            national.stop()
            naive_env = node_env(
                Path(tmp) / "naive",
                role="national",
                node_code=NATIONAL,
                database_url=pg_url(naive_db),
                secret_key="b" * 40,
            )
            cli(naive_env, "db", "upgrade")
            naive_rate = asyncio.run(
                _on_fresh_node(
                    post_settings, lambda node: naive_ingest(pg_url(naive_db), node, naive_sample)
                )
            )
        finally:
            national.stop()
            asyncio.run(node.db.dispose())
            for name in (database, second, naive_db):
                asyncio.run(drop_pg_database(name))
    rate = crossings / seconds
    print(
        f"push: {crossings} crossings ({records} records, {batches} batches) registered in "
        f"{fill_seconds:.1f} s, pushed to PostgreSQL in {seconds:.2f} s"
    )
    print(
        f"  borderpost push   {rate:10.0f} crossings/s   target >= 20000: "
        f"{'PASS' if rate >= 20000 else 'FAIL'}"
    )
    print(
        f"  national ingest   {crossings / ingest_seconds:10.0f} crossings/s   (information: the "
        f"same batches prepared before the clock, {ingest_seconds:.2f} s)"
    )
    print(
        f"  naive ORM insert  {naive_rate:10.0f} crossings/s   (one INSERT per record, "
        f"{naive_sample} crossings sampled)"
    )
    print(
        f"  CPU seconds during the push: post {spent.post:.1f}, national {spent.national:.1f}, "
        f"PostgreSQL {spent.postgres:.1f}; {spent.total / seconds:.2f} of "
        f"{os.cpu_count()} cores busy on average"
    )
    ratio = rate / naive_rate
    print(
        f"  ratio             {ratio:10.1f}x             target >= 10x: "
        f"{'PASS' if ratio >= 10 else 'FAIL'}"
    )


async def _migrate(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        await upgrade_database(engine)
    finally:
        await engine.dispose()


async def _on_fresh_node(settings: Settings, work: Callable[[Node], Awaitable[T]]) -> T:
    """Run ``work`` on a node built from ``settings`` (a fresh process state), then close it."""
    node = Node.build(settings)
    try:
        return await work(node)
    finally:
        await node.db.dispose()


def run_digest(records: int, differing: int) -> None:
    """Digest bytes vs full-resend bytes on two generated sets (same JSON as the API)."""
    rng = random.Random(1)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    post = [
        (
            str(uuid.UUID(int=rng.getrandbits(128))),
            start + timedelta(seconds=rng.randrange(365 * 86400)),
        )
        for _ in range(records)
    ]
    missing = set(rng.sample(range(records), differing))
    national = [c for i, c in enumerate(post) if i not in missing]
    sent = digest_exchange_bytes(post, national)
    full = full_resend_bytes(rng, records)
    print(f"digest: {records} vs {records - differing} crossings ({differing} missing)")
    print(f"  digest check transferred {sent:12,d} bytes")
    print(f"  full resend would send   {full:12,d} bytes (compressed batches)")
    share = sent / full * 100
    print(f"  share {share:.3f}%   target < 1%: {'PASS' if share < 1 else 'FAIL'}")


def _buckets(rows: list[tuple[str, datetime]], fmt: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for crossing_id, when in rows:
        out.setdefault(when.strftime(fmt), []).append(crossing_id)
    return out


def _summary(groups: dict[str, list[str]]) -> dict[str, dict[str, object]]:
    return {k: {"count": len(v), "hash": bucket_hash(v)} for k, v in groups.items()}


def digest_exchange_bytes(
    post: list[tuple[str, datetime]], national: list[tuple[str, datetime]]
) -> int:
    """Bytes national sends in the three-level digest exchange (the API's JSON shapes)."""
    total = 0
    days_post, days_nat = _buckets(post, "%Y-%m-%d"), _buckets(national, "%Y-%m-%d")
    summary = _summary(days_nat)
    total += len(json.dumps({"origin": POST, "buckets": summary}))
    local = _summary(days_post)
    for day in sorted(d for d in local if local[d] != summary.get(d)):
        hours_nat = _buckets([(i, t) for i, t in national if t.strftime("%Y-%m-%d") == day], "%H")
        hours_post = _buckets([(i, t) for i, t in post if t.strftime("%Y-%m-%d") == day], "%H")
        hour_summary = _summary(hours_nat)
        total += len(json.dumps({"origin": POST, "day": day, "buckets": hour_summary}))
        for hour in (h for h in hours_post if _summary(hours_post)[h] != hour_summary.get(h)):
            total += len(
                json.dumps(
                    {
                        "origin": POST,
                        "day": day,
                        "hour": hour,
                        "ids": sorted(hours_nat.get(hour, [])),
                    }
                )
            )
    return total


def full_resend_bytes(rng: random.Random, records: int) -> int:
    """Size of resending every crossing record in batches as the push sends them (zstd,
    one array per table), measured on a 20k sample."""
    sample = min(records, 20_000)
    officer = str(uuid.UUID(int=rng.getrandbits(128)))
    base45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

    def uuid_text() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128)))

    payloads = [
        {  # a crossing row as the outbox holds it: every column, the receipt's signature
            "id": uuid_text(),
            "origin": POST,
            "post": POST,
            "direction": "entry",
            "occurred_at": "2025-03-01T10:00:00+00:00",
            "officer_id": officer,
            "traveller_id": uuid_text(),
            "document_id": uuid_text(),
            "photo_sha256": None,
            "mode": "car",
            "vehicle_plate": None,
            "purpose": None,
            "destination": None,
            "guardian_crossing_id": None,
            "companions": [],
            "decision": "cleared",
            "remarks": None,
            "checks": [],
            "stay_allowed_until": "2025-06-01",
            "closes_crossing_id": None,
            "overstay_days": None,
            "version": 1,
            "supersedes": None,
            "correction_reason": None,
            "receipt": "BP1:" + "".join(rng.choice(base45) for _ in range(155)),
            "recorded_at": "2025-03-01T10:00:01+00:00",
        }
        for _ in range(sample)
    ]
    size = 0
    for first in range(0, sample, 5000):
        chunk = [
            (n, "crossing", str(p["id"]), json.dumps(p, separators=(",", ":")))
            for n, p in enumerate(payloads[first : first + 5000], start=first + 1)
        ]
        size += len(compress(encode_body(chunk)))
    return size * records // sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crossings", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=2_000)
    parser.add_argument("--digest-records", type=int, default=1_000_000)
    parser.add_argument("--skip-push", action="store_true")
    args = parser.parse_args()
    if not args.skip_push:
        run_push(args.crossings, args.naive_sample)
    run_digest(args.digest_records, 100)


if __name__ == "__main__":
    main()
