"""Crossing reconciliation: a scenario with known ground truth for every outcome, the JSON
and CSV reports, input forms, and a property test against the naive nested-loop
implementation of the same rules (``bench/reconcile.py``)."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.reconcile import fact_table, naive_reconcile
from sync.reconcile.core import reconcile
from sync.reconcile.model import (
    Discrepancy,
    FactTable,
    Outcome,
    ReconcileConfig,
    ReconcileResult,
)
from sync.reconcile.report import report, report_csv
from tests.support.reconcile_scenario import (
    AS_OF,
    CONFIG,
    GOGUI,
    KOBENI,
    OURS,
    PAIRS,
    THEIRS,
    at,
    fact,
    our_exit,
    their_entry,
)


@pytest.fixture(scope="module")
def result() -> ReconcileResult:
    return reconcile(OURS, THEIRS, pairs=PAIRS, config=CONFIG)


def by_kind(result: ReconcileResult, kind: Outcome) -> list[Discrepancy]:
    return [d for d in result.discrepancies if d.kind is kind]


def ids(discrepancy: Discrepancy) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return discrepancy.our_ids, discrepancy.their_ids


# ------------------------------------------------------------------------------------------
# the scenario
# ------------------------------------------------------------------------------------------
def test_outcome_counts(result: ReconcileResult) -> None:
    assert dict(result.counts) == {
        Outcome.MATCHED: 6,  # A, D, E (skew within tolerance), J day 2, K, M
        Outcome.PENDING: 2,  # G (exit), Q (entry): their windows are still open
        Outcome.EXIT_WITHOUT_ENTRY: 3,  # B, J day 1, N (first of two)
        Outcome.ENTRY_WITHOUT_EXIT: 1,  # L
        Outcome.DATA_MISMATCH: 2,  # C (date of birth), P (nationality)
        Outcome.DUPLICATE: 3,  # D, M, N (second)
        Outcome.TIMING_ANOMALY: 2,  # F (clock skew), H (travel time)
        Outcome.OTHER_DOCUMENT: 0,  # no person pseudonyms in this scenario
    }
    assert result.match_rate == pytest.approx(6 / 17)
    assert result.ours_total == len(OURS) and result.theirs_total == len(THEIRS)
    assert result.out_of_scope == 1
    assert result.crossings_by_pair == {GOGUI: (14, 8), KOBENI: (5, 2)}


def test_matched_pairs(result: ReconcileResult) -> None:
    assert sorted(result.matched_pairs()) == [
        ("o-commuter-2", "t-commuter-2"),
        ("o-dup-second", "t-dup"),
        ("o-in-dup-first", "t-out-dup"),
        ("o-in-matched", "t-out-matched"),
        ("o-matched", "t-matched"),
        ("o-skew-ok", "t-skew-ok"),
    ]


def test_missing_entries_and_exits(result: ReconcileResult) -> None:
    missing = by_kind(result, Outcome.EXIT_WITHOUT_ENTRY)
    assert [ids(d) for d in missing] == [
        (("o-missing",), ()),
        (("o-commuter-1",), ()),
        (("o-twice-1",), ()),
    ]
    assert missing[0].pair == GOGUI and missing[0].doc_pseudonym == "B"
    assert missing[0].at == at(1, 9)
    assert missing[0].reason == (
        "our exit at MR-GOGUI on 2026-03-01 09:00 UTC: no partner entry at ML-GOGUI within 24h"
    )
    (no_exit,) = by_kind(result, Outcome.ENTRY_WITHOUT_EXIT)
    assert ids(no_exit) == (("o-in-no-exit",), ()) and no_exit.pair == KOBENI
    assert "no partner exit at ML-NIORO" in no_exit.reason


def test_forged_document_is_a_data_mismatch(result: ReconcileResult) -> None:
    forged, nationality = by_kind(result, Outcome.DATA_MISMATCH)
    assert ids(forged) == (("o-forged",), ("t-forged",))
    assert forged.fields == ("date_of_birth",)
    assert forged.reason == (
        "same document, different date_of_birth (ours 1990-01-01, theirs 1985-06-15)"
    )
    assert ids(nationality) == (("o-nat",), ("t-nat",))
    assert nationality.fields == ("nationality",)
    assert "ours MRT, theirs SEN" in nationality.reason


def test_duplicates(result: ReconcileResult) -> None:
    exit_twice, neither, entry_twice = by_kind(result, Outcome.DUPLICATE)
    assert ids(exit_twice) == (("o-dup-first", "o-dup-second"), ("t-dup",))
    assert exit_twice.reason == (
        "our exit at MR-GOGUI registered twice, 3m apart; both would pair with t-dup"
    )
    assert ids(neither) == (("o-twice-2", "o-twice-1"), ())
    assert neither.reason.endswith("neither has a counterpart")
    assert ids(entry_twice) == (("o-in-dup-second", "o-in-dup-first"), ("t-out-dup",))
    assert entry_twice.pair == KOBENI


def test_clock_skew_and_travel_time(result: ReconcileResult) -> None:
    skew, slow = by_kind(result, Outcome.TIMING_ANOMALY)
    assert ids(skew) == (("o-skew-bad",), ("t-skew-bad",))
    assert skew.reason == (
        "entry at ML-GOGUI recorded 1h30m before the exit at MR-GOGUI (clock-skew tolerance 10m)"
    )
    assert ids(slow) == (("o-slow",), ("t-slow",))
    assert slow.reason == "travel time 15h from MR-GOGUI to ML-GOGUI exceeds 12h"


def test_pending_becomes_missing_once_the_window_has_passed() -> None:
    later = ReconcileConfig(as_of=AS_OF + timedelta(days=1))
    result = reconcile(OURS, THEIRS, pairs=PAIRS, config=later)
    assert result.counts[Outcome.PENDING] == 0
    assert result.counts[Outcome.EXIT_WITHOUT_ENTRY] == 4
    assert result.counts[Outcome.ENTRY_WITHOUT_EXIT] == 2


def test_tolerance_boundaries() -> None:
    def outcome(entry_offset: timedelta) -> Outcome:
        result = reconcile(
            [our_exit("x", at(1, 12), "A")],
            [their_entry("e", at(1, 12) + entry_offset, "A")],
            pairs=PAIRS,
            config=CONFIG,
        )
        (found,) = [o for o, n in result.counts.items() if n]
        return found

    assert outcome(-timedelta(minutes=10)) is Outcome.MATCHED
    assert outcome(-timedelta(minutes=10, seconds=1)) is Outcome.TIMING_ANOMALY
    assert outcome(timedelta(hours=12)) is Outcome.MATCHED
    assert outcome(timedelta(hours=12, seconds=1)) is Outcome.TIMING_ANOMALY
    assert outcome(timedelta(hours=24)) is Outcome.TIMING_ANOMALY
    assert outcome(-timedelta(hours=24)) is Outcome.TIMING_ANOMALY


def test_entry_beyond_the_window_does_not_pair() -> None:
    result = reconcile(
        [our_exit("x", at(1, 12), "A")],
        [their_entry("e", at(2, 12, 1), "A")],
        pairs=PAIRS,
        config=CONFIG,
    )
    assert result.counts[Outcome.EXIT_WITHOUT_ENTRY] == 1
    assert result.counts[Outcome.ENTRY_WITHOUT_EXIT] == 1


def test_mismatch_with_bad_timing_reports_both() -> None:
    result = reconcile(
        [our_exit("x", at(1, 12), "A", date_of_birth="1990-01-01", name_pseudonym="n1")],
        [their_entry("e", at(1, 10), "A", date_of_birth="1991-01-01", name_pseudonym="n2")],
        pairs=PAIRS,
        config=CONFIG,
    )
    (mismatch,) = result.discrepancies
    assert mismatch.kind is Outcome.DATA_MISMATCH
    assert mismatch.fields == ("date_of_birth", "name")
    assert "name (pseudonyms differ)" in mismatch.reason
    assert "also entry at ML-GOGUI recorded 2h before the exit" in mismatch.reason


def test_unknown_values_are_not_mismatches() -> None:
    result = reconcile(
        [our_exit("x", at(1, 12), "A", nationality="MRT", date_of_birth=None)],
        [their_entry("e", at(1, 12, 30), "A", nationality=None, date_of_birth="1990-01-01")],
        pairs=PAIRS,
        config=CONFIG,
    )
    assert result.counts[Outcome.MATCHED] == 1


def test_an_exit_pairs_only_with_the_paired_post_and_direction() -> None:
    result = reconcile(
        [our_exit("x", at(1, 12), "A")],
        [fact("e", "ML-NIORO", "entry", at(1, 12, 30), "A")],  # wrong post for MR-GOGUI
        pairs=PAIRS,
        config=CONFIG,
    )
    # the ML-NIORO entry belongs to the MR-KOBENI flow: neither finds a counterpart
    assert result.counts[Outcome.EXIT_WITHOUT_ENTRY] == 1
    assert result.counts[Outcome.ENTRY_WITHOUT_EXIT] == 1
    assert result.out_of_scope == 0


# ------------------------------------------------------------------------------------------
# reports
# ------------------------------------------------------------------------------------------
def test_report_json(result: ReconcileResult) -> None:
    body = report(result, period=(date(2026, 3, 1), date(2026, 3, 10)))
    json.dumps(body)
    assert body["period"] == {"from": "2026-03-01", "to": "2026-03-10"}
    assert body["as_of"] == "2026-03-10T12:00:00+00:00"
    assert body["pair"] is None
    assert body["counts"]["matched"] == 6 and body["counts"]["duplicate"] == 3
    assert body["match_rate"] == pytest.approx(6 / 17)
    assert body["crossings"] == {"ours": 19, "theirs": 10, "out_of_scope": 1}
    assert body["settings"]["window_seconds"] == 86400
    assert [(p["ours"], p["theirs"]) for p in body["by_pair"]] == PAIRS
    assert len(body["discrepancies"]) == 11
    first = body["discrepancies"][0]
    assert first == {
        "kind": "exit_without_entry",
        "our_post": "MR-GOGUI",
        "their_post": "ML-GOGUI",
        "our_ids": ["o-missing"],
        "their_ids": [],
        "doc_pseudonym": "B",
        "at": "2026-03-01T09:00:00+00:00",
        "fields": [],
        "reason": (
            "our exit at MR-GOGUI on 2026-03-01 09:00 UTC: no partner entry at ML-GOGUI within 24h"
        ),
    }


def test_report_for_one_pair(result: ReconcileResult) -> None:
    body = report(result, pair=KOBENI)
    assert body["pair"] == {"ours": "MR-KOBENI", "theirs": "ML-NIORO"}
    assert body["counts"] == {
        "matched": 2,
        "pending": 1,
        "exit_without_entry": 0,
        "entry_without_exit": 1,
        "data_mismatch": 0,
        "duplicate": 1,
        "timing_anomaly": 0,
        "other_document": 0,
    }
    assert body["match_rate"] == pytest.approx(2 / 4)
    assert {d["our_post"] for d in body["discrepancies"]} == {"MR-KOBENI"}
    assert body["crossings"] == {"ours": 5, "theirs": 2, "out_of_scope": None}
    with pytest.raises(ValueError):
        report(result, pair=("MR-NKC", "ML-NOWHERE"))


def test_report_csv(result: ReconcileResult) -> None:
    rows = list(csv.DictReader(io.StringIO(report_csv(result))))
    assert len(rows) == len(result.discrepancies) == 11
    assert list(rows[0]) == [
        "kind",
        "our_post",
        "their_post",
        "our_ids",
        "their_ids",
        "doc_pseudonym",
        "at",
        "fields",
        "reason",
    ]
    forged = next(r for r in rows if r["kind"] == "data_mismatch")
    assert forged["our_ids"] == "o-forged" and forged["their_ids"] == "t-forged"
    assert forged["fields"] == "date_of_birth"
    duplicate = next(r for r in rows if r["kind"] == "duplicate")
    assert duplicate["our_ids"] == "o-dup-first;o-dup-second"
    kobeni = list(csv.DictReader(io.StringIO(report_csv(result, pair=KOBENI))))
    assert {r["their_post"] for r in kobeni} == {"ML-NIORO"} and len(kobeni) == 2


def test_empty_input() -> None:
    result = reconcile([], [], pairs=PAIRS, config=CONFIG)
    assert sum(result.counts.values()) == 0 and result.match_rate is None
    assert report(result)["discrepancies"] == [] and report_csv(result).count("\n") == 1


# ------------------------------------------------------------------------------------------
# input forms and validation
# ------------------------------------------------------------------------------------------
def test_epoch_seconds_and_columns_give_the_same_result(result: ReconcileResult) -> None:
    epoch = [replace(f, occurred_at=f.occurred_at.timestamp()) for f in OURS]  # type: ignore[union-attr]
    again = reconcile(epoch, FactTable.from_facts(THEIRS), pairs=PAIRS, config=CONFIG)
    assert again.counts == result.counts
    assert again.discrepancies == result.discrepancies


def test_from_columns_accepts_arrays() -> None:
    table = fact_table(
        ids=["a", "b"],
        posts=["MR-GOGUI", "MR-GOGUI"],
        directions=np.array([True, False]),
        times=np.array([1_773_000_000, 1_773_000_600]),
        docs=["A", "B"],
        dobs=np.array([726_000, -1]),
    )
    assert table.is_exit.tolist() == [True, False]
    assert table.dobs.tolist() == [726_000, -1] and table.expiries.tolist() == [-1, -1]
    assert list(table.names) == [None, None]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"as_of": datetime(2026, 3, 10)},
        {"as_of": AS_OF, "clock_skew_tolerance": timedelta(hours=13)},
        {"as_of": AS_OF, "max_travel_time": timedelta(hours=25)},
        {"as_of": AS_OF, "duplicate_interval": timedelta(days=2)},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ReconcileConfig(**kwargs)  # type: ignore[arg-type]


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="only one pair"):
        reconcile([], [], pairs=[GOGUI, ("MR-GOGUI", "ML-NIORO")], config=CONFIG)
    with pytest.raises(ValueError, match="timezone-aware"):
        reconcile([our_exit("x", datetime(2026, 3, 1), "A")], [], pairs=PAIRS, config=CONFIG)
    with pytest.raises(ValueError, match="direction"):
        reconcile([fact("x", "MR-GOGUI", "out", at(1, 1), "A")], [], pairs=PAIRS, config=CONFIG)
    with pytest.raises(ValueError, match="document pseudonym"):
        reconcile([our_exit("x", at(1, 1), "")], [], pairs=PAIRS, config=CONFIG)


# ------------------------------------------------------------------------------------------
# property: same counts as the naive nested loop, and every crossing accounted for
# ------------------------------------------------------------------------------------------
POSTS_OURS = ["MR-GOGUI", "MR-KOBENI", "MR-NKC"]
POSTS_THEIRS = ["ML-GOGUI", "ML-NIORO", "ML-KAYES"]
BASE_TIME = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())


def crossings(side_posts: list[str]) -> st.SearchStrategy[list[tuple]]:
    return st.lists(
        st.tuples(
            st.sampled_from(side_posts),
            st.booleans(),
            st.integers(0, 3 * 86400),  # dense: three days, few documents
            st.sampled_from("ABCD"),
            st.sampled_from(["MRT", "MLI", None]),
            st.sampled_from([726_000, 726_001, -1]),
        ),
        max_size=30,
    )


def columns(rows: list[tuple], prefix: str) -> dict[str, object]:
    return {
        "ids": [f"{prefix}{i}" for i in range(len(rows))],
        "posts": [r[0] for r in rows],
        "directions": np.array([r[1] for r in rows], dtype=np.bool_),
        "times": np.array([BASE_TIME + r[2] for r in rows], dtype=np.int64),
        "docs": [r[3] for r in rows],
        "nationalities": [r[4] for r in rows],
        "dobs": np.array([r[5] for r in rows], dtype=np.int64),
        "expiries": np.full(len(rows), -1, dtype=np.int64),
    }


@settings(max_examples=300, deadline=None)
@given(ours=crossings(POSTS_OURS), theirs=crossings(POSTS_THEIRS), hours=st.integers(1, 4))
def test_same_counts_as_the_naive_implementation(
    ours: list[tuple], theirs: list[tuple], hours: int
) -> None:
    config = ReconcileConfig(
        as_of=datetime(2026, 3, 3, 12, tzinfo=UTC),
        window=timedelta(hours=6 * hours),
        max_travel_time=timedelta(hours=3 * hours),
        clock_skew_tolerance=timedelta(minutes=30),
        duplicate_interval=timedelta(hours=hours),
    )
    our_columns, their_columns = columns(ours, "o"), columns(theirs, "t")
    result = reconcile(
        fact_table(**our_columns),  # type: ignore[arg-type]
        fact_table(**their_columns),  # type: ignore[arg-type]
        pairs=PAIRS,
        config=config,
    )
    expected = naive_reconcile(our_columns, their_columns, PAIRS, config)
    assert {o: n for o, n in result.counts.items() if n} == {o: n for o, n in expected.items()}
    # every in-scope crossing is in exactly one case
    pairs = sum(result.counts[o] for o in (Outcome.MATCHED, Outcome.DATA_MISMATCH))
    pairs += result.counts[Outcome.TIMING_ANOMALY]
    in_scope = len(ours) + len(theirs) - result.out_of_scope
    assert 2 * pairs + sum(result.counts.values()) - pairs == in_scope


@settings(max_examples=100, deadline=None)
@given(ours=crossings(POSTS_OURS), theirs=crossings(POSTS_THEIRS), seed=st.integers(0, 99))
def test_input_order_does_not_change_counts(
    ours: list[tuple], theirs: list[tuple], seed: int
) -> None:
    def run(our_rows: list[tuple], their_rows: list[tuple]) -> Counter[Outcome]:
        result = reconcile(
            fact_table(**columns(our_rows, "o")),  # type: ignore[arg-type]
            fact_table(**columns(their_rows, "t")),  # type: ignore[arg-type]
            pairs=PAIRS,
            config=CONFIG,
        )
        return Counter(result.counts)

    # distinct times so that no tie is broken by input order
    ours = list({r[2]: r for r in ours}.values())
    theirs = [r for r in {r[2]: r for r in theirs}.values() if r[2] not in {o[2] for o in ours}]
    shuffled_ours, shuffled_theirs = ours[:], theirs[:]
    random.Random(seed).shuffle(shuffled_ours)
    random.Random(seed + 1).shuffle(shuffled_theirs)
    assert run(ours, theirs) == run(shuffled_ours, shuffled_theirs)


# ------------------------------------------------------------------------------------------
# blinded keys (sync.exchange.pseudonyms): pseudonymised values, the person element
# ------------------------------------------------------------------------------------------
def blinded(label: str) -> str:
    """A 43-character value standing for a double-blinded key."""
    return (label * 43)[:43]


PERSON_CONFIG = replace(CONFIG, name_is_person=True)


def test_pseudonymised_birth_dates_and_nationalities_are_compared() -> None:
    same = {"date_of_birth": blinded("d"), "nationality": blinded("n")}
    result = reconcile(
        [
            our_exit("x1", at(1, 8), "A", name_pseudonym=blinded("p"), **same),
            our_exit("x2", at(1, 9), "B", name_pseudonym=blinded("q"), **same),
            our_exit("x3", at(1, 10), "C", name_pseudonym=blinded("r"), **same),
        ],
        [
            their_entry("e1", at(1, 9), "A", name_pseudonym=blinded("P"), **same),
            their_entry(
                "e2",
                at(1, 10),
                "B",
                name_pseudonym=blinded("Q"),
                date_of_birth=blinded("D"),
                nationality=blinded("n"),
            ),
            their_entry(
                "e3",
                at(1, 11),
                "C",
                name_pseudonym=blinded("R"),
                date_of_birth=blinded("d"),
                nationality=blinded("N"),
            ),
        ],
        pairs=PAIRS,
        config=PERSON_CONFIG,
    )
    assert result.counts[Outcome.DATA_MISMATCH] == 3
    fields = {d.our_ids[0]: d.fields for d in result.discrepancies}
    # the person element covers birth date and nationality: a name is named only alone
    assert fields == {"x1": ("name",), "x2": ("date_of_birth",), "x3": ("nationality",)}
    reasons = " ".join(d.reason for d in result.discrepancies)
    assert "date_of_birth (pseudonyms differ)" in reasons
    assert "nationality (pseudonyms differ)" in reasons


def test_same_person_with_another_document_is_one_case() -> None:
    person = {"person_pseudonym": blinded("p")}
    result = reconcile(
        [
            our_exit("x1", at(1, 8), "A", **person),
            our_exit("x2", at(2, 8), "B", person_pseudonym=blinded("z")),
        ],
        [
            their_entry("e1", at(1, 9), "A2", **person),  # same person, other document
            their_entry("e2", at(2, 9), "B2", person_pseudonym=blinded("y")),  # someone else
            their_entry("e3", at(1, 7), "A3", **person),  # before the exit: not linked
        ],
        pairs=PAIRS,
        config=CONFIG,
    )
    assert result.counts[Outcome.OTHER_DOCUMENT] == 1
    assert result.counts[Outcome.EXIT_WITHOUT_ENTRY] == 1
    assert result.counts[Outcome.ENTRY_WITHOUT_EXIT] == 2
    (linked,) = [d for d in result.discrepancies if d.kind is Outcome.OTHER_DOCUMENT]
    assert ids(linked) == (("x1",), ("e1",))
    assert linked.fields == ("document",)
    assert "same name, birth date and nationality, different documents" in linked.reason
