"""Watchlist name matching benchmark: the in-memory matcher's name + date-of-birth evidence.

Builds a ``WatchlistMatcher`` holding N listed persons (default 20,000; 5% without a date of
birth, which every registration compares on the name alone), names drawn from West African
surnames and given names, a tenth of them written with a Cyrillic look-alike or in Arabic
script. Then times, per registration:

- ``match``: one identity (typed name and date of birth), the usual case where the MRZ and
  the typed data agree (target p95 <= 20 ms);
- ``match_traveller``: the worst case, where the typed name, the MRZ name and both dates of
  birth all differ, so two names are compared against the entries of two dates of birth
  (target p95 <= 40 ms);

and the time to load the listing (``apply`` of every entry version, as ``reload`` does).
PASS/FAIL is judged on p95. No database: the matcher does no I/O.

Usage: .venv/bin/python bench/watchlist_names.py [--entries 20000] [--registrations 300]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

try:
    from registry.watchlists.content import EntryContent, build_version, watchlist_entry_id
    from registry.watchlists.matcher import TravellerProbe, WatchlistMatcher
except ImportError:  # running from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from registry.watchlists.content import EntryContent, build_version, watchlist_entry_id
    from registry.watchlists.matcher import TravellerProbe, WatchlistMatcher
from registry.names import name_key

TARGET_SINGLE_MS = 20.0
TARGET_WORST_MS = 40.0
DAY = date(2025, 6, 1)
SURNAMES = (
    "DIALLO TRAORE KEITA OUEDRAOGO COULIBALY SANGARE DIARRA KONATE CISSE TOURE BA SY SOW KANE "
    "NDIAYE FALL DIOP SAWADOGO KABORE OULD-AHMED OULD-SIDI MINT-MOHAMED CAMARA BAH BARRY"
).split()
GIVEN = (
    "MAMADOU IBRAHIM AMINATA FATOUMATA MOUSSA OUMAR ISSA AISSATA MARIAM SEYDOU BOUBACAR ALI "
    "MOHAMED AHMED SIDI ABDALLAHI KHADIJA YOUSSOUF CHEIKH HAWA"
).split()
ARABIC = ("محمد", "أحمد", "الأنصاري", "أسامة", "يحيى", "فاطمة", "الحسني", "عبد الله")


def listed_name(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.05:
        return rng.choice(ARABIC), f"{rng.choice(ARABIC)} {rng.choice(ARABIC)}"
    surname = rng.choice(SURNAMES)
    if rng.random() < 0.05:
        surname = surname.replace("A", "\u0410", 1)  # a Cyrillic look-alike
    return surname, f"{rng.choice(GIVEN)} {rng.choice(GIVEN)}"


def birth_date(rng: random.Random) -> date:
    return date(1950, 1, 1) + timedelta(days=rng.randrange(60 * 365))


def build(entries: int, rng: random.Random) -> tuple[WatchlistMatcher, float]:
    versions = []
    for n in range(entries):
        surname, given = listed_name(rng)
        content = EntryContent(
            kind="person",
            surname=surname,
            given_names=given,
            date_of_birth=None if rng.random() < 0.05 else birth_date(rng),
            nationality=None,
            issuing_state=None,
            document_number=None,
            reason="bench listing",
            action="refer_secondary",
            valid_from=date(2020, 1, 1),
            valid_to=None,
            active=True,
            face_template=None,
        )
        external = f"bench-{n}"
        versions.append(
            build_version(
                content,
                entry_id=watchlist_entry_id("bench", external),
                version=1,
                origin="MR-BENCH",
                external_id=external,
                source="bench",
                officer=None,
                change_reason="bench",
            )
        )
    matcher = WatchlistMatcher()
    started = time.perf_counter()
    for version in versions:
        matcher.apply(version)
    return matcher, time.perf_counter() - started


def timed(work: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="watchlist name matching benchmark")
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--registrations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    matcher, load_seconds = build(args.entries, rng)
    print(f"{args.entries} listed persons loaded in {load_seconds:.2f} s")
    travellers = [(*listed_name(rng), birth_date(rng)) for _ in range(args.registrations)]
    queue = iter(travellers * 2)

    def single() -> object:
        surname, given, born = next(queue)
        return matcher.match(
            day=DAY,
            issuing_state="MLI",
            number_norm="X0000001",
            name_key=name_key(surname, given),
            date_of_birth=born,
        )

    def worst() -> object:
        surname, given, born = next(queue)
        probe = TravellerProbe(
            documents=(("MLI", "X0000001"), ("MLI", "X0000002")),
            name_keys=(name_key(surname, given), name_key("SMITH", "JOHN")),
            dates_of_birth=(born, born + timedelta(days=1)),
        )
        return matcher.match_traveller(day=DAY, probe=probe)

    checks = []
    for label, work, target in (
        ("match (one identity)", single, TARGET_SINGLE_MS),
        ("match_traveller (typed and MRZ identities differ)", worst, TARGET_WORST_MS),
    ):
        times = timed(work, args.registrations)
        print(f"{label}: p50 {statistics.median(times):.2f} ms, p95 {p95(times):.2f} ms")
        checks.append((f"{label}: p95 <= {target:.0f} ms", p95(times) <= target))
    for label, ok in checks:
        print(f"[{'PASS' if ok else 'FAIL'}] {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
