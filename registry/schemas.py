"""API boundary schemas (msgspec): validated requests, separate from the table models."""

from __future__ import annotations

import typing
import uuid
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from registry.json_limits import check_json_depth
from registry.problems import Problem, field_from_message, text_refused_problem
from registry.text import (
    TextRefused,
    TextRule,
    clean_text,
    document_number_rule,
    free_line,
    given_names_rule,
    identifier,
    paragraphs,
    person_name,
    surname_rule,
)

CountryCode = Annotated[str, Meta(pattern=r"^[A-Z]{1,3}<{0,2}$", min_length=3, max_length=3)]
# Text fields carry their clean-text rule (registry.text) beside msgspec's own constraints;
# CleanText.__post_init__ applies it after decoding. msgspec's max_length is checked on the
# text as sent, the rule's on the text as stored (NFC, stripped) and on its derived forms.
SURNAME = surname_rule(120, min_length=1)
GIVEN_NAMES = given_names_rule(200)
SURNAME_AR = person_name(120)
GIVEN_NAMES_AR = person_name(200)
FULL_NAME = person_name(200, min_length=1)
USERNAME = identifier(64, min_length=1)
DOCUMENT_NUMBER = document_number_rule(20)
MRZ_TEXT = paragraphs(300, min_length=1)
VEHICLE_PLATE = free_line(20)
PURPOSE = free_line(40)
DESTINATION = free_line(120)
REMARKS = paragraphs(2000)
OVERRIDE_REASON = free_line(300, min_length=3)
CORRECTION_REASON = paragraphs(500, min_length=3)
REFERRAL_NOTE = paragraphs(4000, min_length=1)
ShortText = Annotated[str, Meta(min_length=1, max_length=120), SURNAME]
Direction = Literal["entry", "exit"]
Mode = Literal["foot", "car", "bus", "truck", "motorcycle", "animal", "boat", "other"]
Decision = Literal["cleared", "referred", "refused"]
Sex = Literal["M", "F", "X"]
Role = Literal["officer", "supervisor", "protection", "hq_analyst", "liaison", "admin"]
T = TypeVar("T")
ReferralCategory = Literal[
    "trafficking_suspected", "unaccompanied_minor", "separated_minor", "other_vulnerability"
]


@cache
def _text_rules(schema: type[Any]) -> tuple[tuple[str, TextRule], ...]:
    """The (field, rule) pairs of a schema: the TextRule found in each field's annotation."""
    rules = []
    for name, hint in typing.get_type_hints(schema, include_extras=True).items():
        options = typing.get_args(hint) if typing.get_origin(hint) is not Annotated else (hint,)
        for option in options or (hint,):
            if typing.get_origin(option) is Annotated:
                found = [m for m in option.__metadata__ if isinstance(m, TextRule)]
                if found:
                    rules.append((name, found[0]))
                    break
    return tuple(rules)


class CleanText(msgspec.Struct):
    """Base of every request schema: after decoding, each text field whose annotation holds a
    ``TextRule`` goes through ``registry.text.clean_text`` (stored form: NFC, stripped) or
    the decoding fails naming the field (``registry.problems`` makes it a 4xx problem)."""

    def __post_init__(self) -> None:
        for name, rule in _text_rules(type(self)):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, clean_text(value, rule, name))


class DocumentInput(CleanText, forbid_unknown_fields=True):
    issuing_state: CountryCode
    number: Annotated[
        str, Meta(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9 <\-]+$"), DOCUMENT_NUMBER
    ]
    document_type: Annotated[str, Meta(pattern=r"^[A-Z][A-Z<]?$")] = "P"
    expiry_date: date | None = None
    issue_date: date | None = None


class TravellerInput(CleanText, forbid_unknown_fields=True):
    surname: ShortText
    nationality: CountryCode
    given_names: Annotated[str, Meta(max_length=200), GIVEN_NAMES] = ""
    surname_ar: Annotated[str, Meta(max_length=120), SURNAME_AR] | None = None
    given_names_ar: Annotated[str, Meta(max_length=200), GIVEN_NAMES_AR] | None = None
    date_of_birth: date | None = None
    sex: Sex = "X"


class RegistrationRequest(CleanText, forbid_unknown_fields=True):
    """One crossing: the document (typed and/or raw MRZ), the traveller and the context."""

    direction: Direction
    mode: Mode = "foot"
    decision: Decision = "cleared"
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


class LoginRequest(CleanText, forbid_unknown_fields=True):
    """The username is cleaned before anything else sees it: a refused one is never audited.
    The password is never cleaned (it is only hashed and compared)."""

    username: Annotated[str, Meta(min_length=1, max_length=64), USERNAME]
    password: Annotated[str, Meta(min_length=1, max_length=200)]


class OfficerCreate(CleanText, forbid_unknown_fields=True):
    username: Annotated[str, Meta(pattern=r"^[a-z0-9._-]{3,64}$"), USERNAME]
    full_name: Annotated[str, Meta(min_length=1, max_length=200), FULL_NAME]
    role: Role
    password: Annotated[str, Meta(min_length=10, max_length=200)]
    home_post: Annotated[str, Meta(pattern=r"^[A-Z]{2}-[A-Z0-9-]{2,28}$")] | None = None
    language: Literal["fr", "ar", "en"] = "fr"


class ReferralCreate(CleanText, forbid_unknown_fields=True):
    category: ReferralCategory
    note: Annotated[str, Meta(min_length=1, max_length=4000), REFERRAL_NOTE]


class ReceiptVerifyRequest(msgspec.Struct, forbid_unknown_fields=True):
    payload: Annotated[str, Meta(min_length=4, max_length=400)]


def decode_as(raw: bytes | str, schema: type[T], *, field_prefix: str = "") -> T:
    """Decode JSON into a schema, turning msgspec's errors into a Problem naming the field."""
    check_json_depth(raw, field=field_prefix.rstrip(".") or "body")
    try:
        return msgspec.json.decode(raw, type=schema)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if isinstance(exc.__cause__, TextRefused):
            name = f"{field_prefix}{field_from_message(message)}"
            raise text_refused_problem(exc.__cause__, name) from exc
        field = field_from_message(message)
        name = f"{field_prefix}{field}" if field else (field_prefix.rstrip(".") or "body")
        raise Problem(422, "Invalid request", field=name, detail=message) from exc
    except msgspec.DecodeError as exc:
        name = field_prefix.rstrip(".") or "body"
        raise Problem(400, "Malformed JSON", field=name, detail=str(exc)) from exc
