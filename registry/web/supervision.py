"""Supervisors and protection officers: the alert adjudication queue, and the supervisor's
view of the post's officers (crossings per officer and day, and each officer's actions from
the audit log, paged and in words).

Alerts go through ``registry.watchlists.alerts`` (``open_alerts``, ``adjudicate``, and the two
portraits an adjudicator compares), which decide what each role may see and adjudicate.
Reading an officer's activity is audited.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit, audited_read
from registry.models import AuditEvent, Crossing, Officer, utcnow
from registry.node import Node
from registry.officers.service import list_officers
from registry.photos import read_photo
from registry.problems import Problem
from registry.text import TextRefused, clean_text
from registry.watchlists.alerts import (
    adjudicate,
    alert_listed_portrait,
    alert_live_photo,
    open_alerts,
)
from registry.watchlists.schemas import ADJUDICATION_REASON
from registry.web.messages import (
    AUDIT_ACTIONS,
    AUDIT_PURPOSES,
    AUDIT_RECORDS,
    DECISIONS,
    DIRECTIONS,
    FACE_BANDS,
    ROLE_NAMES,
    WATCHLIST_ACTIONS,
    evidence_text,
    instruction_text,
    label,
    text_refused_text,
)
from registry.web.nav import ALERT_DESK, SUPERVISION
from registry.web.render import redirect, render, translator

ACTIVITY_DAYS = 7
ACTIVITY_PAGE = 50
ACTIVITY_MAX_OFFSET = 1_000_000
OUTCOMES = ("confirmed", "dismissed")


class AlertPagesController(Controller):
    """/web/alerts"""

    path = "/alerts"
    opt = {"roles": ALERT_DESK}
    include_in_schema = False

    @get("/")
    async def queue(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        reading: AsyncSession,
        officer: Officer,
    ) -> Response[str]:
        return await _queue_page(request, node, reading, officer)

    @get("/{alert_id:uuid}/photo")
    async def live_photo(
        self, node: Node, officer: Officer, alert_id: uuid.UUID
    ) -> Response[bytes]:
        """The portrait taken at the alert's crossing, beside the listing (audited: the read
        is recorded even when the file is then missing, hence its own audited read)."""
        async with audited_read(node) as reading:
            sha256 = await alert_live_photo(reading, node=node, officer=officer, alert_id=alert_id)
        data = read_photo(node.settings.photo_dir, sha256)
        if data is None:
            raise Problem(404, "Not found", field="alert_id", detail="no such alert")
        return Response(data, media_type="image/jpeg")

    @get("/{alert_id:uuid}/listed-photo")
    async def listed_photo(
        self, node: Node, reading: AsyncSession, officer: Officer, alert_id: uuid.UUID
    ) -> Response[bytes]:
        """The listed portrait kept with the alert's entry, beside the live one (audited)."""
        data = await alert_listed_portrait(reading, node=node, officer=officer, alert_id=alert_id)
        return Response(data, media_type="image/jpeg")

    @post("/{alert_id:uuid}/adjudication")
    async def decide(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        alert_id: uuid.UUID,
    ) -> Response[Any]:
        form = await request.form()
        outcome = form.get("outcome")
        reason = form.get("reason")
        if outcome not in OUTCOMES:
            raise Problem(422, "Invalid outcome", field="outcome", detail="confirm or dismiss")
        if not isinstance(reason, str) or len(reason.strip()) < 3:
            raise Problem(
                422, "Reason missing", field="reason", detail="give a reason (3 characters or more)"
            )
        try:
            reason = clean_text(reason, ADJUDICATION_REASON, "reason")
        except TextRefused as refused:  # the queue again, this alert's form filled in
            _ = translator(request)
            param = {"name": "reason", "code": refused.code, **refused.params()}
            kept = {"alert_id": str(alert_id), "outcome": str(outcome), "reason": reason}
            return await _queue_page(
                request,
                node,
                transaction,
                officer,
                status_code=422,
                error=text_refused_text(param, _),
                kept=kept,
            )
        await adjudicate(
            transaction,
            node=node,
            officer=officer,
            alert_id=alert_id,
            outcome=str(outcome),
            reason=reason.strip()[:1000],
        )
        return redirect("/web/alerts?done=adjudicated")


async def _queue_page(
    request: Request[Any, Any, Any],
    node: Node,
    transaction: AsyncSession,
    officer: Officer,
    *,
    status_code: int = 200,
    error: str = "",
    kept: dict[str, str] | None = None,
) -> Response[str]:
    """The open alerts (read in the handler's transaction); after a refused decision, its
    form keeps what was typed."""
    alerts = await open_alerts(transaction, node=node, officer=officer)
    _ = translator(request)
    for alert in alerts:
        alert["instruction_text"] = instruction_text(alert["instruction"], _)
        alert["evidence_text"] = evidence_text(alert["evidence"], _)
        alert["action_text"] = label(WATCHLIST_ACTIONS, alert.get("action"), _)
        crossing = alert["crossing"]
        crossing["direction_text"] = label(DIRECTIONS, crossing["direction"], _)
        crossing["decision_text"] = label(DECISIONS, crossing["decision"], _)
        alert["band_text"] = label(FACE_BANDS, alert.get("band"), _)
        alert["live_photo"] = (
            f"/web/alerts/{alert['id']}/photo"
            if alert.get("traveller") and crossing.get("has_photo")
            else ""
        )
        alert["listed_photo"] = (
            f"/web/alerts/{alert['id']}/listed-photo" if alert.get("has_listed_portrait") else ""
        )
        alert["may_decide"] = _may_decide(officer, alert)
    return await render(
        request,
        "alerts.html",
        status_code=status_code,
        active="alerts",
        alerts=alerts,
        form_error=error,
        kept=kept or {},
    )


