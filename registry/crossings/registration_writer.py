"""Group commit for registrations (``registry.group_commit``): concurrent registrations are
written in one transaction. The reads are prefetched for the whole batch, the rows go in
with one executemany per table, and one fsync acknowledges them all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from registry.audit import chain_head, chain_rows, event_row
from registry.crossings.registration import (
    PreparedRegistration,
    Registration,
    compute_stay,
    current_version_filter,
    sign_crossing_receipt,
)
from registry.db import lock_for_write
from registry.group_commit import GroupCommit
from registry.models import (
    Alert,
    AuditEvent,
    BiometricTemplate,
    Crossing,
    IdempotencyKey,
    Photo,
    TravelDocument,
    Traveller,
)
from registry.names import name_key
from registry.node import Node
from registry.outbox import enqueue, row_of
from registry.photos import discard_photos, store_photos
from registry.problems import Problem
from registry.watchlists.alerts import alerts_for_crossing

MAX_BATCH = 64


@dataclass
class _BatchState:
    """What the batch has read from the database and what it has created so far."""

    documents: dict[tuple[str, str], TravelDocument]
    travellers: dict[uuid.UUID, Traveller]
    history: dict[uuid.UUID, list[Crossing]]
    known_crossings: set[uuid.UUID]
    known_photos: set[str]
    audit_head: str
    new_rows: dict[type[SQLModel], list[SQLModel]] = field(
        default_factory=lambda: defaultdict(list)
    )
    outbox: list[SQLModel] = field(default_factory=list)


async def _prefetch(
    session: AsyncSession, node: Node, items: list[PreparedRegistration]
) -> _BatchState:
    origin = node.settings.node_code
    keys = list({item.document_key for item in items})
    documents = (
        await session.scalars(
            select(TravelDocument).where(
                col(TravelDocument.origin) == origin,
                tuple_(TravelDocument.issuing_state, TravelDocument.number_norm).in_(keys),
            )
        )
    ).all()
    traveller_ids = {d.traveller_id for d in documents}
    travellers = (
        (await session.scalars(select(Traveller).where(col(Traveller.id).in_(traveller_ids)))).all()
        if documents
        else []
    )
    crossings = (
        (
            await session.scalars(
                select(Crossing)
                .where(
                    col(Crossing.traveller_id).in_(traveller_ids),
                    current_version_filter(),
                )
                .order_by(col(Crossing.occurred_at))
            )
        ).all()
        if documents
        else []
    )
    history: dict[uuid.UUID, list[Crossing]] = defaultdict(list)
    for crossing in crossings:
        history[crossing.traveller_id].append(crossing)
    linked = {c for item in items for c in item.linked_crossings}
    known = (
        set(
            (
                await session.scalars(select(col(Crossing.id)).where(col(Crossing.id).in_(linked)))
            ).all()
        )
        if linked
        else set()
    )
    shas = {item.photo.photo.sha256 for item in items if item.photo}
    photos = (
        set(
            (
                await session.scalars(select(col(Photo.sha256)).where(col(Photo.sha256).in_(shas)))
            ).all()
        )
        if shas
        else set()
    )
    return _BatchState(
        documents={(d.issuing_state, d.number_norm): d for d in documents},
        travellers={t.id: t for t in travellers},
        history=history,
        known_crossings=known,
        known_photos=photos,
        audit_head=await chain_head(session, node.settings.node_code),
    )


def _check_links(item: PreparedRegistration, state: _BatchState) -> None:
    request = item.request
    if request.guardian_crossing_id is not None and (
        request.guardian_crossing_id not in state.known_crossings
    ):
        raise Problem(
            422,
            "Unknown guardian crossing",
            field="guardian_crossing_id",
            detail="no crossing has this id",
        )
    for index, companion in enumerate(request.companions):
        if companion not in state.known_crossings:
            raise Problem(
                422,
                "Unknown companion crossing",
                field=f"companions[{index}]",
                detail="no crossing has this id",
            )


def _add(state: _BatchState, record: SQLModel, *, travels: bool = True) -> None:
    state.new_rows[type(record)].append(record)
    if travels:
        state.outbox.append(record)


def _document_and_traveller(
    node: Node, item: PreparedRegistration, state: _BatchState
) -> tuple[TravelDocument, Traveller]:
    """Reuse the traveller already known by this document, or create both records."""
    document = state.documents.get(item.document_key)
    if document is not None:
        return document, state.travellers[document.traveller_id]
    person, doc_in, mrz = item.identity.traveller, item.identity.document, item.identity.mrz
    origin = node.settings.node_code
    traveller = Traveller(
        origin=origin,
        surname=person.surname.strip(),
        given_names=person.given_names.strip(),
        surname_ar=person.surname_ar,
        given_names_ar=person.given_names_ar,
        name_key=name_key(person.surname, person.given_names),
        date_of_birth=person.date_of_birth,
        sex=person.sex,
        nationality=person.nationality,
    )
    document = TravelDocument(
        origin=origin,
        traveller_id=traveller.id,
        issuing_state=doc_in.issuing_state,
        document_type=doc_in.document_type,
        number=doc_in.number.strip(),
        number_norm=item.number_norm,
        expiry_date=doc_in.expiry_date,
        issue_date=doc_in.issue_date,
        raw_mrz="\n".join(mrz.lines) if mrz else None,
        mrz_checks=mrz.check_results() if mrz else {},
    )
    _add(state, traveller)
    _add(state, document)
    state.documents[item.document_key] = document
    state.travellers[traveller.id] = traveller
    return document, traveller


def _photo(node: Node, item: PreparedRegistration, state: _BatchState) -> Photo | None:
    analysed = item.photo
    if analysed is None:
        return None
    photo = analysed.photo
    record = Photo(
        sha256=photo.sha256,
        origin=node.settings.node_code,
        width=photo.width,
        height=photo.height,
        size_bytes=len(photo.jpeg),
        face_encoding=analysed.template,  # the face modality's template, stored as it is
        quality_score=analysed.quality_score,
        quality=analysed.quality,
    )
    if photo.sha256 not in state.known_photos:
        state.known_photos.add(photo.sha256)
        _add(state, record)
        for found in analysed.templates:  # the node's other modalities, with the photo
            template = BiometricTemplate(
                origin=record.origin,
                photo_sha256=photo.sha256,
                modality=found.name,
                modality_type=found.modality_type,
                template=found.template,
                quality_score=found.quality_score,
            )
            _add(state, template)
    return record


def _audit_event(
    node: Node,
    item: PreparedRegistration,
    crossing: Crossing,
    alerts: list[Alert],
    state: _BatchState,
) -> None:
    row = event_row(
        origin=node.settings.node_code,
        officer=item.officer,
        action="create",
        record_type="crossing",
        record_id=crossing.id,
        purpose="registration",
        detail={
            "traveller": str(crossing.traveller_id),
            "document": str(crossing.document_id),
            "photo": crossing.photo_sha256,
            "alerts": [str(a.id) for a in alerts],
            "photo_quality_override": item.quality_override,
        },
    )
    state.audit_head = chain_rows(state.audit_head, [row])
    _add(state, AuditEvent(**row))


def _build(node: Node, item: PreparedRegistration, state: _BatchState) -> Registration:
    """Turn one prepared registration into rows, against the batch's view of the data."""
    _check_links(item, state)
    document, traveller = _document_and_traveller(node, item, state)
    history = state.history[traveller.id]
    stay = compute_stay(
        node,
        item.request.direction,
        traveller.nationality,
        history,
        item.occurred_at,
        item.request.decision,
    )
    photo = _photo(node, item, state)
    request = item.request
    crossing = Crossing(
        id=item.crossing_id,
        origin=node.settings.node_code,
        post=node.settings.node_code,
        direction=request.direction,
        occurred_at=item.occurred_at,
        officer_id=item.officer.id,
        traveller_id=traveller.id,
        document_id=document.id,
        photo_sha256=photo.sha256 if photo else None,
        mode=request.mode,
        vehicle_plate=request.vehicle_plate,
        purpose=request.purpose,
        destination=request.destination,
        guardian_crossing_id=request.guardian_crossing_id,
        companions=[str(c) for c in request.companions],
        decision=request.decision,
        remarks=request.remarks,
        checks=[c.as_dict() for c in item.checks + stay.checks],
        stay_allowed_until=stay.allowed_until,
        closes_crossing_id=stay.closes,
        overstay_days=stay.overstay,
    )
    crossing.receipt = sign_crossing_receipt(node, crossing, document)
    _add(state, crossing)
    if item.idempotency_key is not None:  # local to the node: it does not travel
        key = IdempotencyKey(
            officer_id=item.officer.id, key=item.idempotency_key, crossing_id=crossing.id
        )
        _add(state, key, travels=False)
    alerts = alerts_for_crossing(crossing.id, list(item.hits), node.settings.node_code)
    for alert in alerts:
        _add(state, alert)
    history.append(crossing)
    state.known_crossings.add(crossing.id)
    _audit_event(node, item, crossing, alerts, state)
    return Registration(crossing, traveller, document, photo, tuple(alerts))


