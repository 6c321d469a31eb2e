"""A crossing's page at the post (officers and supervisors, the roles of the correction and
referral endpoints): the crossing, its versions, a correction by a superseding version with
its reason (``registry.crossings.records.correct_crossing``, which computes the stay again),
and a protection referral attached to it (``registry.referrals.service.create_referral``).

The page says that a referral exists, never what it says: only the desk's roles reach it,
and they may know that much. Every read and write is audited by the services.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.auth import FRONT_DESK
from registry.audit import audited_read
from registry.crossings.records import (
    correct_crossing,
    crossing_versions,
    read_crossing,
    read_crossing_versions,
    successor_of,
)
from registry.crossings.schemas import CorrectionRequest
from registry.models import Crossing, Officer
from registry.node import Node
from registry.problems import Problem
from registry.referrals.schemas import ReferralCreate
from registry.referrals.service import create_referral, referred_crossings
from registry.schemas import decode_as
from registry.web.i18n import N_, local_minute
from registry.web.messages import (
    DECISIONS,
    DIRECTIONS,
    MODES,
    REFERRAL_CATEGORIES,
    TEXT_REFUSALS,
    check_text,
    label,
    text_refused_text,
)
from registry.web.render import redirect, render, translator

CORRECTABLE = (
    "decision",
    "direction",
    "mode",
    "vehicle_plate",
    "purpose",
    "destination",
    "remarks",
)
FIELD_LABELS = {
    "reason": N_("Reason for the correction"),
    "decision": N_("Decision"),
    "direction": N_("Direction"),
    "mode": N_("Mode of travel"),
    "vehicle_plate": N_("Vehicle plate"),
    "purpose": N_("Purpose of travel"),
    "destination": N_("Destination"),
    "remarks": N_("Remarks"),
    "category": N_("Category"),
    "note": N_("Note"),
}
REASON_MISSING = N_("Give the reason for the correction (3 characters or more).")
NOTHING_CHANGED = N_("Change at least one field: the correction would be the same crossing.")
NOTE_MISSING = N_("Write what the protection officer needs to know.")
CATEGORY_MISSING = N_("Choose the category of the referral.")
INVALID_FIELD = N_("Invalid value in %(field)s.")
ALREADY_REFERRED = N_(
    "A protection referral is already attached to this crossing: the protection officer "
    "follows it up. Tell them in person what you have to add."
)
ALREADY_CORRECTED = N_(
    "This version has already been corrected: open the latest version to correct it."
)


def form_error_text(problem: Problem, _: Any) -> str:
    """A refused form field in the reader's language, naming the field by its label."""
    param = problem.invalid_params[0] if problem.invalid_params else {}
    name = str(param.get("name", ""))
    shown = _(FIELD_LABELS[name]) if name in FIELD_LABELS else name
    if param.get("code") in TEXT_REFUSALS:
        return text_refused_text({**param, "name": shown}, _)
    return _(INVALID_FIELD) % {"field": shown}


def _local(value: str | None, node: Node) -> str:
    return local_minute(value, node.settings.zone)


def _labelled(view: dict[str, Any], node: Node, _: Any) -> dict[str, Any]:
    view["direction_text"] = label(DIRECTIONS, view["direction"], _)
    view["decision_text"] = label(DECISIONS, view["decision"], _)
    view["mode_text"] = label(MODES, view["mode"], _)
    view["when"] = _local(view["occurred_at"], node)
    view["stay_text"] = (view["stay_allowed_until"] or "")[:10]
    view["check_texts"] = [check_text(c["code"], c["message"], _) for c in view["checks"]]
    return view


async def _referred(session: AsyncSession, officer: Officer, version_ids: list[uuid.UUID]) -> bool:
    """Whether a referral is attached to any version of the crossing, for the roles that may
    know it (``referred_crossings``): such a crossing is not offered a second one."""
    return bool(await referred_crossings(session, officer=officer, crossing_ids=version_ids))


async def crossing_page(
    request: Request[Any, Any, Any],
    node: Node,
    officer: Officer,
    crossing_id: uuid.UUID,
    *,
    status_code: int = 200,
    correction_error: str = "",
    referral_error: str = "",
    kept: dict[str, str] | None = None,
) -> Response[str]:
    """The crossing, its versions, whether a referral exists, and the two forms; after a
    refused form, its error in the reader's language and what was typed. An audited read
    of its own: the forms' handlers show the page again after their transactions."""
    _ = translator(request)
    async with audited_read(node) as session:
        crossing = await read_crossing(
            session, node=node, officer=officer, crossing_id=crossing_id, purpose="view"
        )
        versions = await read_crossing_versions(
            session, node=node, officer=officer, crossing_id=crossing_id
        )
        referred = await _referred(session, officer, [uuid.UUID(v["id"]) for v in versions])
    latest = versions[-1]
    kept = kept or {}
    values = {name: kept.get(name, crossing.get(name) or "") for name in CORRECTABLE}
    return await render(
        request,
        "crossing.html",
        status_code=status_code,
        active="desk",
        crossing=_labelled(crossing, node, _),
        versions=[_labelled(v, node, _) for v in versions],
        latest_id=latest["id"],
        is_latest=latest["id"] == crossing["id"],
        referred=referred,
        values=values,
        reason=kept.get("reason", ""),
        referral_kept={"category": kept.get("category", ""), "note": kept.get("note", "")},
        correction_error=correction_error,
        referral_error=referral_error,
        decisions=[(code, label(DECISIONS, code, _)) for code in DECISIONS],
        directions=[(code, label(DIRECTIONS, code, _)) for code in DIRECTIONS],
        modes=[(code, label(MODES, code, _)) for code in MODES],
        categories=[(code, label(REFERRAL_CATEGORIES, code, _)) for code in REFERRAL_CATEGORIES],
    )


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


