"""The registration flow: one request turns document, traveller and photo into a crossing.

Document integrity checks (MRZ check digits, MRZ against typed data, validity dates,
minors without a guardian) are stored with the crossing as warnings: they never block
the officer, who records the decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.crossings.schemas import RegistrationRequest
from registry.ids import uuid7
from registry.models import (
    Alert,
    Crossing,
    Officer,
    Photo,
    SupersededCrossing,
    TravelDocument,
    Traveller,
    utcnow,
)
from registry.mrz import MrzResult, parse_mrz
from registry.names import names_match, normalise_document_number
from registry.node import Node
from registry.photos import AnalysedPhoto
from registry.problems import Problem
from registry.receipts import ReceiptClaims, document_hash, sign_receipt
from registry.schemas import DocumentInput, Sex, TravellerInput
from registry.stays import StayRules, allowed_stay_until, overstay_days, pair_stays, stay_limit
from registry.watchlists.matcher import WatchlistHit, traveller_probe

# The MRZ sex characters a traveller record takes as they are; any other reads as "X".
MRZ_SEXES: dict[str, Sex] = {sex.value: sex for sex in Sex}
STRUCTURAL_MRZ_PROBLEMS = {
    "wrong_line_count",
    "wrong_line_length",
    "invalid_characters",
    "unknown_format",
}
ADULT_AGE = 18
NAME_MISMATCH = "name_mismatch"  # registers only with name_mismatch_acknowledged
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_BACKDATE = timedelta(days=7)


@dataclass(frozen=True)
class Check:
    """One named integrity check result stored with the crossing."""

    code: str
    field: str
    message: str
    severity: str = "warning"

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class ResolvedIdentity:
    """Document and traveller data after merging MRZ and typed input."""

    document: DocumentInput
    traveller: TravellerInput
    mrz: MrzResult | None
    checks: tuple[Check, ...]


@cache
def current_version_filter() -> Any:
    """SQL condition: the crossing has not been superseded by a correction, i.e. its id is
    not in ``superseded_crossing`` (kept by triggers on crossing, migration 0007). One probe
    of a small table on every node; on the partitioned national table the former
    ``NOT EXISTS`` over ``crossing.supersedes`` probed every monthly partition per row."""
    return ~exists().where(col(SupersededCrossing.id) == col(Crossing.id))


def _parse_mrz_or_refuse(raw: str, today: date) -> MrzResult:
    result = parse_mrz(raw, today=today)
    structural = [p for p in result.problems if p.code in STRUCTURAL_MRZ_PROBLEMS]
    if structural:
        detail = "; ".join(p.message for p in structural)
        raise Problem(422, "Unreadable MRZ", field="mrz", detail=detail)
    return result


def _document_from_mrz(mrz: MrzResult) -> DocumentInput:
    return DocumentInput(
        issuing_state=mrz.issuing_state,
        number=mrz.document_number,
        document_type=(mrz.document_code or "P")[:2].replace("<", "") or "P",
        expiry_date=mrz.expiry_date,
    )


def _traveller_from_mrz(mrz: MrzResult) -> TravellerInput:
    return TravellerInput(
        surname=mrz.surname or "UNKNOWN",
        given_names=mrz.given_names,
        nationality=mrz.nationality,
        date_of_birth=mrz.date_of_birth,
        sex=MRZ_SEXES.get(mrz.sex, Sex.X),
    )


def _mrz_checks(mrz: MrzResult) -> list[Check]:
    return [Check(f"mrz_{p.code}", p.field, p.message) for p in mrz.problems]


def _compare(field: str, typed: object, read: object) -> Check | None:
    if typed in (None, "") or read in (None, "") or typed == read:
        return None
    return Check("mrz_mismatch", field, f"typed {typed!s} but the MRZ says {read!s}")


def _mrz_vs_typed(mrz: MrzResult, doc: DocumentInput, person: TravellerInput) -> list[Check]:
    pairs = [
        (
            "document.number",
            normalise_document_number(doc.number),
            normalise_document_number(mrz.document_number),
        ),
        ("document.issuing_state", doc.issuing_state, mrz.issuing_state),
        ("document.expiry_date", doc.expiry_date, mrz.expiry_date),
        ("traveller.nationality", person.nationality, mrz.nationality),
        ("traveller.date_of_birth", person.date_of_birth, mrz.date_of_birth),
        ("traveller.sex", person.sex if person.sex != "X" else None, mrz.sex),
    ]
    checks = [c for c in (_compare(*pair) for pair in pairs) if c]
    typed_name = f"{person.surname} {person.given_names}"
    read_name = f"{mrz.surname} {mrz.given_names}"
    if mrz.surname and not names_match(typed_name, read_name):
        checks.append(
            Check(
                NAME_MISMATCH,
                "traveller.surname",
                f"typed name {typed_name!r} differs from the MRZ {read_name!r}",
            )
        )
    return checks


def resolve_identity(request: RegistrationRequest, today: date) -> ResolvedIdentity:
    """Merge the raw MRZ and typed data; typed data wins, differences become checks."""
    mrz = _parse_mrz_or_refuse(request.mrz, today) if request.mrz else None
    if request.document is None and mrz is None:
        raise Problem(
            422,
            "Document missing",
            field="document",
            detail="give the document data or the raw MRZ",
        )
    if request.traveller is None and mrz is None:
        raise Problem(
            422,
            "Traveller missing",
            field="traveller",
            detail="give the traveller data or the raw MRZ",
        )
    document = request.document or _document_from_mrz(mrz)  # type: ignore[arg-type]
    traveller = request.traveller or _traveller_from_mrz(mrz)  # type: ignore[arg-type]
    checks: list[Check] = []
    if mrz is not None:
        checks += [c for c in _mrz_checks(mrz) if c.code != "mrz_document_expired"]
        checks += _mrz_vs_typed(mrz, document, traveller)
    checks += _validity_checks(document, today)
    return ResolvedIdentity(document, traveller, mrz, tuple(checks))


def _validity_checks(doc: DocumentInput, today: date) -> list[Check]:
    checks: list[Check] = []
    if doc.expiry_date and doc.expiry_date < today:
        checks.append(
            Check(
                "document_expired",
                "document.expiry_date",
                f"the document expired on {doc.expiry_date.isoformat()}",
            )
        )
    if doc.issue_date and doc.issue_date > today:
        checks.append(
            Check(
                "document_not_yet_valid",
                "document.issue_date",
                f"the document is only valid from {doc.issue_date.isoformat()}",
            )
        )
    if doc.expiry_date and doc.issue_date and doc.expiry_date <= doc.issue_date:
        checks.append(
            Check(
                "document_dates_inconsistent",
                "document.expiry_date",
                "the expiry date is not after the issue date",
            )
        )
    return checks


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _occurred_at(request: RegistrationRequest) -> datetime:
    now = utcnow()
    if request.occurred_at is None:
        return now
    when = request.occurred_at
    if when.tzinfo is None:
        raise Problem(422, "Invalid time", field="occurred_at", detail="give a time zone offset")
    if when > now + MAX_CLOCK_SKEW or when < now - MAX_BACKDATE:
        raise Problem(
            422,
            "Invalid time",
            field="occurred_at",
            detail="a crossing may be back-dated by at most 7 days and never future-dated",
        )
    return when.astimezone(UTC)


async def traveller_crossings(session: AsyncSession, traveller_id: uuid.UUID) -> list[Crossing]:
    """Current versions of a traveller's crossings, oldest first."""
    query = (
        select(Crossing)
        .where(col(Crossing.traveller_id) == traveller_id, current_version_filter())
        .order_by(col(Crossing.occurred_at))
    )
    return list((await session.scalars(query)).all())


