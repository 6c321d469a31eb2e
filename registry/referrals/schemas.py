"""Request schema of the referrals slice (msgspec): a protection referral on a crossing."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from registry.schemas import CleanText
from registry.text import paragraphs

REFERRAL_NOTE = paragraphs(4000, min_length=1)
ReferralCategory = Literal[
    "trafficking_suspected", "unaccompanied_minor", "separated_minor", "other_vulnerability"
]


class ReferralCreate(CleanText, forbid_unknown_fields=True):
    category: ReferralCategory
    note: Annotated[str, Meta(min_length=1, max_length=4000), REFERRAL_NOTE]
