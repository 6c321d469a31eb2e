"""A post checks that national holds every crossing it sent (``borderpost sync verify``).

Day hashes are compared first (``sync.digest``), then the hour hashes of the days that
differ, then the ids of the hours that differ; only the crossings national lacks are put
back in the outbox, with the rows they depend on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import SQLModel

from registry.models import Crossing, Photo, TravelDocument, Traveller
from registry.node import Node
from registry.outbox import enqueue
from sync.client import SyncClient
from sync.digest import bucket_ids, crossing_buckets, differing_days, hour_buckets


@dataclass
class DigestReport:
    days_compared: int
    days_differing: list[str]
    missing_at_national: list[str]
    only_at_national: list[str]
    bytes_received: int


async def _requeue_crossings(node: Node, crossing_ids: list[str]) -> None:
    """Put missing crossings (and the rows they depend on) back in the outbox."""
    async with node.db.write_transaction() as session:
        for crossing_id in crossing_ids:
            crossing = await session.get(Crossing, uuid.UUID(crossing_id))
            if crossing is None:
                continue
            parents: list[SQLModel | None] = [
                await session.get(Traveller, crossing.traveller_id),
                await session.get(TravelDocument, crossing.document_id),
            ]
            if crossing.photo_sha256:
                parents.append(await session.get(Photo, crossing.photo_sha256))
            await enqueue(session, *[p for p in parents if p is not None], crossing)


async def _national_json(client: SyncClient, path: str, counter: list[int]) -> dict[str, Any]:
    response = await client.signed_get(path)
    counter[0] += len(response.content)
    return response.json()


async def verify_digest(client: SyncClient) -> DigestReport:
    """Compare day hashes, then hour hashes of differing days, then ids of differing hours;
    resend only what national lacks."""
    code = client.node.settings.node_code
    received = [0]
    remote = (await _national_json(client, "/api/sync/digest", received))["buckets"]
    async with client.node.db.session() as session:
        local = await crossing_buckets(session, code)
    days = differing_days(local, remote)
    missing: list[str] = []
    extra: list[str] = []
    for day in days:
        remote_hours = (
            {}
            if day not in remote
            else (await _national_json(client, f"/api/sync/digest/{day}", received))["buckets"]
        )
        async with client.node.db.session() as session:
            local_hours = await hour_buckets(session, code, day)
        for hour in differing_days(local_hours, remote_hours):
            remote_ids: set[str] = set()
            if hour in remote_hours:
                remote_ids = set(
                    (await _national_json(client, f"/api/sync/digest/{day}/{hour}", received))[
                        "ids"
                    ]
                )
            async with client.node.db.session() as session:
                local_ids = set(await bucket_ids(session, code, day, hour))
            missing += sorted(local_ids - remote_ids)
            extra += sorted(remote_ids - local_ids)
    if missing:
        await _requeue_crossings(client.node, missing)
    return DigestReport(len(set(local) | set(remote)), days, missing, extra, received[0])