class CrossingFacts(Protocol):
    """What stays are computed from: a crossing, or a row of just these columns."""

    @property
    def occurred_at(self) -> datetime: ...
    @property
    def direction(self) -> str: ...
    @property
    def decision(self) -> str: ...


Facts = TypeVar("Facts", bound=CrossingFacts)


def past_stays(history: Sequence[CrossingFacts], zone: Any) -> list[tuple[date, date | None]]:
    """Pair entries with the exits that follow them, as local dates."""
    return pair_stays((c.occurred_at.astimezone(zone).date(), c.direction) for c in history)


def allowed_until_of(
    rules: StayRules,
    zone: Any,
    nationality: str,
    entry: CrossingFacts,
    history: Sequence[CrossingFacts],
) -> date | None:
    """The limit of the stay ``entry`` opened, under ``rules`` (the rules in force when it
    is read), from the traveller's crossings before it in ``history``."""
    before = [c for c in admitted(history) if c.occurred_at < entry.occurred_at]
    day = entry.occurred_at.astimezone(zone).date()
    return stay_limit(rules, nationality, day, past_stays(before, zone))


REFUSED = "refused"


def admitted(history: Sequence[Facts]) -> list[Facts]:
    """The crossings that happened: a refused entry let nobody in, a refused exit let
    nobody out, so neither opens nor closes a stay."""
    return [c for c in history if c.decision != REFUSED]


