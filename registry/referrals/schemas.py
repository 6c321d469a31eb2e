"""Request schemas of the referrals slice (msgspec): a protection referral on a crossing, and
the steps of its case (follow-up notes, status, closing outcome)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from registry.schemas import CleanText
from registry.text import paragraphs
from registry.vocabulary import ReferralCategory, ReferralOutcome, ReferralStatus

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
