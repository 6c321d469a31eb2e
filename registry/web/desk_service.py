"""What the registration desk asks the node before the officer decides.

- ``mrz_view``: the MRZ as the desk shows it: the form values it fills and one result per
  checked field (check digits, dates, codes), translated. Parsing is ``registry.mrz``.
- ``desk_check``: the integrity checks of the registration as it stands (the same
  ``resolve_identity`` and ``minor_checks`` the registration runs), the stay outcome from
  the traveller's history at this post, and the watchlist result, reduced to the desk view:
  instructions only ("refer to secondary inspection" / "refer to the protection officer"),
  never the reason, the listed identity or the source.

Saving is not here: the desk saves through ``prepare_registration`` and
``node.registrations.submit``, exactly like ``POST /api/crossings``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.crossings.registration import (
    STRUCTURAL_MRZ_PROBLEMS,
    Check,
    ResolvedIdentity,
    compute_stay,
    minor_checks,
    resolve_identity,
    traveller_crossings,
)
from registry.crossings.schemas import RegistrationRequest
from registry.models import Officer, TravelDocument, Traveller, utcnow
from registry.mrz import MrzResult, parse_mrz
from registry.names import normalise_document_number
from registry.node import Node
from registry.photos import AnalysedPhoto
from registry.watchlists.matcher import traveller_probe
from registry.watchlists.policy import INSTRUCTIONS
from registry.web.i18n import N_
from registry.web.messages import Gettext, check_text, instruction_text

MRZ_FIELD = "mrz"
FORM_FIELDS = {
    "document_number": "document.number",
    "date_of_birth": "traveller.date_of_birth",
    "expiry_date": "document.expiry_date",
    "issuing_state": "document.issuing_state",
    "nationality": "traveller.nationality",
    "sex": "traveller.sex",
}
CHECKED_FIELDS = {
    "document.number": N_("Check digit OK"),
    "traveller.date_of_birth": N_("Check digit OK"),
    "document.expiry_date": N_("Check digit OK, not expired"),
    MRZ_FIELD: N_("MRZ read, composite check digit OK"),
}
PASSED = N_("No problem found")


def form_field(field: str) -> str:
    """The desk form field a service check names (MRZ-style or dotted)."""
    if field in FORM_FIELDS:
        return FORM_FIELDS[field]
    if field.startswith(("document.", "traveller.")) or field in (
        "direction",
        "guardian_crossing_id",
        "photo",
    ):
        return field
    return MRZ_FIELD


def _document_type(result: MrzResult) -> str:
    return (result.document_code or "P")[:2].replace("<", "") or "P"


def mrz_form_values(result: MrzResult) -> dict[str, str]:
    """The form values an MRZ fills (empty when its layout cannot be read)."""
    if not result.format or not result.document_number:
        return {}
    return {
        "document.issuing_state": result.issuing_state,
        "document.number": result.document_number,
        "document.document_type": _document_type(result),
        "document.expiry_date": result.expiry_date.isoformat() if result.expiry_date else "",
        "traveller.surname": result.surname,
        "traveller.given_names": result.given_names,
        "traveller.nationality": result.nationality,
        "traveller.date_of_birth": (
            result.date_of_birth.isoformat() if result.date_of_birth else ""
        ),
        "traveller.sex": result.sex if result.sex in ("M", "F", "X") else "X",
    }


def mrz_view(text: str, today: date, _: Gettext) -> dict[str, Any]:
    """Parse the MRZ and say, field by field, what the checks found."""
    result = parse_mrz(text, today=today)
    readable = not any(p.code in STRUCTURAL_MRZ_PROBLEMS for p in result.problems)
    failed: dict[str, list[dict[str, Any]]] = {}
    for problem in result.problems:
        field = form_field(problem.field)
        failed.setdefault(field, []).append(
            {
                "field": field,
                "ok": False,
                "code": problem.code,
                "message": check_text(problem.code, problem.message, _),
                "detail": problem.message,
            }
        )
    checks = [item for items in failed.values() for item in items]
    if readable:
        checks += [
            {"field": field, "ok": True, "code": "ok", "message": _(text), "detail": ""}
            for field, text in CHECKED_FIELDS.items()
            if field not in failed
        ]
    return {
        "readable": readable,
        "valid": result.valid,
        "format": str(result.format),
        "values": mrz_form_values(result) if readable else {},
        "checks": checks,
        "mrz": result.to_dict(),
    }


def check_view(check: Check, _: Gettext) -> dict[str, Any]:
    return {
        "field": form_field(check.field),
        "ok": False,
        "code": check.code,
        "message": check_text(check.code, check.message, _),
        "detail": check.message,
    }


async def _stay_checks(
    session: AsyncSession,
    node: Node,
    officer: Officer,
    registration: RegistrationRequest,
    issuing_state: str,
    number_norm: str,
) -> list[Check]:
    """The stay outcome (open entry, overstay, allowance) from this post's history."""
    query = select(TravelDocument, Traveller).join(
        Traveller, col(Traveller.id) == col(TravelDocument.traveller_id)
    )
    row = (
        await session.execute(
            query.where(
                col(TravelDocument.origin) == node.settings.node_code,
                col(TravelDocument.issuing_state) == issuing_state,
                col(TravelDocument.number_norm) == number_norm,
            )
        )
    ).first()
    if row is None:
        return []
    _, traveller = row
    history = await traveller_crossings(session, traveller.id)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="read",
        record_type="traveller",
        record_id=traveller.id,
        purpose="desk_check",
        detail={"crossings": [str(c.id) for c in history]},
    )
    stay = compute_stay(node, registration.direction, traveller.nationality, history, utcnow())
    return list(stay.checks)


