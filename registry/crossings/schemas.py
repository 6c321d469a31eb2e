"""Request schemas of the crossings slice (msgspec): a registration and a correction.

The document and traveller parts (``DocumentInput``, ``TravellerInput``) stay in
``registry.schemas``: the watchlists match a traveller on them too.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from msgspec import Meta

from registry.schemas import CleanText, DocumentInput, TravellerInput
from registry.text import free_line, paragraphs
from registry.vocabulary import Decision, Direction, Mode

MRZ_TEXT = paragraphs(300, min_length=1)
VEHICLE_PLATE = free_line(20)
PURPOSE = free_line(40)
DESTINATION = free_line(120)
REMARKS = paragraphs(2000)
OVERRIDE_REASON = free_line(300, min_length=3)
CORRECTION_REASON = paragraphs(500, min_length=3)


class RegistrationRequest(CleanText, forbid_unknown_fields=True):
    """One crossing: the document (typed and/or raw MRZ), the traveller and the context."""

    direction: Direction
    mode: Mode = Mode.FOOT
    decision: Decision = Decision.CLEARED
    mrz: Annotated[str, Meta(min_length=1, max_length=300), MRZ_TEXT] | None = None
    document: DocumentInput | None = None
    traveller: TravellerInput | None = None
    vehicle_plate: Annotated[str, Meta(max_length=20), VEHICLE_PLATE] | None = None
    purpose: Annotated[str, Meta(max_length=40), PURPOSE] | None = None
    destination: Annotated[str, Meta(max_length=120), DESTINATION] | None = None
    remarks: Annotated[str, Meta(max_length=2000), REMARKS] | None = None
    guardian_crossing_id: uuid.UUID | None = None
    companions: Annotated[list[uuid.UUID], Meta(max_length=30)] = []
    occurred_at: datetime | None = None
    photo_quality_override: (
        Annotated[str, Meta(min_length=3, max_length=300), OVERRIDE_REASON] | None
    ) = None
    # The officer confirms a typed name that differs from the MRZ (registration check
    # "name_mismatch"); without it such a registration is refused with 422.
    name_mismatch_acknowledged: bool = False


class CorrectionRequest(CleanText, forbid_unknown_fields=True):
    """Fields a superseding version may change, with the reason for the correction."""

    reason: Annotated[str, Meta(min_length=3, max_length=500), CORRECTION_REASON]
    decision: Decision | None = None
    mode: Mode | None = None
    direction: Direction | None = None
    vehicle_plate: Annotated[str, Meta(max_length=20), VEHICLE_PLATE] | None = None
    purpose: Annotated[str, Meta(max_length=40), PURPOSE] | None = None
    destination: Annotated[str, Meta(max_length=120), DESTINATION] | None = None
    remarks: Annotated[str, Meta(max_length=2000), REMARKS] | None = None
