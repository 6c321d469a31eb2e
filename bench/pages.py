"""Web page benchmark: every main page must render in under 300 ms on a post with 100,000
crossings in its SQLite database.

Creates a throwaway post (SQLite, WAL, ``synchronous=FULL``), migrates it, creates one
account per role with the CLI, loads the dataset with Core ``executemany`` (default 100,000
crossings over the last 365 days by 40,000 travellers, the latest of them in the last hours so
the desk lists recent registrations, plus watchlist entries, open alerts, protection referrals
and one audit event per crossing), starts a real ``borderpost serve`` and times each main page
(GET, logged in through the web login, cookies as a browser sends them) with httpx: p50 and
p95 over ``--runs`` requests after one warm-up request, then PASS/FAIL against ``--budget-ms``
(judged on p95). Every request includes the page's audit write (fsync) and the loopback hop.

No ``ANALYZE`` is run, as on a real post. Beware: with ``sqlite_stat1`` statistics SQLite
sees that ``crossing.supersedes`` is NULL on (almost) every row, stops using its index for
the "not superseded" test, and the stay queries turn quadratic (minutes).

Usage: .venv/bin/python bench/pages.py [--crossings 100000] [--runs 20] [--budget-ms 300]
       [--keep DIR] [--only PATH-PART]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.audit import GENESIS_HASH  # noqa: E402
from registry.ids import uuid7  # noqa: E402
from registry.models import (  # noqa: E402
    Alert,
    AuditEvent,
    Crossing,
    Officer,
    ProtectionReferral,
    TravelDocument,
    Traveller,
    WatchlistEntry,
)
from registry.names import name_key  # noqa: E402
from registry.receipts import (  # noqa: E402
    ReceiptClaims,
    document_hash,
    load_or_create_node_key,
    receipt_binding_key,
    sign_receipt,  # noqa: E402
)
from tests.support.servers import ServerProcess, cli, node_env  # noqa: E402

POST = "MR-GOGUI"
PASSWORD = "bench-password-123"
ACCOUNTS = (
    ("desk", "officer"),
    ("chief", "supervisor"),
    ("care", "protection"),
    ("analyst", "hq_analyst"),
    ("link", "liaison"),
    ("root", "admin"),
)
SURNAMES = ("OULD AHMED", "DIALLO", "TRAORE", "SOW", "KEITA", "CISSE", "BA", "SY", "DIARRA")
GIVEN = ("MOHAMED", "FATIMATA", "OUMAR", "AMINATA", "SIDI", "MARIAM", "ISSA", "AWA")
NATIONALITIES = (("MLI", 0.5), ("MRT", 0.3), ("SEN", 0.1), ("GIN", 0.05), ("FRA", 0.05))
CHUNK = 5000


@dataclass
class Dataset:
    """Ids the benchmark needs to build page URLs."""

    traveller_id: uuid.UUID
    crossing_id: uuid.UUID
    surname: str
    referral_id: uuid.UUID


Row = dict[str, Any]


def _chunks(rows: list[Row]) -> Iterator[list[Row]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _insert(engine: Engine, model: type[SQLModel], rows: list[Row]) -> None:
    """Core executemany in chunks; columns left out take their defaults (ids, created_at)."""
    with engine.begin() as conn:
        for chunk in _chunks(rows):
            conn.execute(insert(model.__table__), chunk)  # type: ignore[attr-defined]


def _nationality(rng: random.Random) -> str:
    return rng.choices([n for n, _ in NATIONALITIES], [w for _, w in NATIONALITIES])[0]


def _people(rng: random.Random, count: int) -> tuple[list[Row], list[Row]]:
    travellers, documents = [], []
    for n in range(count):
        surname, given = rng.choice(SURNAMES), rng.choice(GIVEN)
        nationality = _nationality(rng)
        person = {
            "id": uuid7(),
            "origin": POST,
            "surname": surname,
            "given_names": given,
            "name_key": name_key(surname, given),
            "date_of_birth": date(1950, 1, 1) + timedelta(days=rng.randrange(0, 27000)),
            "sex": rng.choice("MF"),
            "nationality": nationality,
        }
        travellers.append(person)
        documents.append(
            {
                "id": uuid7(),
                "origin": POST,
                "traveller_id": person["id"],
                "issuing_state": nationality,
                "document_type": "P",
                "number": f"B{n:07d}",
                "number_norm": f"B{n:07d}",
                "mrz_checks": {},
            }
        )
    return travellers, documents


def _times(rng: random.Random, count: int, now: datetime) -> list[datetime]:
    """Crossing times over the last 365 days; the newest 40 within the last two hours."""
    times = [now - timedelta(seconds=rng.randrange(7200, 365 * 86400)) for _ in range(count - 40)]
    times += [now - timedelta(seconds=rng.randrange(60, 7200)) for _ in range(40)]
    return sorted(times)


def _receipt(key: Any, crossing: Row, document: Row) -> str:
    claims = ReceiptClaims(
        1,
        crossing["id"],
        POST,
        crossing["direction"],
        crossing["occurred_at"].replace(microsecond=0),
        document_hash(
            document["issuing_state"], document["number_norm"], key=receipt_binding_key(key)
        ),
    )
    return sign_receipt(claims, key)


def _crossings(
    rng: random.Random, count: int, documents: list[Row], officer_ids: list[uuid.UUID], key: Any
) -> list[Row]:
    now = datetime.now(UTC)
    last_direction: dict[uuid.UUID, str] = {}
    crossings = []
    for when in _times(rng, count, now):
        document = rng.choice(documents)
        direction = "exit" if last_direction.get(document["id"]) == "entry" else "entry"
        last_direction[document["id"]] = direction
        crossing = {
            "id": uuid7(),
            "origin": POST,
            "post": POST,
            "direction": direction,
            "occurred_at": when,
            "officer_id": rng.choice(officer_ids),
            "traveller_id": document["traveller_id"],
            "document_id": document["id"],
            "mode": rng.choice(("foot", "car", "bus", "truck")),
            "companions": [],
            "decision": "refused" if rng.random() < 0.01 else "cleared",
            "checks": [],
            "stay_allowed_until": (when + timedelta(days=90)).date()
            if direction == "entry"
            else None,
            "receipt": "",
            "_document": document,
        }
        crossings.append(crossing)
    for crossing in crossings[-50:]:  # receipts are opened for the newest ones only
        crossing["receipt"] = _receipt(key, crossing, crossing["_document"])
    for crossing in crossings:
        del crossing["_document"]
    return crossings


def _watchlist_and_alerts(rng: random.Random, crossings: list[Row]) -> tuple[list[Row], list[Row]]:
    entries = [
        {
            "entry_id": uuid.uuid4(),
            "origin": "MR-NATIONAL",
            "external_id": f"E{n}",
            "kind": "document",
            "issuing_state": "MLI",
            "document_number": f"Z{n:07d}",
            "number_norm": f"Z{n:07d}",
            "reason": "reported lost",
            "action": "protect" if n % 10 == 0 else "refer_secondary",
            "source": "interpol",
            "valid_from": date(2020, 1, 1),
        }
        for n in range(50)
    ]
    alerts = []
    for crossing in rng.sample(crossings, 200):
        entry = rng.choice(entries)
        alerts.append(
            {
                "origin": POST,
                "crossing_id": crossing["id"],
                "entry_id": entry["entry_id"],
                "entry_version": 1,
                "kind": "document",
                "evidence": "document",
                "score": 100.0,
                "action": entry["action"],
            }
        )
    return entries, alerts


def _audit_events(crossings: list[Row]) -> list[Row]:
    return [
        {
            "origin": POST,
            "at": crossing["occurred_at"],
            "officer_id": crossing["officer_id"],
            "action": "create",
            "record_type": "crossing",
            "record_id": str(crossing["id"]),
            "purpose": "registration",
            "detail": {},
            "prev_hash": GENESIS_HASH,
            "hash": uuid7().hex + uuid7().hex,
        }
        for crossing in crossings
    ]


def load_dataset(data_dir: Path, crossings: int, seed: int = 7) -> Dataset:
    """Fill the post's SQLite database; return ids for the page URLs."""
    rng = random.Random(seed)
    engine = create_engine(f"sqlite:///{data_dir / 'borderpost.db'}")
    key = load_or_create_node_key(data_dir / "keys" / "node_ed25519.pem")
    with engine.connect() as conn:
        officer_ids = list(conn.execute(select(Officer.id)).scalars())
    travellers, documents = _people(rng, max(10, crossings * 2 // 5))
    rows = _crossings(rng, crossings, documents, officer_ids, key)
    entries, alerts = _watchlist_and_alerts(rng, rows)
    referrals = [
        {
            "id": uuid7(),
            "origin": POST,
            "crossing_id": crossing["id"],
            "category": "unaccompanied_minor",
            "note": "child travelling alone",
            "created_by": crossing["officer_id"],
        }
        for crossing in rng.sample(rows, 100)
    ]
    for model, records in (
        (Traveller, travellers),
        (TravelDocument, documents),
        (Crossing, rows),
        (WatchlistEntry, entries),
        (Alert, alerts),
        (ProtectionReferral, referrals),
        (AuditEvent, _audit_events(rows)),
    ):
        _insert(engine, model, records)
    engine.dispose()  # no ANALYZE: posts never run it (see the module docstring)
    last = rows[-1]
    person = next(t for t in travellers if t["id"] == last["traveller_id"])
    return Dataset(last["traveller_id"], last["id"], person["surname"], referrals[0]["id"])


class WebUser:
    """An httpx client logged in through the web login form, like a browser."""

    def __init__(self, base: str, username: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
        form = self.client.get("/web/login")
        if form.status_code != 200:
            raise SystemExit("the web pages are not served: wire web_routes() in registry/app.py")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        response = self.client.post(
            "/web/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        )
        if response.status_code != 303:
            raise SystemExit(f"login of {username} failed: {response.status_code}")

    def time(self, path: str, runs: int) -> list[float]:
        first = self.client.get(path)
        if first.status_code != 200:
            raise SystemExit(f"GET {path} answered {first.status_code}: {first.text[:300]}")
        timings = []
        for _ in range(runs):
            start = time.perf_counter()
            response = self.client.get(path)
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, path
        return timings


def pages(data: Dataset) -> list[tuple[str, str]]:
    return [
        ("desk", "/web/desk"),
        ("desk", f"/web/receipts/{data.crossing_id}?paper=80mm"),
        ("desk", f"/web/search?name={data.surname.replace(' ', '+')}"),
        ("desk", f"/web/travellers/{data.traveller_id}"),
        ("desk", "/web/stays?kind=overstays"),
        ("desk", "/web/stays?kind=open"),
        ("desk", f"/web/crossings/{data.crossing_id}"),
        ("desk", "/web/account"),
        ("chief", "/web/alerts"),
        ("chief", "/web/officers/activity"),
        ("chief", "/web/officers/activity?username=desk"),
        ("chief", "/web/officers/activity?username=desk&offset=500"),
        ("care", "/web/referrals"),
        ("care", f"/web/referrals/{data.referral_id}"),
        ("analyst", "/web/hq/dashboard"),
        ("analyst", f"/web/hq/search?name={data.surname.replace(' ', '+')}"),
        ("analyst", f"/web/hq/travellers/{data.traveller_id}"),
        ("analyst", "/web/hq/stays?kind=overstays"),
        ("analyst", "/web/hq/stays?kind=open"),
        ("link", "/web/liaison"),
        ("root", "/web/admin/officers"),
        ("root", "/web/admin/sync"),
    ]  # the watchlist import page is national's (a post answers 403)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def run(
    crossings: int, runs: int, budget_ms: float, keep: Path | None, only: str | None = None
) -> int:
    root = keep or Path(tempfile.mkdtemp(prefix="bp-bench-pages-"))
    env = node_env(root / "post", node_code=POST, sync_interval_seconds="3600")
    cli(env, "db", "upgrade")
    for username, role in ACCOUNTS:
        cli(
            {**env, "BORDERPOST_NEW_PASSWORD": PASSWORD},
            "officer",
            "add",
            "--username",
            username,
            "--full-name",
            username.title(),
            "--role",
            role,
        )
    started = time.perf_counter()
    data = load_dataset(root / "post", crossings)
    print(f"loaded {crossings} crossings in {time.perf_counter() - started:.1f} s")
    server = ServerProcess(env).start()
    failures = 0
    try:
        users: dict[str, WebUser] = {}
        print(f"{'page':58} {'p50 ms':>8} {'p95 ms':>8}  verdict (p95 <= {budget_ms:g} ms)")
        for username, path in pages(data):
            if only and only not in path:
                continue
            user = users.get(username) or users.setdefault(username, WebUser(server.url, username))
            timings = user.time(path, runs)
            p50, p95 = statistics.median(timings), percentile(timings, 0.95)
            verdict = "PASS" if p95 <= budget_ms else "FAIL"
            failures += verdict == "FAIL"
            print(f"{path[:58]:58} {p50:8.1f} {p95:8.1f}  {verdict}")
    finally:
        server.stop()
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crossings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--budget-ms", type=float, default=300.0)
    parser.add_argument("--keep", type=Path, default=None, help="keep the data in this folder")
    parser.add_argument("--only", default=None, help="time only the pages whose path has this")
    args = parser.parse_args()
    sys.exit(run(args.crossings, args.runs, args.budget_ms, args.keep, args.only))


if __name__ == "__main__":
    main()
