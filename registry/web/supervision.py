"""Supervisors and protection officers: the alert adjudication queue, and the supervisor's
view of the post's officers (their crossings per day and their actions from the audit log).

Alerts go through ``registry.watchlists.alerts`` (``open_alerts``, ``adjudicate``), which
decide what each role may see and adjudicate. Reading an officer's activity is audited.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.api.auth import node_of
from registry.audit import audit
from registry.models import AuditEvent, Crossing, Officer, utcnow
from registry.node import Node
from registry.officers.service import list_officers
from registry.problems import Problem
from registry.text import TextRefused, clean_text
from registry.watchlists.alerts import adjudicate, open_alerts
from registry.watchlists.schemas import ADJUDICATION_REASON
from registry.web.messages import (
    DECISIONS,
    DIRECTIONS,
    EVIDENCE,
    ROLE_NAMES,
    WATCHLIST_ACTIONS,
    instruction_text,
    label,
    text_refused_text,
)
from registry.web.nav import ALERT_DESK, SUPERVISION
from registry.web.render import redirect, render, translator

ACTIVITY_DAYS = 14
ACTIVITY_EVENTS = 200
OUTCOMES = ("confirmed", "dismissed")


class AlertPagesController(Controller):
    """/web/alerts"""

    path = "/alerts"
    opt = {"roles": ALERT_DESK}
    include_in_schema = False

    @get("/")
    async def queue(self, request: Request[Any, Any, Any], officer: Officer) -> Response[str]:
        return await _queue_page(request, officer)

    @post("/{alert_id:uuid}/adjudication")
    async def decide(
        self, request: Request[Any, Any, Any], officer: Officer, alert_id: uuid.UUID
    ) -> Response[Any]:
        node = node_of(request)
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
                request, officer, status_code=422, error=text_refused_text(param, _), kept=kept
            )
        async with node.db.write_transaction() as session:
            await adjudicate(
                session,
                node=node,
                officer=officer,
                alert_id=alert_id,
                outcome=str(outcome),
                reason=reason.strip()[:1000],
            )
        return redirect("/web/alerts?done=adjudicated")


async def _queue_page(
    request: Request[Any, Any, Any],
    officer: Officer,
    *,
    status_code: int = 200,
    error: str = "",
    kept: dict[str, str] | None = None,
) -> Response[str]:
    """The open alerts; after a refused decision, its form keeps what was typed."""
    node = node_of(request)
    async with node.db.write_transaction() as session:
        alerts = await open_alerts(session, node=node, officer=officer)
    _ = translator(request)
    for alert in alerts:
        alert["instruction_text"] = instruction_text(alert["instruction"], _)
        alert["evidence_text"] = label(EVIDENCE, alert["evidence"], _)
        alert["action_text"] = label(WATCHLIST_ACTIONS, alert.get("action"), _)
        crossing = alert["crossing"]
        crossing["direction_text"] = label(DIRECTIONS, crossing["direction"], _)
        crossing["decision_text"] = label(DECISIONS, crossing["decision"], _)
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


async def officer_activity(
    session: AsyncSession, *, node: Node, reader: Officer, subject: Officer
) -> dict[str, Any]:
    """One officer's crossings per local day and latest audit events; the read is audited."""
    since = utcnow() - timedelta(days=ACTIVITY_DAYS)
    rows = (
        await session.execute(
            select(
                col(Crossing.occurred_at), col(Crossing.direction), col(Crossing.decision)
            ).where(col(Crossing.officer_id) == subject.id, col(Crossing.occurred_at) >= since)
        )
    ).all()
    zone = node.settings.zone
    per_day: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    for when, _direction, decision in rows:
        per_day[when.astimezone(zone).date().isoformat()] += 1
        decisions[decision] += 1
    events = list(
        (
            await session.scalars(
                select(AuditEvent)
                .where(col(AuditEvent.officer_id) == subject.id)
                .order_by(col(AuditEvent.seq).desc())
                .limit(ACTIVITY_EVENTS)
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
        detail={"events": len(events), "days": ACTIVITY_DAYS},
    )
    return {
        "per_day": sorted(per_day.items(), reverse=True),
        "decisions": dict(decisions),
        "total": len(rows),
        "events": [
            {
                "at": event.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                "action": event.action,
                "record_type": event.record_type,
                "record_id": event.record_id,
                "purpose": event.purpose,
            }
            for event in events
        ],
    }


class ActivityController(Controller):
    """/web/officers/activity"""

    path = "/officers/activity"
    opt = {"roles": SUPERVISION}
    include_in_schema = False

    @get("/")
    async def page(
        self, request: Request[Any, Any, Any], officer: Officer, username: str | None = None
    ) -> Response[str]:
        node = node_of(request)
        _ = translator(request)
        selected = None
        activity = None
        async with node.db.write_transaction() as session:
            officers = await list_officers(session, post=node.settings.node_code)
            selected = next((o for o in officers if o.username == username), None)
            if selected is not None:
                activity = await officer_activity(
                    session, node=node, reader=officer, subject=selected
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
                }
                for o in officers
            ],
            selected=selected,
            activity=activity,
            days=ACTIVITY_DAYS,
            decision_names={code: label(DECISIONS, code, _) for code in DECISIONS},
        )
