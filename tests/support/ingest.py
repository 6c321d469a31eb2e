"""National's ingest in-process on PostgreSQL: the node, a post's outbox and its signed batches."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from registry.audit import GENESIS_HASH, event_hash
from registry.models import AuditEvent, Crossing, Officer, TravelDocument, Traveller
from registry.names import name_key
from registry.node import Node
from registry.outbox import record_id_of, record_payload
from registry.receipts import public_key_to_text
from sync.batches import RecordRow, sign_batch
from sync.ingest.validation import ReceivedBatch, receive_batch
from sync.models import SyncPeer
from tests.support.nodes import (
    create_pg_database,
    drop_pg_database,
    migrate,
    missing,
    national_settings,
    pg_reachable,
    pg_url,
)

NATIONAL, GOGUI = "MR-NATIONAL", "MR-GOGUI"


POST_KEY = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def national_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"bp_overlap_{os.getpid()}"
    asyncio.run(create_pg_database(name))
    url = pg_url(name)
    asyncio.run(migrate(url, tmp_path_factory.mktemp("national")))
    yield url
    asyncio.run(drop_pg_database(name))


@pytest.fixture
async def national(national_url: str, tmp_path: Path) -> AsyncIterator[Node]:
    node = Node.build(national_settings(tmp_path, national_url))
    async with node.db.sessions() as session, session.begin():
        tables = (
            "crossing, travel_document, traveller, audit_event, ingest_state, sync_peer, "
            "traveller_name_key, superseded_crossing, sync_quarantine"
        )
        await session.execute(text(f"TRUNCATE {tables}, officer CASCADE"))
        session.add(
            SyncPeer(
                node_code=GOGUI,
                role="post",
                public_key=public_key_to_text(POST_KEY.public_key()),
                status="approved",
            )
        )
    try:
        yield node
    finally:
        await node.db.dispose()


@dataclass
class Outbox:
    """A post's outbox as it would push it: records numbered from seq 1, and the post's
    audit chain."""

    records: list[RecordRow]
    chain_head: str = GENESIS_HASH

    def audited(self, officer: Officer, what: str) -> list[RecordRow]:
        event = AuditEvent(
            origin=GOGUI,
            officer_id=officer.id,
            action="create",
            record_type="crossing",
            record_id=what,
            purpose="registration",
            detail={},
            prev_hash=self.chain_head,
            hash="",
        )
        event.hash = self.chain_head = event_hash(event)
        return self.add(event)

    def add(self, *rows: Any) -> list[RecordRow]:
        added = [
            (len(self.records) + i + 1, row.__tablename__, record_id_of(row), record_payload(row))
            for i, row in enumerate(rows)
        ]
        self.records += added
        return added


async def count_rows(node: Node, sql: str) -> int:
    async with node.db.sessions() as session:
        return int(await session.scalar(text(sql)) or 0)


def travellers_with_crossings(
    outbox: Outbox, officer: Officer, first: int, count: int
) -> list[RecordRow]:
    rows: list[Any] = []
    for n in range(first, first + count):
        traveller = Traveller(
            origin=GOGUI,
            surname="DIALLO",
            given_names=f"AMADOU {n}",
            name_key=name_key("DIALLO", f"AMADOU {n}"),
            date_of_birth=date(1980, 1, 1) + timedelta(days=n),
            sex="M",
            nationality="MLI",
        )
        document = TravelDocument(
            origin=GOGUI,
            traveller_id=traveller.id,
            issuing_state="MLI",
            document_type="P",
            number=f"P{n:07d}",
            number_norm=f"P{n:07d}",
        )
        rows += [traveller, document, new_crossing(officer, traveller, document)]
    return outbox.add(*rows)


def new_crossing(officer: Officer, traveller: Traveller, document: TravelDocument) -> Crossing:
    return Crossing(
        origin=GOGUI,
        post=GOGUI,
        direction="entry",
        occurred_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
        officer_id=officer.id,
        traveller_id=traveller.id,
        document_id=document.id,
        mode="foot",
        decision="cleared",
    )


def received_batch(run: list[RecordRow], after: int) -> ReceivedBatch:
    signed = sign_batch(
        run, kind="records", origin=GOGUI, destination=NATIONAL, after_seq=after, key=POST_KEY
    )
    return receive_batch(
        signed.header,
        signed.signature,
        signed.body,
        POST_KEY.public_key(),
        destination=NATIONAL,
        bulk=True,
    )