INSERT_ORDER: tuple[type[SQLModel], ...] = (
    Traveller,
    TravelDocument,
    Photo,
    BiometricTemplate,
    Crossing,
    Alert,
    AuditEvent,
    IdempotencyKey,
)


async def _write(session: AsyncSession, state: _BatchState) -> None:
    for model in INSERT_ORDER:
        rows = state.new_rows.get(model)
        if rows:
            await session.execute(insert(model.__table__), [row_of(r) for r in rows])  # type: ignore[attr-defined]
    await enqueue(session, *state.outbox)


class RegistrationWriter(GroupCommit[PreparedRegistration, Registration]):
    """Queues prepared registrations and writes them in batches under the node write lock."""

    def __init__(self, node: Node, max_batch: int = MAX_BATCH) -> None:
        super().__init__(node.db, max_batch)
        self.node = node

    async def transaction(
        self, items: list[PreparedRegistration]
    ) -> list[Registration | BaseException]:
        """Build and write the batch; portraits are written to disk only for registrations
        that passed every check, before the commit that names them, and taken back if the
        commit fails: a refused registration leaves no file behind."""
        created: list[Path] = []
        try:
            async with self.node.db.sessions() as session, session.begin():
                await lock_for_write(session)
                state = await _prefetch(session, self.node, items)
                results: list[Registration | BaseException] = []
                for item in items:
                    try:
                        results.append(_build(self.node, item, state))
                    except Problem as problem:
                        results.append(problem)
                photos = {
                    item.photo.photo.sha256: item.photo.photo
                    for item, result in zip(items, results, strict=True)
                    if item.photo is not None and isinstance(result, Registration)
                }
                if photos:
                    created = await asyncio.to_thread(
                        store_photos, self.node.settings.photo_dir, list(photos.values())
                    )
                await _write(session, state)
        except BaseException:
            discard_photos(created)
            raise
        return results
