"""The hand-made national dataset of the HQ tests (tests/hq/test_hq*.py), small enough
that every answer is known: posts MR-GOGUI (G) and MR-KOBENI (K), October 2026 (and a few rows
in June and July), fourteen travellers, their documents, crossings and alerts, seeded with Core
inserts so that it also fits a database at an older revision. Also the two PostgreSQL helpers
the HQ modules share: require_postgres and _scalars.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from sqlalchemy import Column, MetaData, Table, insert, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from biometrics.engine import encode_template
from registry.db import Database
from registry.ids import uuid7
from registry.models import (
    Alert,
    AlertAdjudication,
    Crossing,
    Officer,
    Photo,
    TravelDocument,
    Traveller,
)
from registry.names import name_key, normalise_document_number
from registry.outbox import row_of
from registry.settings import Settings
from tests.support.nodes import missing, pg_reachable

NATIONAL = "MR-NATIONAL"
G, K = "MR-GOGUI", "MR-KOBENI"


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# ---------------------------------------------------------------- the dataset
# label: (origin, surname, given names, date of birth, sex, nationality)
TRAVELLERS: dict[str, tuple[str, str, str, date | None, str, str]] = {
    "T1": (G, "OULD AHMED", "MOHAMMED", date(1979, 5, 2), "M", "MLI"),
    "T2": (K, "OULD AHMAD", "MUHAMMAD", date(1979, 5, 2), "M", "MLI"),  # T1 at Kobeni
    "T3": (K, "OULD AHMED", "MOHAMED", date(1979, 5, 2), "M", "MLI"),  # same name+dob, own doc
    "T4": (G, "DIARRA", "MOUSSA", date(1990, 3, 10), "M", "MLI"),
    "T5": (K, "DIARA", "MUSA", date(1990, 3, 1), "M", "MLI"),  # T4's face, other dob/doc
    "T6": (G, "TRAORE", "AMINATA", date(2010, 6, 15), "F", "SEN"),  # overstayer (recorded)
    "T7": (G, "SOW", "FATOUMATA", date(1965, 1, 20), "F", "SEN"),  # entry at Gogui...
    "T8": (K, "SOW", "FATOUMATA", date(1965, 1, 20), "F", "SEN"),  # ...exit at Kobeni
    "T9": (G, "MARTIN", "PAUL", date(1970, 4, 4), "M", "FRA"),  # overstayer (computed)
    "T10": (G, "KEITA", "MARIAM", date(2008, 10, 11), "F", "MLI"),  # 17 the day before 18
    "T11": (G, "CAMARA", "SEKOU", date(1985, 2, 2), "M", "GIN"),  # refused
    "T12": (K, "COULIBALY", "AWA", date(2000, 11, 1), "F", "MLI"),  # 23:30 UTC on Oct 31
    "T13": (K, "ADAM", "ISSA", None, "X", "SDN"),  # no birth date
    "T14": (G, "SY", "ALIOU", date(1979, 5, 2), "M", "MRT"),  # T1's birth date only
}
# label: (traveller, issuing state, number as typed)
DOCUMENTS: dict[str, tuple[str, str, str]] = {
    "D1": ("T1", "MLI", "P1000001"),
    "D2": ("T2", "MLI", "P 1000001"),
    "D3": ("T3", "MLI", "P2000002"),
    "D4": ("T4", "MLI", "M4444444"),
    "D5": ("T5", "MLI", "M5555555"),
    "D6": ("T6", "SEN", "A1234567"),
    "D7": ("T7", "SEN", "B7654321"),
    "D8": ("T8", "SEN", "B-7654321"),
    "D9": ("T9", "FRA", "12AB34567"),
    "D10": ("T10", "MLI", "X0000010"),
    "D11": ("T11", "GIN", "R1111111"),
    "D12": ("T12", "MLI", "Z1212121"),
    "D13": ("T13", "SDN", "S0000013"),
    "D14": ("T14", "MRT", "N1400014"),
}


@dataclass(frozen=True)
class C:
    """One crossing of the dataset."""

    document: str
    post: str
    direction: str
    when: datetime
    decision: str = "cleared"
    until: date | None = None
    photo: str | None = None
    supersedes: str | None = None


CROSSINGS: dict[str, C] = {
    "c1": C("D1", G, "entry", at(10, 1, 8), until=date(2026, 12, 29), photo="P1"),
    "c2": C("D2", K, "exit", at(10, 3, 9), photo="P2"),
    "c3": C("D3", K, "entry", at(10, 3, 10), until=date(2026, 12, 31)),
    "c4": C("D4", G, "entry", at(10, 5, 12), until=date(2027, 1, 2), photo="P4"),
    "c5": C("D5", K, "exit", at(10, 6, 7), photo="P5"),
    "c6": C("D6", G, "entry", at(6, 1, 10), until=date(2026, 8, 29)),
    "c7": C("D7", G, "entry", at(10, 5, 9), until=date(2027, 1, 2)),
    "c8": C("D8", K, "exit", at(10, 20, 16)),
    "c9": C("D9", G, "entry", at(7, 1, 11), photo="P9"),
    "c10": C("D10", G, "entry", at(10, 10, 14)),
    "c11": C("D10", G, "exit", at(10, 10, 14), supersedes="c10"),  # corrected direction
    "c12": C("D11", G, "entry", at(10, 12, 10), decision="refused"),
    "c13": C("D12", K, "entry", at(10, 31, 23, 30), until=date(2027, 1, 28)),
    "c14": C("D13", K, "exit", at(10, 15, 12)),
}
# label: (crossing, evidence, outcome or None, created at)
ALERTS: dict[str, tuple[str, str, str | None, datetime]] = {
    "a1": ("c1", "document", "confirmed", at(10, 1, 8, 1)),
    "a2": ("c3", "name_dob", "dismissed", at(10, 3, 10, 1)),
    "a3": ("c4", "face", None, at(10, 5, 12, 1)),
    "a4": ("c7", "name_dob", "confirmed", at(10, 5, 9, 1)),
    "a5": ("c6", "document", "confirmed", at(6, 1, 10, 1)),  # June: outside October
}


def face_vectors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    v, w, u = (rng.normal(0, 0.1, 128).astype(np.float32) for _ in range(3))
    p2, p5 = v.copy(), w.copy()
    p2[0] += 0.2  # distance 0.2 from P1
    p5[1] += 0.35  # distance 0.35 from P4
    return {"P1": v, "P2": p2, "P4": w, "P5": p5, "P9": u}


@dataclass
class World:
    """Ids of the seeded records by label."""

    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    photos: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, label: str) -> str:
        return str(self.ids[label])

    def labels(self, ids: list[str]) -> list[str]:
        back = {str(v): k for k, v in self.ids.items()}
        return [back.get(i, i) for i in ids]


def _officers(world: World) -> list[Officer]:
    rows = []
    for post in (G, K):
        officer = Officer(
            username=f"{post.lower()}.officer",
            full_name=f"Officer at {post}",
            role="officer",
            home_post=post,
            password_hash="not-a-hash",
        )
        world.ids[post] = officer.id
        rows.append(officer)
    return rows


def _photos(world: World) -> list[Photo]:
    rows = []
    for label, vector in face_vectors().items():
        sha = hashlib.sha256(label.encode()).hexdigest()
        world.photos[label] = sha
        rows.append(
            Photo(
                sha256=sha,
                origin=G,
                width=100,
                height=100,
                size_bytes=1000,
                face_encoding=encode_template(vector),
            )
        )
    return rows


def _travellers(world: World) -> list[Traveller]:
    rows = []
    for label, (origin, surname, given, birth, sex, nationality) in TRAVELLERS.items():
        row = Traveller(
            origin=origin,
            surname=surname,
            given_names=given,
            name_key=name_key(surname, given),
            date_of_birth=birth,
            sex=sex,
            nationality=nationality,
        )
        world.ids[label] = row.id
        rows.append(row)
    return rows


def _documents(world: World) -> list[TravelDocument]:
    rows = []
    for label, (traveller, state, number) in DOCUMENTS.items():
        row = TravelDocument(
            origin=TRAVELLERS[traveller][0],
            traveller_id=world.ids[traveller],
            issuing_state=state,
            document_type="P",
            number=number,
            number_norm=normalise_document_number(number),
        )
        world.ids[label] = row.id
        rows.append(row)
    return rows


def _crossings(world: World) -> list[Crossing]:
    rows = []
    traveller_of = {label: doc[0] for label, doc in DOCUMENTS.items()}
    for label, c in CROSSINGS.items():
        row = Crossing(
            id=uuid7(),
            origin=c.post,
            post=c.post,
            direction=c.direction,
            occurred_at=c.when,
            officer_id=world.ids[c.post],
            traveller_id=world.ids[traveller_of[c.document]],
            document_id=world.ids[c.document],
            photo_sha256=world.photos.get(c.photo or ""),
            mode="car",
            decision=c.decision,
            stay_allowed_until=c.until,
            version=2 if c.supersedes else 1,
            supersedes=world.ids[c.supersedes] if c.supersedes else None,
            correction_reason="wrong direction" if c.supersedes else None,
        )
        world.ids[label] = row.id
        rows.append(row)
    return rows


def _alerts(world: World) -> list[Alert | AlertAdjudication]:
    rows: list[Alert | AlertAdjudication] = []
    for label, (crossing, evidence, outcome, created) in ALERTS.items():
        post = CROSSINGS[crossing].post
        alert = Alert(
            origin=post,
            crossing_id=world.ids[crossing],
            entry_id=uuid.uuid4(),
            entry_version=1,
            kind="document" if evidence == "document" else "person",
            evidence=evidence,
            score=1.0,
            action="refer_secondary",
            created_at=created,
        )
        world.ids[label] = alert.id
        rows.append(alert)
        if outcome:
            rows.append(
                AlertAdjudication(
                    origin=post,
                    alert_id=alert.id,
                    outcome=outcome,
                    reason="checked",
                    officer_id=world.ids[post],
                    created_at=created,
                )
            )
    return rows


async def seed_world(settings: Settings) -> World:
    """Insert the dataset with Core inserts (parents first), only into the columns the
    database has: it may stand at an older revision (columns added later keep their
    server defaults when it is upgraded)."""
    world = World()
    database = Database(settings)
    try:
        async with database.write_transaction() as session:
            connection = await session.connection()
            tables: dict[str, Table] = {}  # each table as the database has it
            for rows in (_officers, _photos, _travellers, _documents, _crossings, _alerts):
                for record in rows(world):
                    model = type(record).__table__  # type: ignore[attr-defined]
                    if model.name not in tables:
                        present = await connection.run_sync(
                            lambda sync, name=model.name: {
                                c["name"] for c in inspect(sync).get_columns(name)
                            }
                        )
                        tables[model.name] = Table(
                            model.name,
                            MetaData(),
                            *(Column(c.name, c.type) for c in model.columns if c.name in present),
                        )
                    table = tables[model.name]
                    row = {k: v for k, v in row_of(record).items() if k in table.columns}
                    await session.execute(insert(table), [row])
    finally:
        await database.dispose()
    return world


def require_postgres() -> None:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")


async def _scalars(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql))).scalars().all())
