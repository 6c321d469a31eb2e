"""The headquarters API's typed answers (registry.hq.schemas) encode to the very bytes the
plain dicts they replaced gave: same keys, same order, same values. The HTTP answers are in
tests/hq/test_hq_*.py; here the shapes the services build, without a database."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import msgspec
import numpy as np
import pytest

from registry.hq.schemas import (
    AlertStatistic,
    DemographicStatistic,
    FlowStatistic,
    LinkedRecord,
    NetFlowStatistic,
)
from registry.hq.statistics import (
    ALERT_COLUMNS,
    DEMOGRAPHIC_COLUMNS,
    FLOW_COLUMNS,
    NET_FLOW_COLUMNS,
    StatTable,
)
from registry.hq.timeline import Link, _face_evidence, _name_dob_evidence
from registry.models import Traveller
from registry.names import name_key

DATES = {"date_from": "2026-10-01", "date_to": "2026-10-31"}
ZONE = {"timezone": "Africa/Nouakchott"}
FLOW = {"post": "MR-GOGUI", "period_start": "2026-10-05", "entries": 3, "exits": 1}
TABLES = [
    (
        StatTable("flows", FLOW_COLUMNS, [{**FLOW, "refused": 1, "net": 2}], {}),
        {**DATES, "period": "week", "post": None, **ZONE},
        FlowStatistic,
    ),
    (
        StatTable("net_flow", NET_FLOW_COLUMNS, [{"post": "MR-GOGUI", **FLOW, "net": 2}], {}),
        {**DATES, "period": "day", "post": "MR-GOGUI", **ZONE},
        NetFlowStatistic,
    ),
    (
        StatTable(
            "demographics",
            DEMOGRAPHIC_COLUMNS,
            [
                {"nationality": "MRT", "sex": "F", "age_band": "18-29", "entries": 2}
                | {"exits": 0, "refused": 0},
                {"nationality": "SEN", "sex": "X", "age_band": "unknown", "entries": 0}
                | {"exits": 1, "refused": 1},
            ],
            {},
        ),
        {**DATES, "post": None, **ZONE},
        DemographicStatistic,
    ),
    (
        StatTable(
            "alerts",
            ALERT_COLUMNS,
            [{"post": "MR-KOBENI", "evidence": "name_dob", "raised": 2, "confirmed": 1}]
            + [{"post": "MR-KOBENI", "evidence": "face", "raised": 1, "confirmed": 0}],
            {},
        ),
        {**DATES, "post": "MR-KOBENI"},
        AlertStatistic,
    ),
]


def _rows(table: StatTable) -> list[dict[str, Any]]:
    """The rows in the column order the services write (alerts: outcomes filled in)."""
    filled = [{"dismissed": 0, "pending": 1, **row} for row in table.rows]
    return [{column: row[column] for column in table.columns} for row in filled]


@pytest.mark.parametrize(("table", "parameters", "schema"), TABLES)
def test_a_statistic_keeps_its_bytes(
    table: StatTable, parameters: dict[str, Any], schema: type[msgspec.Struct]
) -> None:
    body = StatTable(table.name, table.columns, _rows(table), parameters).as_json()
    typed = msgspec.convert(body, schema)
    assert msgspec.json.encode(typed) == msgspec.json.encode(body)


def _traveller(surname: str) -> Traveller:
    return Traveller(
        id=uuid.uuid4(),
        origin="MR-GOGUI",
        surname=surname,
        given_names="Aminata",
        name_key=name_key(surname, "Aminata"),
        date_of_birth=date(1990, 4, 1),
        sex="F",
        nationality="MRT",
    )


def test_a_linked_record_keeps_its_bytes_with_every_kind_of_evidence() -> None:
    root, other = _traveller("Diallo"), _traveller("Diallo")
    link = Link(other)
    link.evidence.append(
        {"kind": "document", "confidence": 1.0, "issuing_state": "MRT", "number": "B1234567"}
    )
    link.evidence += [evidence for _, evidence in _name_dob_evidence(root, [other])]
    faces = {other.id: np.zeros((1, 128))}
    link.evidence += [evidence for _, evidence in _face_evidence(np.zeros((1, 128)), faces, 0.5)]
    assert {item["kind"] for item in link.evidence} == {"document", "name_dob", "face"}
    body = link.as_json()
    typed = msgspec.convert(body, LinkedRecord)
    assert msgspec.json.encode(typed) == msgspec.json.encode(body)
