"""Crossing reconciliation benchmark: ``sync.reconcile.core.reconcile`` vs a naive nested loop.

Synthetic month on two post pairs, compared on blinded keys as the exchange leaves them
(``sync.exchange.pseudonyms``: documents, the person element, birth dates and nationalities
bound to the document are 43-character double-blinded values; random values of that format
stand for them, since the keys of real ones are pseudorandom too): N trips (default
1,000,000), each an exit on our side and, normally, an entry on the partner side minutes
later (5% of them recorded up to 9 min *before* the exit: clock skew within tolerance). 20%
of trips belong to commuters who cross every 5 days with the same document. Each
discrepancy kind hits 2% of trips:

* missing entry               -> exit_without_entry
* forged date of birth        -> data_mismatch
* exit registered twice       -> duplicate (an extra exit 1-5 min after the first)
* timing (half: entry 30-120 min before the exit; half: 13-20 h travel) -> timing_anomaly

The generator knows the ground truth, and the run checks that ``reconcile`` reports exactly
those counts. Timings: ``reconcile`` on columns (a ``FactTable`` built by ``fact_table``)
and on ``CrossingFact`` objects (conversion included). Then a 10k-crossing sample (all
crossings of a random subset of documents) runs through both ``reconcile`` and
``naive_reconcile``, an honest nested-loop implementation of the same rules written from the
docstring of ``sync.reconcile.core`` (no grouping, no sorting by key, no numpy); their
outcome counts must agree.

Usage: python bench/reconcile.py [--trips 1000000] [--sample 10000] [--seed 7]
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

try:
    from sync.reconcile.core import reconcile
except ImportError:  # running from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sync.reconcile.core import reconcile
from sync.reconcile.model import (
    MISSING,
    PSEUDONYM_CODES,
    BoolArray,
    CrossingFact,
    FactTable,
    IntArray,
    Outcome,
    ReconcileConfig,
)

PAIRS = [("MR-GOGUI", "ML-GOGUI"), ("MR-KOBENI", "ML-NIORO")]
START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 30
KINDS = ("normal", "missing", "forged", "duplicate", "timing")
SHARE = (0.92, 0.02, 0.02, 0.02, 0.02)


@dataclass
class Synthetic:
    ours: dict[str, Any]  # fact_table keyword arguments
    theirs: dict[str, Any]
    expected: Counter[str]
    config: ReconcileConfig


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------
def fact_table(
    *,
    ids: list[str],
    posts: list[str],
    directions: BoolArray,
    times: IntArray,
    docs: list[str],
    names: list[str | None] | None = None,
    nationalities: list[str | None] | None = None,
    dobs: IntArray | None = None,
    expiries: IntArray | None = None,
) -> FactTable:
    """A ``FactTable`` from generated columns: ``directions`` a bool is-exit array, ``times``
    Unix seconds, ``dobs``/``expiries`` date ordinals; omitted optional columns are unknown."""
    size = len(ids)
    unknown: list[str | None] = [None] * size

    def ordinals(column: IntArray | None) -> IntArray:
        return column.astype(np.int64) if column is not None else np.full(size, MISSING, np.int64)

    return FactTable(
        ids=ids,
        posts=posts,
        is_exit=directions.astype(np.bool_),
        times=times.astype(np.int64),
        docs=docs,
        names=names if names is not None else unknown,
        persons=names,  # the person element: links one person across two documents
        nationalities=nationalities if nationalities is not None else unknown,
        dobs=ordinals(dobs),
        expiries=ordinals(expiries),
    )


def _documents(count: int) -> list[str]:
    """``count`` distinct blinded-looking values (43 characters of base64url)."""
    text = base64.urlsafe_b64encode(os.urandom(33 * count)).decode()
    return [text[44 * i : 44 * i + 43] for i in range(count)]


def _trip_times(rng: np.random.Generator, trips: int) -> tuple[np.ndarray, np.ndarray]:
    """Exit times (Unix seconds) and traveller index per trip; commuters every 5 days."""
    start = int(START.timestamp())
    commuter_trips = (trips // 5) // 5 * 5
    single_trips = trips - commuter_trips
    singles = start + rng.integers(0, (DAYS - 1) * 86400, single_trips)
    commuters = commuter_trips // 5
    first = start + rng.integers(0, 5 * 86400, commuters)
    repeats = first[:, None] + np.arange(5)[None, :] * 5 * 86400
    times = np.concatenate([singles, repeats.ravel()])
    traveller = np.concatenate(
        [np.arange(single_trips), single_trips + np.repeat(np.arange(commuters), 5)]
    )
    return times.astype(np.int64), traveller


def generate(trips: int, seed: int) -> Synthetic:
    """Columns for both sides plus the ground-truth outcome counts."""
    rng = np.random.default_rng(seed)
    exit_time, traveller = _trip_times(rng, trips)
    travellers = int(traveller.max()) + 1
    docs = _documents(travellers)
    pair = rng.integers(0, len(PAIRS), travellers)[traveller]
    # birth dates bound to the document: one pseudonym code per traveller (a forged one
    # differs); the person element covers the birth date, so a forged one changes it too
    dob = PSEUDONYM_CODES + np.arange(travellers, dtype=np.int64)[traveller]
    expiry = (rng.integers(739_000, 742_000, travellers))[traveller]
    nationality = traveller
    nationality_keys = _documents(travellers)
    persons = _documents(travellers)
    forged_persons = _documents(travellers)
    kind = rng.choice(len(KINDS), size=trips, p=SHARE)
    travel = rng.integers(5 * 60, 90 * 60, trips)
    early = rng.random(trips) < 0.05
    travel[early] = -rng.integers(0, 9 * 60, int(early.sum()))
    timing = kind == KINDS.index("timing")
    late = timing & (rng.random(trips) < 0.5)
    travel[timing & ~late] = -rng.integers(30 * 60, 120 * 60, int((timing & ~late).sum()))
    travel[late] = rng.integers(13 * 3600, 20 * 3600, int(late.sum()))
    entry_dob = dob.copy()
    forged = kind == KINDS.index("forged")
    entry_dob[forged] += travellers

    duplicate = kind == KINDS.index("duplicate")
    our_rows = np.concatenate([np.arange(trips), np.flatnonzero(duplicate)])
    our_time = np.concatenate(
        [exit_time, exit_time[duplicate] + rng.integers(60, 300, int(duplicate.sum()))]
    )
    has_entry = kind != KINDS.index("missing")
    their_rows = np.flatnonzero(has_entry)
    ours = _side(
        "MR", our_rows, our_time, True, [PAIRS[p][0] for p in pair[our_rows]], docs, traveller
    )
    ours |= {
        "names": [persons[t] for t in traveller[our_rows].tolist()],
        "nationalities": [nationality_keys[n] for n in nationality[our_rows].tolist()],
        "dobs": dob[our_rows],
        "expiries": expiry[our_rows],
    }
    theirs = _side(
        "ML",
        their_rows,
        exit_time[their_rows] + travel[their_rows],
        False,
        [PAIRS[p][1] for p in pair[their_rows]],
        docs,
        traveller,
    )
    entry_forged = forged[their_rows].tolist()
    theirs |= {
        "names": [
            forged_persons[t] if f else persons[t]
            for t, f in zip(traveller[their_rows].tolist(), entry_forged, strict=True)
        ],
        "nationalities": [nationality_keys[n] for n in nationality[their_rows].tolist()],
        "dobs": entry_dob[their_rows],
        "expiries": expiry[their_rows],
    }
    expected: Counter[str] = Counter()
    counts = np.bincount(kind, minlength=len(KINDS))
    expected[Outcome.MATCHED] = int(counts[0] + counts[3])
    expected[Outcome.EXIT_WITHOUT_ENTRY] = int(counts[1])
    expected[Outcome.DATA_MISMATCH] = int(counts[2])
    expected[Outcome.DUPLICATE] = int(counts[3])
    expected[Outcome.TIMING_ANOMALY] = int(counts[4])
    as_of = START + timedelta(days=DAYS + 1)
    return Synthetic(ours, theirs, expected, ReconcileConfig(as_of=as_of, name_is_person=True))


def _side(
    prefix: str,
    rows: np.ndarray,
    times: np.ndarray,
    is_exit: bool,
    posts: list[str],
    docs: list[str],
    traveller: np.ndarray,
) -> dict[str, Any]:
    return {
        "ids": [f"{prefix}-{i}" for i in range(rows.size)],
        "posts": posts,
        "directions": np.full(rows.size, is_exit, dtype=np.bool_),
        "times": times.astype(np.int64),
        "docs": [docs[t] for t in traveller[rows].tolist()],
    }


def to_facts(columns: dict[str, Any]) -> list[CrossingFact]:
    """CrossingFact objects (the public input type) with UTC datetimes and dates."""
    direction = "exit" if bool(columns["directions"][0]) else "entry"
    ordinal_dates: dict[int, Any] = {}

    def as_date(ordinal: int) -> Any:
        found = ordinal_dates.get(ordinal)
        if found is None:
            if ordinal >= PSEUDONYM_CODES:  # a blinded value: 43 characters
                found = ordinal_dates[ordinal] = f"{ordinal:043d}"
            else:
                found = ordinal_dates[ordinal] = datetime.fromordinal(ordinal).date()
        return found

    return [
        CrossingFact(
            id=ident,
            post=post,
            direction=direction,
            occurred_at=datetime.fromtimestamp(moment, UTC),
            doc_pseudonym=doc,
            name_pseudonym=name,
            person_pseudonym=name,
            nationality=nationality,
            date_of_birth=as_date(dob),
            document_expiry=as_date(expiry),
        )
        for ident, post, moment, doc, name, nationality, dob, expiry in zip(
            columns["ids"],
            columns["posts"],
            columns["times"].tolist(),
            columns["docs"],
            columns["names"],
            columns["nationalities"],
            columns["dobs"].tolist(),
            columns["expiries"].tolist(),
            strict=True,
        )
    ]


def sample(columns: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    rows = [i for i, doc in enumerate(columns["docs"]) if doc in keep]
    out: dict[str, Any] = {}
    for name, values in columns.items():
        if isinstance(values, np.ndarray):
            out[name] = values[rows]
        else:
            out[name] = [values[i] for i in rows]
    return out


# ------------------------------------------------------------------------------------------
# The naive contender: nested loops over every crossing, same rules
# ------------------------------------------------------------------------------------------
def naive_reconcile(
    ours: dict[str, Any],
    theirs: dict[str, Any],
    pairs: list[tuple[str, str]],
    config: ReconcileConfig,
) -> Counter[str]:
    """Outcome counts by brute force: every entry scans every exit, and so on."""
    as_of, window, travel, skew, interval = config.seconds()
    our_pair = {a: i for i, (a, _) in enumerate(pairs)}
    their_pair = {b: i for i, (_, b) in enumerate(pairs)}
    rows = []  # (index, side, flow, is_exit, time, doc, nationality, dob, expiry)
    for side, columns, mapping in ((0, ours, our_pair), (1, theirs, their_pair)):
        for k in range(len(columns["ids"])):
            pair = mapping.get(columns["posts"][k])
            if pair is None:
                continue
            is_exit = bool(columns["directions"][k])
            flow = 2 * pair + (0 if (side == 0) == is_exit else 1)
            rows.append(
                (
                    k if side == 0 else 10**9 + k,
                    side,
                    flow,
                    is_exit,
                    int(columns["times"][k]),
                    columns["docs"][k],
                    columns["nationalities"][k],
                    int(columns["dobs"][k]),
                    int(columns["expiries"][k]),
                )
            )
    exits = [r for r in rows if r[3]]
    entries = [r for r in rows if not r[3]]
    partner: dict[int, int] = {}
    plausible_pairs: list[tuple[tuple, tuple, bool]] = []
    # 1. plausible: entries in time order take the latest unpaired exit not after them
    for e in sorted(entries, key=lambda r: (r[4] + skew, r[0])):
        best = None
        for x in exits:
            if x[2] != e[2] or x[5] != e[5] or x[0] in partner or x[4] > e[4] + skew:
                continue
            if best is None or (x[4], x[0]) > (best[4], best[0]):
                best = x
        if best is not None and e[4] - best[4] <= travel:
            partner[best[0]], partner[e[0]] = e[0], best[0]
            plausible_pairs.append((best, e, True))
    # 2. anomalous: left-over exits take the nearest left-over entry within the window
    for x in sorted(exits, key=lambda r: (r[4], r[0])):
        if x[0] in partner:
            continue
        best_key, best = None, None
        for e in entries:
            if e[2] != x[2] or e[5] != x[5] or e[0] in partner or abs(e[4] - x[4]) > window:
                continue
            candidate = (abs(e[4] - x[4]), e[4], e[0])
            if best_key is None or candidate < best_key:
                best_key, best = candidate, e
        if best is not None:
            partner[x[0]], partner[best[0]] = best[0], x[0]
            plausible_pairs.append((x, best, False))
    counts: Counter[str] = Counter()
    for x, e, plausible in plausible_pairs:
        differs = any(a != b and a not in (None, -1) and b not in (None, -1) for a, b in
                      ((x[6], e[6]), (x[7], e[7]), (x[8], e[8])))  # fmt: skip
        if differs:
            counts[Outcome.DATA_MISMATCH] += 1
        else:
            counts[Outcome.MATCHED if plausible else Outcome.TIMING_ANOMALY] += 1
    # 3. duplicates among left-overs; the rest are unpaired or pending
    primaries: set[int] = set()
    for c in sorted(rows, key=lambda r: (r[4], r[0])):
        if c[0] in partner:
            continue
        duplicate = any(
            s[0] != c[0] and s[1] == c[1] and s[2] == c[2] and s[3] == c[3] and s[5] == c[5]
            and abs(s[4] - c[4]) <= interval and (s[0] in partner or s[0] in primaries)
            for s in rows
        )  # fmt: skip
        if duplicate:
            counts[Outcome.DUPLICATE] += 1
            continue
        primaries.add(c[0])
        if c[4] + window > as_of:
            counts[Outcome.PENDING] += 1
        else:
            counts[Outcome.EXIT_WITHOUT_ENTRY if c[3] else Outcome.ENTRY_WITHOUT_EXIT] += 1
    return counts


# ------------------------------------------------------------------------------------------
# Run
# ------------------------------------------------------------------------------------------
def _nonzero(counts: Any) -> dict[str, int]:
    return {str(Outcome(k).value): int(v) for k, v in counts.items() if v}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    data = generate(args.trips, args.seed)
    ours_n, theirs_n = len(data.ours["ids"]), len(data.theirs["ids"])
    print(f"generated {ours_n:,} exits and {theirs_n:,} entries in "
          f"{time.perf_counter() - started:.1f}s")  # fmt: skip

    started = time.perf_counter()
    ours_table = fact_table(**data.ours)
    theirs_table = fact_table(**data.theirs)
    result = reconcile(ours_table, theirs_table, pairs=PAIRS, config=data.config)
    columns_seconds = time.perf_counter() - started
    total = ours_n + theirs_n
    print(f"reconcile (columns):  {columns_seconds:6.2f}s  {total / columns_seconds:12,.0f} "
          f"crossings/s  ({len(result.discrepancies):,} discrepancies)")  # fmt: skip
    got = _nonzero(result.counts)
    want = _nonzero(data.expected)
    print(f"  outcomes: {got}")
    print(f"  ground truth {'matches' if got == want else 'DIFFERS: ' + str(want)}")

    our_facts, their_facts = to_facts(data.ours), to_facts(data.theirs)
    started = time.perf_counter()
    object_result = reconcile(our_facts, their_facts, pairs=PAIRS, config=data.config)
    objects_seconds = time.perf_counter() - started
    print(f"reconcile (objects):  {objects_seconds:6.2f}s  {total / objects_seconds:12,.0f} "
          f"crossings/s  (CrossingFact conversion included)")  # fmt: skip
    same_objects = _nonzero(object_result.counts) == got
    del our_facts, their_facts, object_result

    # a sample of whole documents, about args.sample crossings in all
    docs = list(dict.fromkeys(data.ours["docs"]))
    rng = np.random.default_rng(args.seed + 1)
    share = args.sample / total
    keep = {docs[i] for i in np.flatnonzero(rng.random(len(docs)) < share)}
    ours_s, theirs_s = sample(data.ours, keep), sample(data.theirs, keep)
    sample_n = len(ours_s["ids"]) + len(theirs_s["ids"])
    started = time.perf_counter()
    fast = reconcile(
        fact_table(**ours_s),
        fact_table(**theirs_s),
        pairs=PAIRS,
        config=data.config,
    )
    fast_sample_seconds = time.perf_counter() - started
    started = time.perf_counter()
    naive = naive_reconcile(ours_s, theirs_s, PAIRS, data.config)
    naive_seconds = time.perf_counter() - started
    fast_counts, naive_counts = _nonzero(fast.counts), _nonzero(naive)
    print(f"sample of {sample_n:,} crossings:")
    print(f"  reconcile: {fast_sample_seconds:8.3f}s  outcomes {fast_counts}")
    print(f"  naive:     {naive_seconds:8.3f}s  outcomes {naive_counts}")
    agree = fast_counts == naive_counts
    print(f"  outcome counts {'agree' if agree else 'DISAGREE'}")
    ours_rate = total / columns_seconds
    naive_rate = sample_n / naive_seconds
    print(f"throughput ratio (reconcile on {total:,} vs naive on {sample_n:,}): "
          f"{ours_rate / naive_rate:,.0f}x  "
          f"({ours_rate:,.0f} vs {naive_rate:,.0f} crossings/s)")  # fmt: skip
    ok = got == want and agree and same_objects and columns_seconds < 20
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
