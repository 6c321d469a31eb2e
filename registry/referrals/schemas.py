"""Request and response schemas of the referrals slice (msgspec): a protection referral on a
crossing, and the steps of its case (follow-up notes, status, closing outcome); a referral as
protection reads it, and the desk's acknowledgement."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from registry.crossings.schemas import TravellerView
from registry.schemas import CleanText, IsoDateTime
from registry.text import paragraphs
from registry.vocabulary import Direction, ReferralCategory, ReferralOutcome, ReferralStatus

REFERRAL_NOTE = paragraphs(4000, min_length=1)


class ReferralCreate(CleanText, forbid_unknown_fields=True):
    category: ReferralCategory
    note: Annotated[str, Meta(min_length=1, max_length=4000), REFERRAL_NOTE]


class FollowUpCreate(CleanText, forbid_unknown_fields=True):
    """One step of a referral's case: a note, the status it leaves the case in, and the
    outcome when it closes the case (required then, refused otherwise)."""

    status: ReferralStatus
    note: Annotated[str, Meta(min_length=1, max_length=4000), REFERRAL_NOTE]
    outcome: ReferralOutcome | None = None


class ReferralAcknowledgement(msgspec.Struct, kw_only=True):
    """What the front desk learns of the referral it made: that it was made, nothing of it."""

    referral_id: uuid.UUID
    crossing_id: uuid.UUID
    status: Literal["referred to the protection officer"]


class OfficerBrief(msgspec.Struct, kw_only=True):
    """The officer who reported a referral or added a step to its case."""

    id: uuid.UUID
    username: str
    full_name: str


class FollowUpView(msgspec.Struct, kw_only=True):
    """One step of a referral's case (``service.follow_up_view``)."""

    id: uuid.UUID
    status: ReferralStatus
    note: str
    outcome: ReferralOutcome | None
    officer: OfficerBrief | None
    created_at: IsoDateTime


class ReferralView(msgspec.Struct, kw_only=True):
    """A referral as protection reads it (``service.referral_view``): the case's status is
    its latest step's (``open`` before any); ``outcome`` and ``closed_at`` come from the
    step that closed it."""

    id: uuid.UUID
    category: ReferralCategory
    note: str
    created_by: uuid.UUID
    reporting_officer: OfficerBrief | None
    status: ReferralStatus
    outcome: ReferralOutcome | None
    closed_at: IsoDateTime | None
    follow_ups: list[FollowUpView]
    created_at: IsoDateTime
    crossing_id: uuid.UUID
    post: str
    direction: Direction
    occurred_at: IsoDateTime
    traveller: TravellerView | None
