"""API boundary schemas (msgspec) shared by the slices: validated requests, separate from the
table models. Here: the clean-text base of every request schema (``CleanText``), country
codes, the document and traveller parts a registration and a watchlist match both read,
``decode_as``, and the pieces the response schemas share (``IsoDateTime``, ``as_response``).
Each slice keeps its own requests and responses in its ``schemas`` module
(``registry.crossings.schemas``, ``registry.officers.schemas``, ...)."""

from __future__ import annotations

import typing
from datetime import date
from functools import cache
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from registry.json_limits import check_json_depth
from registry.problems import Problem, field_from_message, text_refused_problem
from registry.text import (
    TextRefused,
    TextRule,
    clean_text,
    document_number_rule,
    given_names_rule,
    person_name,
    surname_rule,
)
from registry.vocabulary import Sex

CountryCode = Annotated[str, Meta(pattern=r"^[A-Z]{1,3}<{0,2}$", min_length=3, max_length=3)]
# Text fields carry their clean-text rule (registry.text) beside msgspec's own constraints;
# CleanText.__post_init__ applies it after decoding. msgspec's max_length is checked on the
# text as sent, the rule's on the text as stored (NFC, stripped) and on its derived forms.
SURNAME = surname_rule(120, min_length=1)
GIVEN_NAMES = given_names_rule(200)
SURNAME_AR = person_name(120)
GIVEN_NAMES_AR = person_name(200)
DOCUMENT_NUMBER = document_number_rule(20)
ShortText = Annotated[str, Meta(min_length=1, max_length=120), SURNAME]
# What matched the watchlist: an AlertEvidence code, or the entry-point name of the biometric
# modality whose plug-in matched (registry.modalities: any installed modality, so no enum)
Evidence = Annotated[
    str,
    Meta(
        max_length=40,
        description="document, name_dob, face, or the name of the biometric modality "
        "(plug-in of the borderpost.biometrics entry point) that matched",
    ),
]
T = TypeVar("T")

# A time in a response, as the views write it (``datetime.isoformat()``: ``+00:00``, not
# msgspec's ``Z``): typed as text so the JSON stays what it was, documented as date-time.
IsoDateTime = Annotated[
    str,
    Meta(extra_json_schema={"description": "ISO 8601 time", "extra": {"format": "date-time"}}),
]


def as_response(view: object, schema: type[T]) -> T:
    """A view (the plain dicts and lists the services build) as its response schema: the
    controllers return these, so the OpenAPI document shows every answer's shape. The JSON
    is the view's: same keys, values and nulls (``UNSET`` fields stand for keys a view
    leaves out)."""
    return msgspec.convert(view, schema)


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
    sex: Sex = Sex.X


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