def photo_checks(registration: RegistrationRequest, photo: AnalysedPhoto | None) -> list[Check]:
    """What the quality gate said about the portrait, before the save would refuse it: a
    refused photo without the officer's reason is a warning at the check, not a surprise at
    the save; an accepted override stays a warning."""
    if photo is None or photo.quality_passed:
        return []
    said = f"{photo.refusal or 'quality too low'} (score {photo.quality_score})"
    if registration.photo_quality_override is None:
        return [Check("photo_refused", "photo", f"photo refused by the quality gate: {said}")]
    return [Check("photo_quality_override", "photo", f"officer override; gate said: {said}")]


def desk_instructions(
    node: Node,
    identity: ResolvedIdentity,
    today: date,
    photo: AnalysedPhoto | None,
    _: Gettext,
) -> list[str]:
    """The desk's watchlist instructions for this identity: deduplicated, never a reason."""
    hits = node.watchlists.match_traveller(
        day=today,
        probe=traveller_probe(identity.document, identity.traveller, identity.mrz),
        face_encoding=photo.encoding if photo is not None else None,
        templates=photo.modality_templates if photo is not None else None,
    )
    wording = {INSTRUCTIONS.get(hit.action, INSTRUCTIONS["refer_secondary"]) for hit in hits}
    return sorted(instruction_text(text, _) for text in wording)


async def desk_check(
    session: AsyncSession,
    *,
    node: Node,
    officer: Officer,
    registration: RegistrationRequest,
    photo: AnalysedPhoto | None,
    _: Gettext,
) -> dict[str, Any]:
    """Everything the officer should see before deciding, as the desk shows it."""
    today = utcnow().astimezone(node.settings.zone).date()
    identity = resolve_identity(registration, today)
    checks = list(identity.checks) + minor_checks(registration, identity.traveller, today)
    checks += photo_checks(registration, photo)
    instructions = desk_instructions(node, identity, today, photo, _)
    number_norm = normalise_document_number(identity.document.number)
    checks += await _stay_checks(
        session, node, officer, registration, identity.document.issuing_state, number_norm
    )
    return {
        "instructions": instructions,
        "checks": [check_view(check, _) for check in checks],
        "summary": _(PASSED) if not checks and not instructions else "",
    }