class CrossingPagesController(Controller):
    """/web/crossings/{id}"""

    path = "/crossings"
    opt = {"roles": FRONT_DESK}
    include_in_schema = False

    @get("/{crossing_id:uuid}")
    async def page(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, crossing_id: uuid.UUID
    ) -> Response[str]:
        return await crossing_page(request, node, officer, crossing_id)

    @post("/{crossing_id:uuid}/corrections")
    async def correct(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, crossing_id: uuid.UUID
    ) -> Response[Any]:
        """A superseding version with the fields that differ from this one and the reason,
        through the correction endpoint's service; a refused form comes back filled in."""
        _ = translator(request)
        form = await _form(request)
        kept = {name: form.get(name, "") for name in (*CORRECTABLE, "reason")}
        async with node.db.session() as session:
            current = await session.get(Crossing, crossing_id)
            superseded = await successor_of(session, crossing_id) is not None
        if current is None:
            raise Problem(404, "Not found", field="crossing_id", detail="no crossing has this id")
        if superseded:
            return await crossing_page(
                request,
                node,
                officer,
                crossing_id,
                status_code=409,
                correction_error=_(ALREADY_CORRECTED),
                kept=kept,
            )
        changes = {
            name: kept[name].strip()
            for name in CORRECTABLE
            if kept[name].strip() != (getattr(current, name) or "")
        }
        error = ""
        if len(kept["reason"].strip()) < 3:
            error = _(REASON_MISSING)
        elif not changes:
            error = _(NOTHING_CHANGED)
        if not error:
            payload = {"reason": kept["reason"].strip(), **changes}
            try:
                data = decode_as(msgspec.json.encode(payload), CorrectionRequest)
            except Problem as problem:
                error = form_error_text(problem, _)
        if error:
            return await crossing_page(
                request,
                node,
                officer,
                crossing_id,
                status_code=422,
                correction_error=error,
                kept=kept,
            )
        try:
            async with node.db.write_transaction() as session:
                corrected = await correct_crossing(
                    session,
                    node=node,
                    officer=officer,
                    crossing_id=crossing_id,
                    changes={f: getattr(data, f) for f in changes},
                    reason=data.reason,
                )
        except Problem as problem:
            if problem.status != 409:
                raise
            return await crossing_page(
                request,
                node,
                officer,
                crossing_id,
                status_code=409,
                correction_error=_(ALREADY_CORRECTED),
                kept=kept,
            )
        return redirect(f"/web/crossings/{corrected.id}?done=crossing_corrected")

    @post("/{crossing_id:uuid}/referrals")
    async def refer(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer, crossing_id: uuid.UUID
    ) -> Response[Any]:
        """Attach a protection referral through the referral endpoint's service."""
        _ = translator(request)
        form = await _form(request)
        kept = {"category": form.get("category", ""), "note": form.get("note", "")}
        error = ""
        if kept["category"] not in REFERRAL_CATEGORIES:
            error = _(CATEGORY_MISSING)
        elif not kept["note"].strip():
            error = _(NOTE_MISSING)
        if not error:
            try:
                data = decode_as(
                    msgspec.json.encode({**kept, "note": kept["note"].strip()}), ReferralCreate
                )
            except Problem as problem:
                error = form_error_text(problem, _)
        if error:
            return await crossing_page(
                request,
                node,
                officer,
                crossing_id,
                status_code=422,
                referral_error=error,
                kept=kept,
            )
        async with node.db.write_transaction() as session:
            chain = await crossing_versions(session, crossing_id)
            if await _referred(session, officer, [version.id for version in chain]):
                refused = _(ALREADY_REFERRED)
            else:
                refused = ""
                await create_referral(
                    session,
                    node=node,
                    officer=officer,
                    crossing_id=crossing_id,
                    category=data.category,
                    note=data.note,
                )
        if refused:  # a second referral (another desk was quicker): the page says one exists
            return await crossing_page(
                request,
                node,
                officer,
                crossing_id,
                status_code=409,
                referral_error=refused,
                kept=kept,
            )
        return redirect(f"/web/crossings/{crossing_id}?done=referral_attached")
