"""Response schemas (msgspec) of the headquarters endpoints (``registry.hq.controller``): a
page of crossings across posts, a person's timeline with the records linked to it and their
evidence, stays across posts, and the statistics (their JSON form; the CSV form has the
same columns).

Each mirrors the dict the service builds (``registry.schemas.as_response``), fields in the
same order, so the JSON is unchanged. A crossing is the post's ``CrossingView`` and a
traveller its ``TravellerView``: headquarters shows the records the posts sent.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import msgspec

from registry.crossings.schemas import CrossingView, TravellerView
from registry.schemas import Evidence
from registry.vocabulary import Sex

Period = Literal["day", "week", "month"]
AgeBand = Literal["0-17", "18-29", "30-44", "45-59", "60+", "unknown"]


class CrossingPage(msgspec.Struct, kw_only=True):
    """One page of the crossings matching every filter, newest first."""

    items: list[CrossingView]
    limit: int
    offset: int
    has_more: bool


# ------------------------------------------------------------------ timeline
class DocumentEvidence(msgspec.Struct, kw_only=True, tag_field="kind", tag="document"):
    """The linked record holds a document with the same issuing state and number."""

    confidence: float
    issuing_state: str
    number: str


class FaceEvidence(msgspec.Struct, kw_only=True, tag_field="kind", tag="face"):
    """The closest face encodings of the two records are ``distance`` apart."""

    confidence: float
    distance: float


class NameDobEvidence(msgspec.Struct, kw_only=True, tag_field="kind", tag="name_dob"):
    """Same date of birth and a close name (``similarity``, 0-100)."""

    confidence: float
    similarity: float
    date_of_birth: date | None


LinkEvidence = DocumentEvidence | FaceEvidence | NameDobEvidence


class LinkedRecord(msgspec.Struct, kw_only=True):
    """A traveller record linked to the one asked about (never merged), with its evidence:
    document first, then face, then name and date of birth."""

    traveller: TravellerView
    confidence: float
    evidence: list[LinkEvidence]


class Timeline(msgspec.Struct, kw_only=True):
    """Every current crossing of a traveller and of the linked records, oldest first."""

    traveller: TravellerView
    linked: list[LinkedRecord]
    crossings: list[CrossingView]


# ------------------------------------------------------------------ stays
class CrossPostStay(CrossingView, kw_only=True):
    """An entry whose document has no later movement at any post: ``allowed_until`` by the
    rules in force (null when ``unlimited``) and the days overstayed on the day asked."""

    allowed_until: date | None
    allowed_until_source: Literal["computed", "unlimited"]
    days_overstayed: int


class StayPage(msgspec.Struct, kw_only=True):
    """One page of the open stays (or overstays) as of a day, oldest entry first."""

    as_of: date
    total: int
    limit: int
    offset: int
    items: list[CrossPostStay]


# ------------------------------------------------------------------ statistics
class FlowRow(msgspec.Struct, kw_only=True):
    """Movements at one post in one period (refused crossings apart; net = entries - exits)."""

    post: str
    period_start: date
    entries: int
    exits: int
    refused: int
    net: int


class NetFlowRow(msgspec.Struct, kw_only=True):
    """The net flow (entries - exits) at one post in one period."""

    post: str
    period_start: date
    net: int


class DemographicRow(msgspec.Struct, kw_only=True):
    """Movements of one nationality, sex and age band (age on the day of the crossing)."""

    nationality: str
    sex: Sex
    age_band: AgeBand
    entries: int
    exits: int
    refused: int


class AlertRow(msgspec.Struct, kw_only=True):
    """Alerts raised at one post on one kind of evidence, by outcome."""

    post: str
    evidence: Evidence
    raised: int
    confirmed: int
    dismissed: int
    pending: int


class FlowStatistic(msgspec.Struct, kw_only=True):
    """Entries, exits, refused and net flow per post and period (local days)."""

    statistic: Literal["flows"]
    date_from: date
    date_to: date
    period: Period
    post: str | None
    timezone: str
    columns: list[str]
    rows: list[FlowRow]


class NetFlowStatistic(msgspec.Struct, kw_only=True):
    """Net flow per post and period (local days)."""

    statistic: Literal["net_flow"]
    date_from: date
    date_to: date
    period: Period
    post: str | None
    timezone: str
    columns: list[str]
    rows: list[NetFlowRow]


class DemographicStatistic(msgspec.Struct, kw_only=True):
    """Movements by nationality, sex and age band."""

    statistic: Literal["demographics"]
    date_from: date
    date_to: date
    post: str | None
    timezone: str
    columns: list[str]
    rows: list[DemographicRow]


class AlertStatistic(msgspec.Struct, kw_only=True):
    """Alerts raised per post and evidence, with their outcome (by the alert's day)."""

    statistic: Literal["alerts"]
    date_from: date
    date_to: date
    post: str | None
    columns: list[str]
    rows: list[AlertRow]


Statistic = FlowStatistic | NetFlowStatistic | DemographicStatistic | AlertStatistic
