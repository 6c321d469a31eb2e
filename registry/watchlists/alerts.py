"""Watchlist alerts: the rows a registration's hits raise, what each role may see of them
(``policy.disclosure``), the open alerts at a post, the two portraits its adjudicator compares
(the one taken at the crossing, the listed one kept with the entry), the one human
adjudication of each, and figures per kind of evidence.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import (
    ALERT_EVIDENCE,
    Alert,
    AlertAdjudication,
    Crossing,
    Officer,
    TravelDocument,
    Traveller,
    WatchlistEntry,
)
from registry.outbox import enqueue, insert_rows
from registry.problems import Problem, text_refused_problem
from registry.text import TextRefused, clean_text
from registry.watchlists.matcher import WatchlistHit
from registry.watchlists.policy import INSTRUCTIONS, PROTECT, disclosure, refuse_unless_adjudicates
from registry.watchlists.schemas import ADJUDICATION_REASON
from registry.watchlists.service import ID_CHUNK, iso_date, raiseload_portrait

if TYPE_CHECKING:
    from registry.node import Node

OPEN_ALERTS_LIMIT = 500


def alerts_for_crossing(
    crossing_id: uuid.UUID, hits: Sequence[WatchlistHit], origin: str
) -> list[Alert]:
    """Alert rows for the hits of one registration (not yet written)."""
    return [
        Alert(
            origin=origin,
            crossing_id=crossing_id,
            entry_id=hit.entry_id,
            entry_version=hit.entry_version,
            kind=hit.kind,
            evidence=hit.evidence,
            score=hit.score,
            distance=hit.distance,
            band=hit.band,
            action=hit.action,
        )
        for hit in hits
    ]


async def store_alerts(session: AsyncSession, alerts: Sequence[Alert]) -> None:
    """Insert alerts and append them to the outbox (after their crossing was inserted)."""
    if alerts:
        await insert_rows(session, *alerts)
        await enqueue(session, *alerts)


def desk_alert_view(alert: Alert) -> dict[str, Any]:
    """What the registration response shows, whoever registers: the instruction only.

    Supervisors read the details through ``GET /api/alerts``; needing no entry, this view
    costs no I/O, so the registration writer can build it inside its batch.
    """
    return alert_view(alert, None, role="officer")


def alert_view(alert: Alert, entry: WatchlistEntry | None, *, role: str) -> dict[str, Any]:
    """What ``role`` may see of an alert (see the module docstring)."""
    view: dict[str, Any] = {
        "id": str(alert.id),
        "evidence": alert.evidence,
        "instruction": INSTRUCTIONS.get(alert.action, INSTRUCTIONS["refer_secondary"]),
    }
    level = disclosure(role, alert.action)
    if level == "instruction":
        return view
    view.update(
        crossing_id=str(alert.crossing_id),
        created_at=alert.created_at.isoformat(),
        kind=alert.kind,
        action=alert.action,
        score=alert.score,
        band=alert.band,
        distance=alert.distance,
        reason=entry.reason if entry else None,
    )
    if level == "full":
        view.update(
            entry_id=str(alert.entry_id),
            entry_version=alert.entry_version,
            entry=_listed_view(entry) if entry else None,
        )
    return view


def _listed_view(entry: WatchlistEntry) -> dict[str, Any]:
    return {
        "external_id": entry.external_id,
        "source": entry.source,
        "surname": entry.surname,
        "given_names": entry.given_names,
        "date_of_birth": iso_date(entry.date_of_birth),
        "nationality": entry.nationality,
        "issuing_state": entry.issuing_state,
        "document_number": entry.document_number,
        "reason": entry.reason,
        "valid_from": iso_date(entry.valid_from),
        "valid_to": iso_date(entry.valid_to),
    }


EntryKey = tuple[uuid.UUID, int]


async def entries_of_alerts(
    session: AsyncSession, alerts: Sequence[Alert]
) -> tuple[dict[EntryKey, WatchlistEntry], set[EntryKey]]:
    """The entry versions the alerts were raised on, keyed by (entry_id, version), and the
    keys of those that hold a listed portrait (the portraits themselves are not read)."""
    wanted = {(alert.entry_id, alert.entry_version) for alert in alerts}
    ids = sorted({entry_id for entry_id, _ in wanted})
    found: dict[EntryKey, WatchlistEntry] = {}
    with_portrait: set[EntryKey] = set()
    held = col(WatchlistEntry.listed_portrait).is_not(None)
    for start in range(0, len(ids), ID_CHUNK):
        query = (
            select(WatchlistEntry, held)
            .options(raiseload_portrait())
            .where(col(WatchlistEntry.entry_id).in_(ids[start : start + ID_CHUNK]))
        )
        for entry, has_portrait in (await session.execute(query)).all():
            key = (entry.entry_id, entry.version)
            if key in wanted:
                found[key] = entry
                if has_portrait:
                    with_portrait.add(key)
    return found, with_portrait


def _crossing_summary(node: Node, crossing: Crossing) -> dict[str, Any]:
    return {
        "id": str(crossing.id),
        "post": crossing.post,
        "direction": crossing.direction,
        "occurred_at": crossing.occurred_at.isoformat(),
        "occurred_at_local": crossing.occurred_at.astimezone(node.settings.zone).isoformat(),
        "decision": crossing.decision,
        "has_photo": crossing.photo_sha256 is not None,
    }


async def alert_live_photo(
    session: AsyncSession, *, node: Node, officer: Officer, alert_id: uuid.UUID
) -> str:
    """The sha256 of the portrait taken at the crossing an alert was raised on, for the
    adjudicating officer; audited. 404 when the alert is not this post's, is not one the
    officer's role may see the traveller of (``disclosure``), or has no portrait: the same
    answer, so a refusal does not reveal the alert."""
    row = (
        await session.execute(
            select(Alert, Crossing)
            .join(Crossing, col(Crossing.id) == col(Alert.crossing_id))
            .where(col(Alert.id) == alert_id, col(Crossing.post) == node.settings.node_code)
        )
    ).first()
    if row is None:
        raise Problem(404, "Not found", field="alert_id", detail="no such alert")
    alert, crossing = row
    if disclosure(officer.role, alert.action) == "instruction" or not crossing.photo_sha256:
        raise Problem(404, "Not found", field="alert_id", detail="no such alert")
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="photo",
        record_id=crossing.photo_sha256,
        purpose="alert_review",
        detail={"alert": str(alert.id), "crossing": str(crossing.id)},
    )
    return crossing.photo_sha256


async def alert_listed_portrait(
    session: AsyncSession, *, node: Node, officer: Officer, alert_id: uuid.UUID
) -> bytes:
    """The listed portrait of the entry version an alert was raised on (a small JPEG made
    by ``registry.photos.listed_portrait``), for the adjudicating officer; audited. 404 on
    the same terms as ``alert_live_photo``: not this post's alert, not one the officer's role
    may see the traveller of, or no listed portrait (an entry enrolled before they were kept,
    or without a photo)."""
    row = (
        await session.execute(
            select(Alert, col(WatchlistEntry.id), col(WatchlistEntry.listed_portrait))
            .join(Crossing, col(Crossing.id) == col(Alert.crossing_id))
            .join(
                WatchlistEntry,
                (col(WatchlistEntry.entry_id) == col(Alert.entry_id))
                & (col(WatchlistEntry.version) == col(Alert.entry_version)),
            )
            .where(col(Alert.id) == alert_id, col(Crossing.post) == node.settings.node_code)
        )
    ).first()
    if row is None:
        raise Problem(404, "Not found", field="alert_id", detail="no such alert")
    alert, version_id, portrait = row
    if disclosure(officer.role, alert.action) == "instruction" or not portrait:
        raise Problem(404, "Not found", field="alert_id", detail="no such alert")
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="watchlist_entry",
        record_id=version_id,
        purpose="alert_review",
        detail={
            "alert": str(alert.id),
            "entry": f"{alert.entry_id}/{alert.entry_version}",
            "listed_portrait": True,
        },
    )
    return bytes(portrait)


def _traveller_summary(traveller: Traveller, document: TravelDocument) -> dict[str, Any]:
    return {
        "id": str(traveller.id),
        "surname": traveller.surname,
        "given_names": traveller.given_names,
        "date_of_birth": iso_date(traveller.date_of_birth),
        "nationality": traveller.nationality,
        "document": {"issuing_state": document.issuing_state, "number": document.number},
    }


def _not_adjudicated() -> Any:
    return ~exists().where(col(AlertAdjudication.alert_id) == col(Alert.id))


async def open_alerts(
    session: AsyncSession, *, node: Node, officer: Officer
) -> list[dict[str, Any]]:
    """Unadjudicated alerts at this post, oldest first, as the officer's role may see them.

    Protection officers get only ``protect`` alerts; supervisors get those as instructions
    only, without the traveller. The read is audited.
    """
    query = (
        select(Alert, Crossing, Traveller, TravelDocument)
        .join(Crossing, col(Crossing.id) == col(Alert.crossing_id))
        .join(Traveller, col(Traveller.id) == col(Crossing.traveller_id))
        .join(TravelDocument, col(TravelDocument.id) == col(Crossing.document_id))
        # `post + ""` stops SQLite from starting the join at every crossing of the post
        .where((col(Crossing.post) + "") == node.settings.node_code, _not_adjudicated())
        .order_by(col(Alert.created_at), col(Alert.id))
        .limit(OPEN_ALERTS_LIMIT)
    )
    if officer.role == "protection":
        query = query.where(col(Alert.action) == PROTECT)
    rows = (await session.execute(query)).all()
    entries, with_portrait = await entries_of_alerts(session, [row[0] for row in rows])
    views = []
    for alert, crossing, traveller, document in rows:
        key = (alert.entry_id, alert.entry_version)
        view = alert_view(alert, entries.get(key), role=officer.role)
        view["crossing"] = _crossing_summary(node, crossing)
        if disclosure(officer.role, alert.action) != "instruction":
            view["traveller"] = _traveller_summary(traveller, document)
            view["has_listed_portrait"] = key in with_portrait
        views.append(view)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="alert",
        record_id="open",
        purpose="alert_review",
        detail={"alerts": [view["id"] for view in views]},
    )
    return views


async def adjudicate(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    alert_id: uuid.UUID,
    outcome: str,
    reason: str,
) -> AlertAdjudication:
    """Record the one human decision on an alert: 404 unknown, 409 already decided."""
    try:
        reason = clean_text(reason, ADJUDICATION_REASON, "reason")
    except TextRefused as refused:
        raise text_refused_problem(refused) from refused
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise Problem(404, "Not found", field="alert_id", detail="no alert has this id")
    refuse_unless_adjudicates(officer, alert)
    decided = await session.scalar(
        select(col(AlertAdjudication.id)).where(col(AlertAdjudication.alert_id) == alert_id)
    )
    if decided is not None:
        raise Problem(
            409, "Already adjudicated", field="alert_id", detail="this alert has been decided"
        )
    adjudication = AlertAdjudication(
        origin=node.settings.node_code,
        alert_id=alert.id,
        outcome=outcome,
        reason=reason.strip(),
        officer_id=officer.id,
    )
    await insert_rows(session, adjudication)
    await enqueue(session, adjudication)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="adjudicate",
        record_type="alert",
        record_id=alert.id,
        purpose="alert_review",
        detail={"adjudication": str(adjudication.id), "outcome": outcome},
    )
    return adjudication


def adjudication_view(adjudication: AlertAdjudication) -> dict[str, Any]:
    return {
        "id": str(adjudication.id),
        "alert_id": str(adjudication.alert_id),
        "outcome": adjudication.outcome,
        "reason": adjudication.reason,
        "officer_id": str(adjudication.officer_id),
        "created_at": adjudication.created_at.isoformat(),
    }


async def alert_figures(session: AsyncSession) -> dict[str, Any]:
    """Alerts raised, confirmed, dismissed and still open, per kind of evidence; those of
    the other biometric modalities (evidence: the modality's name) under ``modalities``."""
    figures: dict[str, dict[str, int]] = {
        evidence.value: {"raised": 0, "confirmed": 0, "dismissed": 0, "open": 0}
        for evidence in ALERT_EVIDENCE
    }
    query = (
        select(col(Alert.evidence), col(AlertAdjudication.outcome), func.count())
        .outerjoin(AlertAdjudication, col(AlertAdjudication.alert_id) == col(Alert.id))
        .group_by(Alert.evidence, AlertAdjudication.outcome)
    )
    for evidence, outcome, count in (await session.execute(query)).all():
        bucket = figures.setdefault(
            evidence, {"raised": 0, "confirmed": 0, "dismissed": 0, "open": 0}
        )
        bucket["raised"] += count
        bucket[outcome or "open"] += count
    vocabulary = {evidence.value for evidence in ALERT_EVIDENCE}
    modalities = {name: figures.pop(name) for name in list(figures) if name not in vocabulary}
    return {**figures, "modalities": modalities}