def open_entry_of(history: list[Crossing]) -> Crossing | None:
    """The latest entry with no exit after it."""
    latest_entry = None
    for crossing in history:
        latest_entry = crossing if crossing.direction == "entry" else None
    return latest_entry


@dataclass(frozen=True)
class StayOutcome:
    allowed_until: date | None
    closes: uuid.UUID | None
    overstay: int | None
    checks: tuple[Check, ...]


def compute_stay(
    node: Node,
    direction: str,
    nationality: str,
    history: list[Crossing],
    when: datetime,
    decision: str | None = None,
) -> StayOutcome:
    """Entry: how long the traveller may stay. Exit: which stay it closes, and any overstay.
    A refused crossing opens and closes nothing; refused crossings in ``history`` count for
    nothing (``admitted``). ``decision`` None: not decided yet (the desk's check)."""
    if decision == REFUSED:
        return StayOutcome(None, None, None, ())
    history = admitted(history)
    zone = node.settings.zone
    day = when.astimezone(zone).date()
    open_entry = open_entry_of(history)
    if direction == "entry":
        checks: list[Check] = []
        if open_entry is not None:
            checks.append(
                Check(
                    "previous_entry_not_closed",
                    "direction",
                    "the traveller's previous entry has no recorded exit",
                )
            )
        rule = node.stay_rules.rule_for(nationality)
        allowance = allowed_stay_until(day, past_stays(history, zone), rule)
        if allowance.exhausted:
            checks.append(
                Check(
                    "stay_allowance_used",
                    "direction",
                    "the traveller has no days left under the allowed-stay rule",
                )
            )
        return StayOutcome(allowance.allowed_until, None, None, tuple(checks))
    if open_entry is None and node.stay_rules.is_citizen(nationality):
        return StayOutcome(None, None, None, ())  # a citizen needs no recorded entry to leave
    if open_entry is None:
        return StayOutcome(
            None,
            None,
            None,
            (
                Check(
                    "exit_without_entry",
                    "direction",
                    "no open entry is recorded for this traveller",
                ),
            ),
        )
    until = allowed_until_of(node.stay_rules, zone, nationality, open_entry, history)
    over = overstay_days(until, day)
    overstay = (Check("overstay", "direction", f"overstayed by {over} day(s)"),) if over > 0 else ()
    return StayOutcome(None, open_entry.id, over, overstay)


def minor_checks(request: RegistrationRequest, person: TravellerInput, today: date) -> list[Check]:
    """A minor needs a linked guardian; a birth date cannot be in the future."""
    if person.date_of_birth is None:
        return []
    if person.date_of_birth > today:
        return [
            Check(
                "birth_date_in_future",
                "traveller.date_of_birth",
                "the date of birth is in the future",
            )
        ]
    if age_on(person.date_of_birth, today) < ADULT_AGE and request.guardian_crossing_id is None:
        return [
            Check(
                "minor_without_guardian",
                "guardian_crossing_id",
                "the traveller is a minor and no guardian is linked",
            )
        ]
    return []


