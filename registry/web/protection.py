"""Protection referrals, for protection officers only (``registry.referrals.service``
audits every read and write): the list of cases with their status and reporting officer,
and a case's page with its steps and the form that adds one (a follow-up note, the status
it leaves the case in, or its closing with an outcome)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from registry.audit import audited_read
from registry.models import Officer
from registry.node import Node
from registry.problems import Problem
from registry.referrals.schemas import FollowUpCreate
from registry.referrals.service import add_follow_up, list_referrals, read_referral
from registry.schemas import decode_as
from registry.web.i18n import N_, local_minute
from registry.web.messages import (
    DIRECTIONS,
    REFERRAL_CATEGORIES,
    REFERRAL_OUTCOMES,
    REFERRAL_STATUSES,
    TEXT_REFUSALS,
    label,
    text_refused_text,
)
from registry.web.nav import PROTECTION
from registry.web.render import redirect, render, translator

FOLLOW_UP_NOTE_MISSING = N_("Write the follow-up note.")
OUTCOME_MISSING = N_("Choose the outcome to close the case.")
OUTCOME_ONLY_WHEN_CLOSING = N_("An outcome is given only when closing the case.")
CASE_CLOSED = N_("This case is closed: it takes no more follow-up.")
INVALID_STATUS = N_("Choose the status the case is left in.")
NOTE_FIELD = N_("Follow-up note")


def _when(value: str | None, zone: Any) -> str:
    return local_minute(value, zone)


def _labelled(referral: dict[str, Any], _: Any, zone: Any) -> dict[str, Any]:
    referral["category_text"] = label(REFERRAL_CATEGORIES, referral["category"], _)
    referral["direction_text"] = label(DIRECTIONS, referral["direction"], _)
    referral["status_text"] = label(REFERRAL_STATUSES, referral["status"], _)
    referral["outcome_text"] = label(REFERRAL_OUTCOMES, referral["outcome"], _)
    referral["when"] = _when(referral["occurred_at"], zone)
    referral["reported_when"] = _when(referral["created_at"], zone)
    referral["closed_when"] = _when(referral["closed_at"], zone)
    for step in referral["follow_ups"]:
        step["status_text"] = label(REFERRAL_STATUSES, step["status"], _)
        step["outcome_text"] = label(REFERRAL_OUTCOMES, step["outcome"], _)
        step["when"] = _when(step["created_at"], zone)
    return referral


async def _case_page(
    request: Request[Any, Any, Any],
    node: Node,
    officer: Officer,
    referral_id: uuid.UUID,
    *,
    status_code: int = 200,
    error: str = "",
    kept: dict[str, str] | None = None,
) -> Response[str]:
    """The case and its follow-up form, in an audited read of its own (the follow-up
    handler shows it again after its own transaction was refused)."""
    async with audited_read(node) as reading:
        referral = await read_referral(reading, node=node, officer=officer, referral_id=referral_id)
    _ = translator(request)
    kept = kept or {}
    return await render(
        request,
        "referral.html",
        status_code=status_code,
        active="referrals",
        referral=_labelled(referral, _, node.settings.zone),
        statuses=[(c, label(REFERRAL_STATUSES, c, _)) for c in REFERRAL_STATUSES],
        outcomes=[(c, label(REFERRAL_OUTCOMES, c, _)) for c in REFERRAL_OUTCOMES],
        form_error=error,
        kept={
            "status": kept.get("status", "in_follow_up"),
            "note": kept.get("note", ""),
            "outcome": kept.get("outcome", ""),
        },
    )


def _form_refusal(problem: Problem, _: Any) -> str:
    param = problem.invalid_params[0] if problem.invalid_params else {}
    if param.get("code") in TEXT_REFUSALS:
        return text_refused_text({**param, "name": _(NOTE_FIELD)}, _)
    if param.get("name") == "outcome":
        return _(OUTCOME_MISSING)
    if param.get("name") == "status":
        return _(INVALID_STATUS)
    return _(FOLLOW_UP_NOTE_MISSING)


class ReferralPagesController(Controller):
    """/web/referrals"""

    path = "/referrals"
    opt = {"roles": PROTECTION}
    include_in_schema = False

    @get("/")
    async def index(
        self,
        request: Request[Any, Any, Any],
        node: Node,
        reading: AsyncSession,
        officer: Officer,
    ) -> Response[str]:
        referrals = await list_referrals(reading, node=node, officer=officer)
        _ = translator(request)
        zone = node.settings.zone
        return await render(
            request,
            "referrals.html",
            active="referrals",
            referrals=[_labelled(r, _, zone) for r in referrals],
        )

    @get("/{referral_id:uuid}")
    async def detail(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, referral_id: uuid.UUID
    ) -> Response[str]:
        return await _case_page(request, node, officer, referral_id)

    @post("/{referral_id:uuid}/follow-ups")
    async def follow_up(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, referral_id: uuid.UUID
    ) -> Response[Any]:
        """Add a step to the case; a refused form comes back filled in, its error translated
        (after a refused step, the case is read again in a second transaction)."""
        _ = translator(request)
        form = await request.form()
        kept = {
            name: value if isinstance(value := form.get(name, ""), str) else ""
            for name in ("status", "note", "outcome")
        }
        error = ""
        if kept["status"] not in REFERRAL_STATUSES:
            error = _(INVALID_STATUS)
        elif not kept["note"].strip():
            error = _(FOLLOW_UP_NOTE_MISSING)
        elif kept["status"] == "closed" and kept["outcome"] not in REFERRAL_OUTCOMES:
            error = _(OUTCOME_MISSING)
        elif kept["status"] != "closed" and kept["outcome"]:
            error = _(OUTCOME_ONLY_WHEN_CLOSING)
        if not error:
            payload = {
                "status": kept["status"],
                "note": kept["note"].strip(),
                "outcome": kept["outcome"] or None,
            }
            try:
                data = decode_as(msgspec.json.encode(payload), FollowUpCreate)
            except Problem as problem:
                error = _form_refusal(problem, _)
        if error:
            return await _case_page(
                request, node, officer, referral_id, status_code=422, error=error, kept=kept
            )
        try:
            async with node.db.write_transaction() as session:
                await add_follow_up(
                    session,
                    node=node,
                    officer=officer,
                    referral_id=referral_id,
                    status=data.status,
                    note=data.note,
                    outcome=data.outcome,
                )
        except Problem as problem:
            if problem.status != 409:
                raise
            return await _case_page(
                request,
                node,
                officer,
                referral_id,
                status_code=409,
                error=_(CASE_CLOSED),
                kept=kept,
            )
        done = "case_closed" if data.status == "closed" else "follow_up_added"
        return redirect(f"/web/referrals/{referral_id}?done={done}")