def _may_decide(officer: Officer, alert: dict[str, Any]) -> bool:
    """Supervisors decide refer/notify alerts; protection officers decide protect alerts."""
    action = alert.get("action")
    if officer.role == "protection":
        return True  # the queue shows protection officers their protect alerts only
    return action is not None and action != "protect"


def _event_row(event: AuditEvent, zone: Any, _: Any) -> dict[str, Any]:
    """One action of the audit log in words: what was done, to which kind of record, why."""
    detail = event.detail if isinstance(event.detail, dict) else {}
    results = detail.get("results")
    return {
        "at": event.at.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds"),
        "action": label(AUDIT_ACTIONS, event.action, _),
        "action_known": event.action in AUDIT_ACTIONS,
        "record": label(AUDIT_RECORDS, event.record_type, _),
        "record_known": event.record_type in AUDIT_RECORDS,
        "record_id": "" if event.record_id.startswith("search:") else event.record_id[:13],
        "purpose": label(AUDIT_PURPOSES, event.purpose, _),
        "purpose_known": event.purpose in AUDIT_PURPOSES,
        "results": len(results) if isinstance(results, list) else None,
    }


async def crossings_per_officer_and_day(
    session: AsyncSession, *, node: Node, reader: Officer, officers: list[Officer], days: list[str]
) -> dict[str, dict[str, int]]:
    """Crossings each officer of the post registered on each of these local days (current and
    superseded versions alike: what the officer did); the read is audited."""
    zone = node.settings.zone
    first = datetime.combine(date.fromisoformat(days[-1]), time(), zone).astimezone(UTC)
    rows = await session.execute(
        select(col(Crossing.officer_id), col(Crossing.occurred_at)).where(
            col(Crossing.occurred_at) >= first, col(Crossing.post) == node.settings.node_code
        )
    )
    by_id = {o.id: o.username for o in officers}
    counts: dict[str, dict[str, int]] = {o.username: dict.fromkeys(days, 0) for o in officers}
    for officer_id, when in rows:
        username = by_id.get(officer_id)
        day = when.astimezone(zone).date().isoformat()
        if username is not None and day in counts[username]:
            counts[username][day] += 1
    await audit(
        session,
        origin=node.settings.node_code,
        officer=reader,
        action="read",
        record_type="officer_activity",
        record_id=node.settings.node_code,
        purpose="supervision",
        detail={"days": len(days), "officers": len(officers)},
    )
    return counts


async def officer_actions(
    session: AsyncSession,
    *,
    node: Node,
    reader: Officer,
    subject: Officer,
    offset: int,
    _: Any,
) -> dict[str, Any]:
    """One page of an officer's actions from the audit log, newest first, in words; the
    read is audited."""
    events = list(
        (
            await session.scalars(
                select(AuditEvent)
                .where(col(AuditEvent.officer_id) == subject.id)
                .order_by(col(AuditEvent.seq).desc())
                .offset(offset)
                .limit(ACTIVITY_PAGE + 1)
            )
        ).all()
    )
    await audit(
        session,
        origin=node.settings.node_code,
        officer=reader,
        action="read",
        record_type="officer_activity",
        record_id=subject.id,
        purpose="supervision",
        detail={"events": len(events[:ACTIVITY_PAGE]), "offset": offset},
    )
    zone = node.settings.zone
    return {
        "events": [_event_row(event, zone, _) for event in events[:ACTIVITY_PAGE]],
        "more": len(events) > ACTIVITY_PAGE,
        "offset": offset,
    }


class ActivityController(Controller):
    """/web/officers/activity"""

    path = "/officers/activity"
    opt = {"roles": SUPERVISION}
    include_in_schema = False

    @get("/")
    async def page(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        transaction: AsyncSession,
        officer: Officer,
        username: Annotated[str | None, Parameter(max_length=64)] = None,
        offset: Annotated[int, Parameter(ge=0, le=ACTIVITY_MAX_OFFSET)] = 0,
    ) -> Response[str]:
        _ = translator(request)
        today = utcnow().astimezone(node.settings.zone).date()
        days = [(today - timedelta(days=n)).isoformat() for n in range(ACTIVITY_DAYS)]
        actions = None
        officers = await list_officers(transaction, post=node.settings.node_code)
        selected = next((o for o in officers if o.username == username), None)
        if username and selected is None:
            raise Problem(404, "Not found", field="username", detail="no such officer here")
        counts = await crossings_per_officer_and_day(
            transaction, node=node, reader=officer, officers=officers, days=days
        )
        if selected is not None:
            actions = await officer_actions(
                transaction, node=node, reader=officer, subject=selected, offset=offset, _=_
            )
        return await render(
            request,
            "activity.html",
            active="activity",
            officers=[
                {
                    "username": o.username,
                    "full_name": o.full_name,
                    "role": label(ROLE_NAMES, o.role, _),
                    "active": o.active,
                    "days": counts[o.username],
                    "total": sum(counts[o.username].values()),
                }
                for o in officers
            ],
            selected=selected,
            actions=actions,
            days=days,
            page=ACTIVITY_PAGE,
        )