def sign_crossing_receipt(node: Node, crossing: Crossing, document: TravelDocument) -> str:
    claims = ReceiptClaims(
        version=1,
        crossing_id=crossing.id,
        node_code=node.settings.node_code,
        direction=crossing.direction,
        occurred_at=crossing.occurred_at.replace(microsecond=0),
        document_hash=document_hash(
            document.issuing_state, document.number_norm, key=node.receipt_binding_key
        ),
    )
    return sign_receipt(claims, node.signing_key)


@dataclass(frozen=True)
class PreparedRegistration:
    """Everything about one registration that needs no database: validated and checked."""

    crossing_id: uuid.UUID
    officer: Officer
    request: RegistrationRequest
    identity: ResolvedIdentity
    occurred_at: datetime
    local_day: date
    number_norm: str
    checks: tuple[Check, ...]
    photo: AnalysedPhoto | None
    hits: tuple[WatchlistHit, ...] = ()
    quality_override: str | None = None
    idempotency_key: str | None = None  # stored with the crossing (registry.idempotency)

    @property
    def document_key(self) -> tuple[str, str]:
        return (self.identity.document.issuing_state, self.number_norm)

    @property
    def linked_crossings(self) -> list[uuid.UUID]:
        linked = list(self.request.companions)
        if self.request.guardian_crossing_id is not None:
            linked.append(self.request.guardian_crossing_id)
        return linked


def _photo_checks(request: RegistrationRequest, photo: AnalysedPhoto | None) -> list[Check]:
    """A portrait that fails the quality gate is refused unless the officer overrides it."""
    if photo is None or photo.quality_passed:
        return []
    if request.photo_quality_override is None:
        raise Problem(
            422,
            "Photo refused by the quality gate",
            field="photo",
            detail=f"{photo.refusal or 'quality too low'} (score "
            f"{photo.quality_score}); retake it or give photo_quality_override",
        )
    return [
        Check(
            "photo_quality_override",
            "photo",
            f"officer override ({request.photo_quality_override}); gate said: "
            f"{photo.refusal or 'quality too low'}",
        )
    ]


def _refuse_unacknowledged_name_mismatch(
    request: RegistrationRequest, checks: tuple[Check, ...]
) -> None:
    """A typed name that differs materially from the MRZ name registers only once the officer
    has acknowledged it (``name_mismatch_acknowledged``); the warning is stored either way."""
    mismatch = next((check for check in checks if check.code == NAME_MISMATCH), None)
    if mismatch is not None and not request.name_mismatch_acknowledged:
        raise Problem(
            422,
            "Typed name differs from the MRZ",
            field="name_mismatch_acknowledged",
            detail=f"{mismatch.message}; check the document, then confirm with "
            "name_mismatch_acknowledged: true",
        )


def prepare_registration(
    node: Node, officer: Officer, request: RegistrationRequest, photo: AnalysedPhoto | None
) -> PreparedRegistration:
    """Validate and check a registration; raises Problem for input that cannot be registered."""
    when = _occurred_at(request)
    today = when.astimezone(node.settings.zone).date()
    identity = resolve_identity(request, today)
    number_norm = normalise_document_number(identity.document.number)
    if not number_norm:
        raise Problem(
            422,
            "Invalid document number",
            field="document.number",
            detail="the document number has no letters or digits",
        )
    _refuse_unacknowledged_name_mismatch(request, identity.checks)
    checks = identity.checks + tuple(minor_checks(request, identity.traveller, today))
    checks += tuple(_photo_checks(request, photo))
    hits = node.watchlists.match_traveller(
        day=today,
        probe=traveller_probe(identity.document, identity.traveller, identity.mrz),
        face_encoding=photo.template if photo is not None else None,
        templates=photo.modality_templates if photo is not None else None,
    )
    override = request.photo_quality_override if photo and not photo.quality_passed else None
    return PreparedRegistration(
        uuid7(),
        officer,
        request,
        identity,
        when,
        today,
        number_norm,
        checks,
        photo,
        tuple(hits),
        override,
    )


@dataclass(frozen=True)
class Registration:
    """What the registration flow produced."""

    crossing: Crossing
    traveller: Traveller
    document: TravelDocument
    photo: Photo | None
    alerts: tuple[Alert, ...] = ()
