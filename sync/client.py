"""The post side of sync: push outbox records and photos to national, pull reference data
down (enrolment is ``sync.enrolment``, the digest check ``sync.digest_check``). The
checkpoint moves only on national's acknowledgement, so a dropped link at any point loses
nothing and a resend duplicates nothing."""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Select, Text, bindparam, select, type_coerce
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit_checkpoints import (
    CHECKPOINT_UPLOAD_MAX,
    checkpoint_upload,
    checkpoints_for_sync,
    mark_delivered,
)
from registry.base64url import unb64url
from registry.db import dialect_name, finish_even_if_cancelled
from registry.models import AuditCheckpoint, OutboxEntry, utcnow
from registry.node import Node
from registry.photos import read_photo
from registry.receipts import public_key_from_text
from sync.batches import (
    SIGNATURE,
    BatchHeader,
    OutboxRecord,
    RecordRow,
    SignedBatch,
    sign_batch,
    split_into_batches,
)
from sync.models import SyncCheckpoint, SyncPeer
from sync.peers import sign_request
from sync.quarantine import note_answers
from sync.records import POST_RECORD_TYPES
from sync.reference import apply_reference_changes

OUTBOX_PAGE = 5000
IN_FLIGHT = 4  # batches travelling at once: national applies consecutive ones in parallel
PREPARED_AHEAD = 2
Progress = Callable[[str, int], None]


class SyncError(RuntimeError):
    """National refused or could not be reached; the checkpoint has not moved."""


@dataclass(frozen=True)
class NationalLink:
    code: str
    url: str
    public_key: Ed25519PublicKey
    cert_sha256: str | None = None  # national's TLS certificate, when the link pins it


async def national_link(session: AsyncSession) -> NationalLink | None:
    peer = await session.scalar(select(SyncPeer).where(col(SyncPeer.role) == "national"))
    if peer is None or not peer.url:
        return None
    return NationalLink(
        peer.node_code,
        peer.url.rstrip("/"),
        public_key_from_text(peer.public_key),
        peer.tls_cert_sha256,
    )


RETRY_AFTER_CAP_S = 60.0
RETRIES_WHEN_LIMITED = 5


async def post_patiently(
    http: httpx.AsyncClient, url: str, *, content: bytes, headers: dict[str, str]
) -> httpx.Response:
    """POST, waiting out national's per-address limit (429 + Retry-After) a few times."""
    for _ in range(RETRIES_WHEN_LIMITED):
        response = await http.post(url, content=content, headers=headers)
        if response.status_code != 429:
            return response
        try:
            wait = float(response.headers.get("retry-after", "1"))
        except ValueError:
            wait = 1.0
        await asyncio.sleep(min(max(wait, 0.1), RETRY_AFTER_CAP_S))
    return response


@dataclass
class SyncReport:
    records: int = 0
    batches: int = 0
    photos: int = 0
    reference_changes: int = 0
    audit_checkpoints: int = 0
    errors: list[str] = field(default_factory=list)


