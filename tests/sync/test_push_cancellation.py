"""A push that cancels its outbox reads leaves no SQLite connection unable to write.

The post reads its outbox ahead of the link and cancels those reads when a batch fails (a
cut connection, say). A raw aiosqlite read cancelled between ``execute`` and ``fetchall``
used to leave its statement open; the stale read snapshot then made the next write on that
connection (the sync checkpoint) fail at once with "database is locked", once another
process (the post's server, the CLI) had written. Seen as a flaky ``test_sync`` run in CI.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from registry.db import make_engine
from registry.migrate import upgrade_database
from registry.node import Node
from sync.client import NationalLink, SyncClient
from tests.support.nodes import base_settings


async def test_cancelled_outbox_reads_leave_every_connection_writable(tmp_path: Path) -> None:
    path = tmp_path / "borderpost.db"
    settings = base_settings(tmp_path, f"sqlite+aiosqlite:///{path}")
    engine = make_engine(settings)
    await upgrade_database(engine)
    await engine.dispose()
    other_process = sqlite3.connect(path, timeout=10)  # another writer on the post database
    other_process.executemany(
        "INSERT INTO outbox (record_type, record_id, payload, created_at) "
        "VALUES ('crossing', ?, ?, '2026-01-01 00:00:00')",
        [(str(n), json.dumps({"remarks": "x" * 200})) for n in range(20_000)],
    )
    other_process.commit()
    node = Node.build(settings)
    link = NationalLink("MR-NATIONAL", "http://127.0.0.1:9", node.signing_key.public_key())
    client = SyncClient(node, link, None, max_records=3)  # type: ignore[arg-type]
    failures: list[str] = []
    try:
        for attempt in range(120):
            read = asyncio.create_task(client._outbox_after(0, photos_only=False, limit=5_000))
            for _ in range(attempt % 7):  # cancel at every stage of the read
                await asyncio.sleep(0)
            read.cancel()
            await asyncio.gather(read, return_exceptions=True)
            other_process.execute(
                "INSERT INTO outbox (record_type, record_id, payload, created_at) "
                "VALUES ('crossing', 'later', '{}', '2026-01-01 00:00:00')"
            )
            other_process.commit()
            try:
                await client._save("records", position=attempt)
            except Exception as exc:  # noqa: BLE001 - counted, then asserted on
                failures.append(f"{attempt}: {exc}"[:120])
        assert failures == []
        assert await client.position("records") == 119
    finally:
        other_process.close()
        await node.db.dispose()
