"""Presentation of a reconciliation: the JSON report, the CSV of discrepancies, and the
period report with the stored cases' liaison status (API, pages and ``borderpost reconcile``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, date
from typing import Any, Final

from sync.models import Discrepancy as DiscrepancyCase
from sync.reconcile.model import (
    OUTCOMES,
    Discrepancy,
    Outcome,
    ReconcileResult,
    match_rate_of,
)

_CSV_COLUMNS: Final = (
    "kind",
    "our_post",
    "their_post",
    "our_ids",
    "their_ids",
    "doc_pseudonym",
    "at",
    "fields",
    "reason",
)


def _selected(
    result: ReconcileResult, pair: tuple[str, str] | None
) -> tuple[Mapping[Outcome, int], list[Discrepancy]]:
    if pair is None:
        return result.counts, result.discrepancies
    pair = (pair[0], pair[1])
    if pair not in result.counts_by_pair:
        raise ValueError(f"{pair[0]}<->{pair[1]} is not a reconciled pair")
    return result.counts_by_pair[pair], [d for d in result.discrepancies if d.pair == pair]


def report(
    result: ReconcileResult,
    *,
    period: tuple[date, date] | None = None,
    pair: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """JSON-able report: period, settings, counts, match rate, per-pair figures and
    discrepancies; restricted to one ``(our post, their post)`` pair when given."""
    counts, discrepancies = _selected(result, pair)
    config = result.config
    pairs = [pair] if pair is not None else list(result.pairs)
    return {
        "period": (
            {"from": period[0].isoformat(), "to": period[1].isoformat()} if period else None
        ),
        "as_of": config.as_of.astimezone(UTC).isoformat(),
        "pair": {"ours": pair[0], "theirs": pair[1]} if pair is not None else None,
        "settings": {
            "window_seconds": int(config.window.total_seconds()),
            "max_travel_time_seconds": int(config.max_travel_time.total_seconds()),
            "clock_skew_tolerance_seconds": int(config.clock_skew_tolerance.total_seconds()),
            "duplicate_interval_seconds": int(config.duplicate_interval.total_seconds()),
        },
        "crossings": {
            "ours": sum(result.crossings_by_pair[p][0] for p in pairs),
            "theirs": sum(result.crossings_by_pair[p][1] for p in pairs),
            "out_of_scope": result.out_of_scope if pair is None else None,
        },
        "counts": {outcome.value: counts[outcome] for outcome in OUTCOMES},
        "match_rate": match_rate_of(counts),
        "by_pair": [
            {
                "ours": p[0],
                "theirs": p[1],
                "crossings": {
                    "ours": result.crossings_by_pair[p][0],
                    "theirs": result.crossings_by_pair[p][1],
                },
                "counts": {o.value: result.counts_by_pair[p][o] for o in OUTCOMES},
                "match_rate": match_rate_of(result.counts_by_pair[p]),
            }
            for p in pairs
        ],
        "discrepancies": [d.as_dict() for d in discrepancies],
    }


def report_csv(result: ReconcileResult, *, pair: tuple[str, str] | None = None) -> str:
    """The discrepancies as CSV (header row first; ids joined with ';')."""
    _, discrepancies = _selected(result, pair)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for d in discrepancies:
        writer.writerow(
            [
                d.kind.value,
                d.pair[0],
                d.pair[1],
                ";".join(d.our_ids),
                ";".join(d.their_ids),
                d.doc_pseudonym,
                d.at.isoformat(),
                ";".join(d.fields),
                d.reason,
            ]
        )
    return buffer.getvalue()


def discrepancy_view(case: DiscrepancyCase) -> dict[str, Any]:
    """A stored discrepancy case with its liaison status, notes and resolution (JSON-able)."""
    return {
        "id": case.id,
        "our_post": case.our_post,
        "their_post": case.their_post,
        "kind": case.kind,
        "our_ids": case.our_ids,
        "their_ids": case.their_ids,
        "reason": case.reason,
        "at": case.at.isoformat(),
        "status": case.status,
        "resolution": case.resolution,
        "notes": case.notes,
    }


def period_report(
    result: ReconcileResult,
    cases: list[DiscrepancyCase],
    *,
    since: date,
    until: date,
    pair: tuple[str, str] | None,
) -> dict[str, Any]:
    """The reconciliation report plus the open discrepancies with their liaison status."""
    body = report(result, period=(since, until), pair=pair)
    body["open_discrepancies"] = [
        discrepancy_view(c)
        for c in cases
        if c.status == "open" and (pair is None or c.our_post == pair[0])
    ]
    return body
