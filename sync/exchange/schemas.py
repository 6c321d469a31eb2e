"""Response schemas of the exchange room (msgspec): what the liaison endpoints
(``sync.exchange.liaison_controller``) and the partner's endpoints
(``sync.exchange.controller``) answer, so that /schema/openapi.json documents it. The
partner's answers are sent as the bytes ``sync.api.signed_json`` signed; these Structs
document them (``sync.api.signed_answer``).

Each Struct is encoded with its fields in the order given here, every field present (the
answers always carried every key, ``null`` included): the JSON on the wire is the one the
endpoints gave as plain dicts. Times stay the ISO text they were (``datetime.isoformat``,
``+00:00`` rather than msgspec's ``Z``).

``Reference`` is also read from requests (a liaison note, a partner's event); the other
request schemas stay beside the handlers that decode them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

ReferenceKind = Literal["crossing", "case"]
ID_PATTERN = r"\A[0-9A-Za-z][0-9A-Za-z-]{0,79}\Z"


class Reference(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A crossing of the case (ours or the partner's) or another case, by id."""

    kind: ReferenceKind
    id: Annotated[str, Meta(pattern=ID_PATTERN)]


# ------------------------------------------------------------------ hit/no-hit and details
class HitAnswer(msgspec.Struct):
    """The partner's answer to a hit/no-hit question, under the reference both sides keep."""

    hit: bool
    reference: str


class EvaluatedPoint(msgspec.Struct):
    """Our answer to the partner's blinded question: the point raised to our scalar, and
    how many more evaluations of that kind its budget allows today."""

    evaluated: str
    budget_left: int


class PartnerBatchAck(msgspec.Struct):
    """Our acknowledgement of a partner batch: the highest contiguous seq we hold, how many
    of its records we stored, and the double-blinded keys of each stored record (by record
    id, then ``record_type.field``)."""

    ack: int
    stored: int
    keys: dict[str, dict[str, str]]


class PartnerBatchRefusal(msgspec.Struct):
    """Our signed refusal (409) of a partner batch that does not follow what we hold:
    ``reason`` ``gap`` (records are missing before it) or ``replay`` (we hold it already,
    and ``keys`` gives the double-blinded keys of its records again); ``ack`` is the
    highest contiguous seq we hold, where the partner resumes."""

    ack: int
    reason: str
    keys: dict[str, dict[str, str]]


class RevocationAccepted(msgspec.Struct):
    """The partner's revocation notice, accepted: the agreement version it stops and how
    many of the partner's records were erased here."""

    revoked: bool
    agreement: str
    version: int
    erased: int


class DetailStatus(msgspec.Struct):
    """Where a request for the details behind a hit stands (the partner's answer):
    ``none``, ``pending``, ``approved`` or ``refused``."""

    reference: str
    status: str


class ReleasedDetails(msgspec.Struct):
    """The partner's answer about the details behind a hit: the records once approved
    (empty until then), as the partner released them."""

    reference: str
    status: str
    records: list[dict[str, Any]]


class DetailRequest(msgspec.Struct):
    """The partner's request for the details behind one of our answers, awaiting our
    decision."""

    reference: str
    kind: str
    hit: bool
    purpose: str | None
    created_at: str


class DetailDecision(msgspec.Struct):
    """Our decision on a partner's request: its status and how many records were released."""

    reference: str
    status: str
    released: int


# ------------------------------------------------------------------ reconciliation report
class ReportPeriod(msgspec.Struct):
    from_: str = msgspec.field(name="from")
    to: str


class ReportPair(msgspec.Struct):
    ours: str
    theirs: str


class ReportSettings(msgspec.Struct):
    window_seconds: int
    max_travel_time_seconds: int
    clock_skew_tolerance_seconds: int
    duplicate_interval_seconds: int


class ReportCrossings(msgspec.Struct):
    """Crossings reconciled on each side; ``out_of_scope`` only for the whole report."""

    ours: int
    theirs: int
    out_of_scope: int | None


class PairCrossings(msgspec.Struct):
    ours: int
    theirs: int


class PairFigures(msgspec.Struct):
    """One post pair's crossings, counts per outcome and match rate."""

    ours: str
    theirs: str
    crossings: PairCrossings
    counts: dict[str, int]
    match_rate: float | None


class ReportedDiscrepancy(msgspec.Struct):
    """A discrepancy the reconciliation found (``sync.reconcile.model.Discrepancy``)."""

    kind: str
    our_post: str
    their_post: str
    our_ids: list[str]
    their_ids: list[str]
    doc_pseudonym: str
    at: str
    fields: list[str]
    reason: str


class CaseSummary(msgspec.Struct):
    """A stored discrepancy case with its liaison status (``discrepancy_view``)."""

    id: str
    our_post: str
    their_post: str
    kind: str
    our_ids: list[str]
    their_ids: list[str]
    reason: str
    at: str
    status: str
    resolution: str | None
    notes: list[dict[str, Any]]


class PeriodReport(msgspec.Struct):
    """A reconciliation over a period (``sync.reconcile.report.period_report``): settings,
    counts, match rate, per-pair figures, the discrepancies and the open cases."""

    period: ReportPeriod | None
    as_of: str
    pair: ReportPair | None
    settings: ReportSettings
    crossings: ReportCrossings
    counts: dict[str, int]
    match_rate: float | None
    by_pair: list[PairFigures]
    discrepancies: list[ReportedDiscrepancy]
    open_discrepancies: list[CaseSummary]


# ------------------------------------------------------------------ cases
class CaseEvent(msgspec.Struct):
    """One event of a case's history: who (our officer, or only the partner's node) said
    what, and the resolution it gave, if any."""

    id: str
    at: str
    origin: str
    by: str | None
    resolution: str | None
    reasons: list[str]
    references: list[Reference]
    text: str | None


class CaseView(msgspec.Struct):
    """A case with its status, its full history and each side's latest resolution (two
    different ones: ``status`` is ``conflict``)."""

    id: str
    our_post: str
    their_post: str
    kind: str
    our_ids: list[str]
    their_ids: list[str]
    reason: str
    at: str
    status: str
    resolution: str | None
    notes: list[CaseEvent]
    positions: dict[str, str]


class CrossingBehindCase(msgspec.Struct):
    """The crossing behind a case: ours in full, or the partner's as it sent it."""

    side: Literal["ours", "theirs"]
    case: str
    crossing: dict[str, Any]
