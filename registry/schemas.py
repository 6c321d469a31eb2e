"""API boundary schemas (msgspec): validated requests, separate from the table models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import Meta

from registry.problems import Problem, field_from_message

CountryCode = Annotated[str, Meta(pattern=r"^[A-Z]{1,3}<{0,2}$", min_length=3, max_length=3)]
ShortText = Annotated[str, Meta(min_length=1, max_length=120)]
Direction = Literal["entry", "exit"]
Mode = Literal["foot", "car", "bus", "truck", "motorcycle", "animal", "boat", "other"]
Decision = Literal["cleared", "referred", "refused"]
Sex = Literal["M", "F", "X"]
Role = Literal["officer", "supervisor", "protection", "hq_analyst", "liaison", "admin"]
T = TypeVar("T")
ReferralCategory = Literal[
    "trafficking_suspected", "unaccompanied_minor", "separated_minor", "other_vulnerability"
]


class DocumentInput(msgspec.Struct, forbid_unknown_fields=True):
    issuing_state: CountryCode
    number: Annotated[str, Meta(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9 <\-]+$")]
    document_type: Annotated[str, Meta(pattern=r"^[A-Z][A-Z<]?$")] = "P"
    expiry_date: date | None = None
    issue_date: date | None = None


class TravellerInput(msgspec.Struct, forbid_unknown_fields=True):
    surname: ShortText
    nationality: CountryCode
    given_names: Annotated[str, Meta(max_length=200)] = ""
    surname_ar: Annotated[str, Meta(max_length=120)] | None = None
    given_names_ar: Annotated[str, Meta(max_length=200)] | None = None
    date_of_birth: date | None = None
    sex: Sex = "X"


class RegistrationRequest(msgspec.Struct, forbid_unknown_fields=True):
    """One crossing: the document (typed and/or raw MRZ), the traveller and the context."""

    direction: Direction
    mode: Mode = "foot"
    decision: Decision = "cleared"
    mrz: Annotated[str, Meta(min_length=1, max_length=300)] | None = None
    document: DocumentInput | None = None
    traveller: TravellerInput | None = None
    vehicle_plate: Annotated[str, Meta(max_length=20)] | None = None
    purpose: Annotated[str, Meta(max_length=40)] | None = None
    destination: Annotated[str, Meta(max_length=120)] | None = None
    remarks: Annotated[str, Meta(max_length=2000)] | None = None
    guardian_crossing_id: uuid.UUID | None = None
    companions: Annotated[list[uuid.UUID], Meta(max_length=30)] = []
    occurred_at: datetime | None = None
    photo_quality_override: Annotated[str, Meta(min_length=3, max_length=300)] | None = None


class CorrectionRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Fields a superseding version may change, with the reason for the correction."""

    reason: Annotated[str, Meta(min_length=3, max_length=500)]
    decision: Decision | None = None
    mode: Mode | None = None
    direction: Direction | None = None
    vehicle_plate: Annotated[str, Meta(max_length=20)] | None = None
    purpose: Annotated[str, Meta(max_length=40)] | None = None
    destination: Annotated[str, Meta(max_length=120)] | None = None
    remarks: Annotated[str, Meta(max_length=2000)] | None = None


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, Meta(min_length=1, max_length=64)]
    password: Annotated[str, Meta(min_length=1, max_length=200)]


class OfficerCreate(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, Meta(pattern=r"^[a-z0-9._-]{3,64}$")]
    full_name: Annotated[str, Meta(min_length=1, max_length=200)]
    role: Role
    password: Annotated[str, Meta(min_length=10, max_length=200)]
    home_post: Annotated[str, Meta(pattern=r"^[A-Z]{2}-[A-Z0-9-]{2,28}$")] | None = None
    language: Literal["fr", "ar", "en"] = "fr"


class ReferralCreate(msgspec.Struct, forbid_unknown_fields=True):
    category: ReferralCategory
    note: Annotated[str, Meta(min_length=1, max_length=4000)]


class ReceiptVerifyRequest(msgspec.Struct, forbid_unknown_fields=True):
    payload: Annotated[str, Meta(min_length=4, max_length=400)]


def decode_as(raw: bytes | str, schema: type[T], *, field_prefix: str = "") -> T:
    """Decode JSON into a schema, turning msgspec's errors into a Problem naming the field."""
    try:
        return msgspec.json.decode(raw, type=schema)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = field_from_message(message)
        name = f"{field_prefix}{field}" if field else (field_prefix.rstrip(".") or "body")
        raise Problem(422, "Invalid request", field=name, detail=message) from exc
    except msgspec.DecodeError as exc:
        name = field_prefix.rstrip(".") or "body"
        raise Problem(400, "Malformed JSON", field=name, detail=str(exc)) from exc
