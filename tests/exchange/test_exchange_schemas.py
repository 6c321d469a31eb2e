"""The liaison API's typed answers (sync.exchange.schemas) encode to the very bytes the
plain dicts they replaced gave: same keys, same order, same values."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest

from sync.exchange.liaison import event_view, positions
from sync.exchange.schemas import CaseView, PeriodReport
from sync.models import Discrepancy, DiscrepancyEvent
from sync.reconcile.core import reconcile
from sync.reconcile.report import discrepancy_view, period_report
from tests.support.reconcile_scenario import CONFIG, OURS, PAIRS, THEIRS


def _case(status: str = "open") -> Discrepancy:
    return Discrepancy(
        id="case-1",
        our_post=PAIRS[0][0],
        their_post=PAIRS[0][1],
        kind="entry_without_exit",
        our_ids=["o-1"],
        their_ids=["t-1"],
        doc_pseudonym="p",
        reason="no exit",
        at=datetime(2026, 1, 1, 8, 30, tzinfo=UTC),
        status=status,
        resolution=None,
        notes=[{"legacy": 1}],
    )


@pytest.mark.parametrize("pair", [None, PAIRS[0]])
def test_the_period_report_keeps_its_bytes(pair: tuple[str, str] | None) -> None:
    result = reconcile(OURS, THEIRS, pairs=PAIRS, config=CONFIG)
    body = period_report(
        result, [_case()], since=date(2026, 1, 1), until=date(2026, 2, 1), pair=pair
    )
    assert body["discrepancies"] and body["open_discrepancies"] and body["by_pair"]
    typed = msgspec.convert(body, PeriodReport)
    assert msgspec.json.encode(typed) == msgspec.json.encode(body)


def test_a_case_view_keeps_its_bytes() -> None:
    case = _case("conflict")
    events = [
        DiscrepancyEvent(
            id=str(uuid.uuid4()),
            discrepancy_id=case.id,
            origin=origin,
            author=author,
            at=datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=UTC),
            resolution=resolution,
            reasons=["clock_error"],
            references=[{"kind": "crossing", "id": "o-1"}, {"kind": "case", "id": "case-2"}],
            text=text,
        )
        for origin, author, resolution, text in (
            ("MR-NATIONAL", "liaison", "explained", "vérifié"),
            ("ML-NATIONAL", None, "referred", None),
        )
    ]
    old: dict[str, Any] = {
        **discrepancy_view(case),
        "notes": [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "origin": e.origin,
                "by": e.author,
                "resolution": e.resolution,
                "reasons": e.reasons,
                "references": e.references,
                "text": e.text,
            }
            for e in events
        ],
        "positions": positions(events),
    }
    new = CaseView(
        **{
            **discrepancy_view(case),
            "notes": [event_view(e) for e in events],
            "positions": positions(events),
        }
    )
    assert msgspec.json.encode(new) == msgspec.json.encode(old)