class SyncClient:
    """One post's link to its national node."""

    def __init__(
        self,
        node: Node,
        link: NationalLink,
        http: httpx.AsyncClient,
        *,
        max_records: int | None = None,
        max_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.node, self.link, self.http = node, link, http
        self.max_records = max_records or node.settings.sync_batch_records
        self.max_bytes = max_bytes or node.settings.sync_batch_bytes
        self.progress = progress or (lambda _channel, _n: None)

    # ------------------------------------------------------------ checkpoints
    async def position(self, channel: str) -> int:
        async with self.node.db.session() as session:
            checkpoint = await session.get(SyncCheckpoint, (self.link.code, channel))
            return checkpoint.position if checkpoint else 0

    async def _save(
        self, channel: str, *, position: int | None = None, error: str | None = None
    ) -> None:
        async with self.node.db.write_transaction() as session:
            checkpoint = await session.get(SyncCheckpoint, (self.link.code, channel))
            if checkpoint is None:
                checkpoint = SyncCheckpoint(peer=self.link.code, channel=channel)
                session.add(checkpoint)
            checkpoint.last_attempt_at = utcnow()
            if position is not None:
                checkpoint.position = position
            if error is None:
                checkpoint.last_success_at = utcnow()
                checkpoint.last_error = None
            else:
                checkpoint.last_error = error[:500]

    # ------------------------------------------------------------ records
    async def _outbox_after(
        self, position: int, *, photos_only: bool, limit: int = OUTBOX_PAGE
    ) -> list[OutboxRecord]:
        """The next page of outbox rows, payloads as stored JSON text (never decoded)."""
        rows = await self._outbox_rows(position, photos_only=photos_only, limit=limit)
        return [OutboxRecord(*row) for row in rows]

    async def _outbox_rows(
        self, position: int, *, photos_only: bool, limit: int
    ) -> list[RecordRow]:
        """``_outbox_after`` as the plain tuples the database returns (the push's hot path).
        The push cancels reads it no longer needs: the raw SQLite read finishes regardless
        (``finish_even_if_cancelled``)."""
        return await finish_even_if_cancelled(self._read_outbox(position, photos_only, limit))

    async def _read_outbox(self, position: int, photos_only: bool, limit: int) -> list[RecordRow]:
        query = _outbox_query(photos_only)
        async with self.node.db.session() as session:
            if dialect_name(session) == "sqlite":  # skip SQLAlchemy's per-row processing
                return await _sqlite_rows(session, photos_only, position, limit)
            rows = await session.execute(query, {"after": position, "limit": limit})
            # each Row is the tuple of its columns; seq, the primary key, is never NULL
            return cast(list[RecordRow], [tuple(row) for row in rows])

    async def _send_batch(self, batch: SignedBatch) -> tuple[int, int]:
        response = await post_patiently(
            self.http,
            f"{self.link.url}/api/sync/batches",
            content=batch.body,
            headers=batch.http_headers(),
        )
        if response.status_code in (200, 409):
            answer = response.json()
            if answer.get("quarantined"):
                await self.note_quarantined(answer["quarantined"])
            return response.status_code, int(answer["ack"])
        raise SyncError(f"national refused the batch: {response.status_code} {response.text}")

    async def _next_batch(self, after: int) -> SignedBatch | None:
        """The records after seq ``after``, one batch's worth, compressed and signed."""
        rows = await self._outbox_rows(after, photos_only=False, limit=self.max_records)
        if not rows:
            return None
        run = next(split_into_batches(rows, max_records=self.max_records, max_bytes=self.max_bytes))
        return await asyncio.to_thread(
            sign_batch,
            run,
            kind="records",
            origin=self.node.settings.node_code,
            destination=self.link.code,
            after_seq=after,
            key=self.node.signing_key,
        )

    async def push_records(self) -> tuple[int, int]:
        """Push everything after the checkpoint; returns (records, batches) acknowledged.

        The post reads, compresses and signs up to ``PREPARED_AHEAD`` batches ahead of the
        link, and up to ``IN_FLIGHT`` batches travel at once, each following the one
        before, so national decodes the next batch while it stores the current one.
        Acknowledgements are taken in order and move the checkpoint. If national
        acknowledges anything but the end of the batch it was sent (a gap, or a replay of
        what it already holds), everything behind it is dropped and pushing starts again
        from national's acknowledgement.
        """
        records = batches = 0
        after: int | None = await self.position("records")
        while after is not None:
            acknowledged, after = await self._push_from(after)
            records, batches = records + acknowledged[0], batches + acknowledged[1]
        return records, batches

    async def _push_from(self, after: int) -> tuple[tuple[int, int], int | None]:
        """One run of batches following seq ``after``: (records, batches) acknowledged, and
        where to start again (None once national holds everything)."""
        records = batches = 0
        ready: asyncio.Queue[SignedBatch | BaseException | None] = asyncio.Queue(PREPARED_AHEAD)
        preparing = asyncio.create_task(self._prepare(after, ready))
        in_flight: deque[tuple[SignedBatch, asyncio.Task[tuple[int, int]]]] = deque()
        exhausted = False
        try:
            while True:
                while len(in_flight) < IN_FLIGHT and not exhausted:
                    signed = await ready.get()
                    if isinstance(signed, BaseException):
                        raise signed
                    if signed is None:
                        exhausted = True
                    else:
                        in_flight.append((signed, asyncio.create_task(self._send_batch(signed))))
                if not in_flight:
                    return (records, batches), None
                signed, sending = in_flight.popleft()
                status, ack = await sending
                await self._save("records", position=ack)
                if status == 200:
                    records, batches = records + signed.header.count, batches + 1
                    self.progress("records", signed.header.count)
                if ack != signed.header.seq_to:
                    return (records, batches), ack
        finally:
            preparing.cancel()
            await _drop(in_flight)
            await asyncio.gather(preparing, return_exceptions=True)

    async def _prepare(
        self, after: int, ready: asyncio.Queue[SignedBatch | BaseException | None]
    ) -> None:
        """Queue signed batches following seq ``after``, then None; or the error met."""
        try:
            while signed := await self._next_batch(after):
                await ready.put(signed)
                after = signed.header.seq_to
        except Exception as exc:  # noqa: BLE001 - handed to the sender, which raises it
            await ready.put(exc)
            return
        await ready.put(None)

    # ------------------------------------------------------------ photos
    async def push_photos(self) -> int:
        """Push photo files after the photo checkpoint, one signed upload each."""
        position = await self.position("photos")
        pushed = 0
        while rows := await self._outbox_after(position, photos_only=True):
            for row in rows:
                await self._push_photo(row, position)
                position = row.seq
                await self._save("photos", position=position)
                pushed += 1
                self.progress("photos", 1)
            if len(rows) < OUTBOX_PAGE:
                break
        return pushed

    async def _push_photo(self, row: OutboxRecord, after: int) -> None:
        data = read_photo(self.node.settings.photo_dir, row.record_id)
        if data is None:
            raise SyncError(f"photo {row.record_id} is missing from the photo store")
        header = BatchHeader(
            1,
            "photo",
            self.node.settings.node_code,
            self.link.code,
            after,
            row.seq,
            row.seq,
            1,
            hashlib.sha256(data).hexdigest(),
        )
        signed = SignedBatch(header, self.node.signing_key.sign(header.canonical()), data)
        response = await post_patiently(
            self.http,
            f"{self.link.url}/api/sync/photos",
            content=data,
            headers=signed.http_headers(),
        )
        if response.status_code != 200:
            raise SyncError(f"national refused photo {row.record_id}: {response.status_code}")
        if quarantined := response.json().get("quarantined"):
            await self.note_quarantined(quarantined)

    # ------------------------------------------------------------ reference data
    async def signed_get(self, path: str) -> httpx.Response:
        headers = sign_request(self.node.signing_key, self.node.settings.node_code, "GET", path)
        response = await self.http.get(f"{self.link.url}{path}", headers=headers)
        if response.status_code != 200:
            raise SyncError(f"GET {path} failed: {response.status_code} {response.text}")
        return response

    def _verify_national(self, response: httpx.Response) -> dict[str, Any]:
        try:
            self.link.public_key.verify(
                unb64url(response.headers.get(SIGNATURE, "")),
                hashlib.sha256(response.content).digest(),
            )
        except (InvalidSignature, ValueError) as exc:
            raise SyncError("reference data is not signed by national") from exc
        return response.json()

    async def pull_reference(self) -> int:
        """Apply reference changes (officers, watchlists, rules, keys) since the last pull."""
        applied = 0
        while True:
            since = await self.position("reference")
            page = self._verify_national(
                await self.signed_get(f"/api/sync/reference?since={since}")
            )
            applied += await apply_reference_changes(self.node, page["changes"])
            await self._save("reference", position=int(page["version"]))
            self.progress("reference", len(page["changes"]))
            if page["complete"]:
                return applied

    # ------------------------------------------------------------ audit checkpoints
    async def push_audit_checkpoints(self, checkpoints: list[AuditCheckpoint]) -> int:
        """Send this post's signed audit checkpoints to national (a signed request), once
        the push has delivered every event they count; national keeps them."""
        path = "/api/sync/audit-checkpoints"
        for start in range(0, len(checkpoints), CHECKPOINT_UPLOAD_MAX):
            page = checkpoints[start : start + CHECKPOINT_UPLOAD_MAX]
            body = checkpoint_upload(page)
            headers = sign_request(
                self.node.signing_key, self.node.settings.node_code, "POST", path, body
            )
            headers["content-type"] = "application/json"
            response = await self.http.post(f"{self.link.url}{path}", content=body, headers=headers)
            if response.status_code != 200:
                raise SyncError(
                    f"national refused the audit checkpoints: {response.status_code} "
                    f"{response.text}"
                )
            await mark_delivered(self.node, page)
        return len(checkpoints)

    # ------------------------------------------------------------ quarantine
    async def note_quarantined(self, answers: list[dict[str, Any]]) -> None:
        """Keep what national quarantined of this post's records (shown at once by the
        status, the pages' banner and ``sync status``)."""
        async with self.node.db.write_transaction() as session:
            await note_answers(session, self.node.settings.node_code, answers)

    async def refresh_quarantine(self) -> int:
        """Mirror national's quarantine of this post's records (what its admin retried or
        discarded stops being shown here). Returns how many entries changed."""
        entries = (await self.signed_get("/api/sync/quarantine")).json()["entries"]
        async with self.node.db.write_transaction() as session:
            return await note_answers(session, self.node.settings.node_code, entries)

    # ------------------------------------------------------------ one cycle
    async def sync_once(self) -> SyncReport:
        """Records and photos travel side by side (records never wait for photos),
        then reference data comes down. The audit chain is checkpointed first; the
        checkpoints go to national once the records (their events among them) are there."""
        report = SyncReport()
        try:
            checkpoints = await checkpoints_for_sync(self.node)
            (report.records, report.batches), report.photos = await asyncio.gather(
                self.push_records(), self.push_photos()
            )
            report.audit_checkpoints = await self.push_audit_checkpoints(checkpoints)
            report.reference_changes = await self.pull_reference()
            await self.refresh_quarantine()
            await self._save("records")  # success even when there was nothing to send
        except (SyncError, httpx.HTTPError) as exc:
            report.errors.append(str(exc))
            await self._save("records", error=str(exc) or type(exc).__name__)
            raise SyncError(str(exc) or type(exc).__name__) from exc
        return report


async def _drop(in_flight: deque[tuple[SignedBatch, asyncio.Task[Any]]]) -> None:
    """Abandon batches still in flight: national may or may not store them, and either way
    the next push starts from its acknowledgement (stored records are never doubled)."""
    for _, task in in_flight:
        task.cancel()
    await asyncio.gather(*(task for _, task in in_flight), return_exceptions=True)
    in_flight.clear()


@cache
def _outbox_query(photos_only: bool) -> Select[int | None, str, str, str]:
    """Outbox rows after seq ``:after`` (at most ``:limit``), payloads as stored JSON text
    (never decoded): photos, or every record type a post pushes. Reference data written
    locally (e.g. a post's own watchlist entry) stays here."""
    raw_payload = type_coerce(OutboxEntry.payload, Text)
    query = select(
        col(OutboxEntry.seq), col(OutboxEntry.record_type), col(OutboxEntry.record_id), raw_payload
    ).where(col(OutboxEntry.seq) > bindparam("after", 0))
    if photos_only:
        query = query.where(col(OutboxEntry.record_type) == "photo")
    else:
        query = query.where(col(OutboxEntry.record_type).in_(POST_RECORD_TYPES))
    return query.order_by(col(OutboxEntry.seq)).limit(bindparam("limit", 1))


@cache
def _sqlite_outbox_sql(photos_only: bool) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """``_outbox_query`` compiled once for SQLite: its text, parameter order and values."""
    compiled = _outbox_query(photos_only).compile(
        dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True}
    )
    return str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params)


async def _sqlite_rows(
    session: AsyncSession, photos_only: bool, after: int, limit: int
) -> list[RecordRow]:
    sql, order, defaults = _sqlite_outbox_sql(photos_only)
    values = {**defaults, "after": after, "limit": limit}
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None, "a connection in use is never invalidated"
    async with driver.execute(sql, [values[name] for name in order]) as cursor:
        return await cursor.fetchall()
