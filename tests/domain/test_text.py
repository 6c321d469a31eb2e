"""registry.text: what clean text refuses, what it stores, and a property test that any text
it accepts for a field fits every column it reaches (the field's own column and the derived
name key / number_norm), whatever the other name part is."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import schemas
from registry.crossings import schemas as crossing_schemas
from registry.models import (
    AlertAdjudication,
    Crossing,
    Officer,
    ProtectionReferral,
    TravelDocument,
    Traveller,
    WatchlistEntry,
)
from registry.names import name_key, normalise_document_number
from registry.officers import service as officers
from registry.referrals import schemas as referral_schemas
from registry.text import (
    CODES,
    TextRefused,
    TextRule,
    clean_text,
    paragraphs,
    parse_refusal,
    surname_rule,
    text_problem,
)
from registry.watchlists import schemas as watchlist_schemas


def column(model: type, name: str) -> int:
    length = model.__table__.c[name].type.length  # type: ignore[attr-defined]
    assert isinstance(length, int)
    return length


# every rule an entry point applies -> the columns its stored text reaches
FIELD_COLUMNS: list[tuple[str, TextRule, list[tuple[type, str]]]] = [
    ("surname", schemas.SURNAME, [(Traveller, "surname")]),
    ("given_names", schemas.GIVEN_NAMES, [(Traveller, "given_names")]),
    ("surname_ar", schemas.SURNAME_AR, [(Traveller, "surname_ar")]),
    ("given_names_ar", schemas.GIVEN_NAMES_AR, [(Traveller, "given_names_ar")]),
    ("document.number", schemas.DOCUMENT_NUMBER, [(TravelDocument, "number")]),
    ("vehicle_plate", crossing_schemas.VEHICLE_PLATE, [(Crossing, "vehicle_plate")]),
    ("purpose", crossing_schemas.PURPOSE, [(Crossing, "purpose")]),
    ("destination", crossing_schemas.DESTINATION, [(Crossing, "destination")]),
    ("remarks", crossing_schemas.REMARKS, [(Crossing, "remarks")]),
    ("reason", crossing_schemas.CORRECTION_REASON, [(Crossing, "correction_reason")]),
    ("note", referral_schemas.REFERRAL_NOTE, [(ProtectionReferral, "note")]),
    ("full_name", officers.FULL_NAME, [(Officer, "full_name")]),
    ("username", officers.USERNAME, [(Officer, "username")]),
    ("home_post", officers.HOME_POST, [(Officer, "home_post")]),
    ("watchlist.surname", watchlist_schemas.SURNAME, [(WatchlistEntry, "surname")]),
    ("watchlist.given_names", watchlist_schemas.GIVEN_NAMES, [(WatchlistEntry, "given_names")]),
    ("watchlist.reason", watchlist_schemas.LISTING_REASON, [(WatchlistEntry, "reason")]),
    (
        "watchlist.change_reason",
        watchlist_schemas.CHANGE_REASON,
        [(WatchlistEntry, "change_reason")],
    ),
    ("watchlist.source", watchlist_schemas.SOURCE, [(WatchlistEntry, "source")]),
    ("watchlist.external_id", watchlist_schemas.EXTERNAL_ID, [(WatchlistEntry, "external_id")]),
    (
        "watchlist.document_number",
        watchlist_schemas.DOCUMENT_NUMBER,
        [(WatchlistEntry, "document_number")],
    ),
    ("adjudication.reason", watchlist_schemas.ADJUDICATION_REASON, [(AlertAdjudication, "reason")]),
]

# Characters that matter: NFKC expanders (U+FDFA is 18 characters under NFKC, U+FB2C is 3 under
# NFC), controls, format characters, line breaks, Arabic, accents, ligatures, noncharacters.
HOSTILE = (
    "\ufdfa\ufdfb\ufb2c\u0344\u1d5e\u3392\u33af\ufb03\u00df\u00e6\u0153"
    "\x00\x01\x1f\x7f\x85\x9f\t\n\r\u2028\u2029"
    "\u200b\u200c\u200d\u200e\u202e\u2066\ufeff\u00ad"
    "\ufdd0\uffff\ue000"
    "\u0645\u062d\u0645\u062f\u062b\u062e\u0627\u0644\u0639\u0628\u062f"
    "\u0301\u0308eE aA-'<"
)
TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(HOSTILE), st.characters(codec="utf-8")),
    max_size=450,
)


def accepted(rule: TextRule, value: str) -> str | None:
    try:
        return clean_text(value, rule, "field")
    except TextRefused:
        return None


@pytest.mark.parametrize(
    ("field", "rule", "columns"), FIELD_COLUMNS, ids=[f[0] for f in FIELD_COLUMNS]
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=TEXT)
def test_accepted_text_fits_every_column_it_reaches(
    field: str, rule: TextRule, columns: list[tuple[type, str]], value: str
) -> None:
    cleaned = accepted(rule, value)
    if cleaned is None:
        return
    for model, name in columns:
        assert len(cleaned) <= column(model, name), (field, name)
    assert "\x00" not in cleaned
    assert unicodedata.is_normalized("NFC", cleaned)
    assert clean_text(cleaned, rule, field) == cleaned  # idempotent: stored text re-validates
    assert text_problem(cleaned, rule.max_length, kind=rule.kind) is None
    if field in ("document.number", "watchlist.document_number"):
        assert len(normalise_document_number(cleaned)) <= column(TravelDocument, "number_norm")
        assert len(normalise_document_number(cleaned)) <= column(WatchlistEntry, "number_norm")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(surname=TEXT, given_names=TEXT)
def test_any_accepted_name_parts_fit_the_name_key(surname: str, given_names: str) -> None:
    for surname_rule_, given_rule in (
        (schemas.SURNAME, schemas.GIVEN_NAMES),
        (watchlist_schemas.SURNAME, watchlist_schemas.GIVEN_NAMES),
    ):
        left, right = accepted(surname_rule_, surname), accepted(given_rule, given_names)
        if left is None or right is None:
            continue
        key = name_key(left, right)
        assert len(key) <= column(Traveller, "name_key")
        assert len(key) <= column(WatchlistEntry, "name_key")


def test_the_ligature_surname_is_refused_for_its_name_key() -> None:
    surname = "\ufdfa" * 30  # 30 characters, but 510 once keyed (NFKC)
    assert len(name_key(surname, "")) > column(Traveller, "name_key")
    with pytest.raises(TextRefused) as refused:
        clean_text(surname, schemas.SURNAME, "surname")
    assert refused.value.code == "derived_too_long" and refused.value.field == "surname"
    assert refused.value.derived == "name_key"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("x\x00y", "control_character"),
        ("Diallo\x1b[31m", "control_character"),
        ("Diallo\x85", "control_character"),
        ("Dia\nllo", "line_break"),
        ("Dia\u2028llo", "line_break"),
        ("Dia\u202ello", "format_character"),  # right-to-left override
        ("Dia\u2067llo", "format_character"),  # right-to-left isolate
        ("Dia\u200bllo", "format_character"),  # zero-width space
        ("Dia\u200cllo", "format_character"),  # zero-width non-joiner: not in names
        ("\ufeffDiallo", "format_character"),
        ("Dia\ud800llo", "surrogate"),
        ("Dia\ufdd0llo", "noncharacter"),
        ("Dia\U0010ffffllo", "noncharacter"),
        ("Dia\ue000llo", "private_use"),
        ("   ", "required"),
        ("D" * 121, "too_long"),
    ],
)
def test_names_refuse_hostile_characters(value: str, code: str) -> None:
    with pytest.raises(TextRefused) as refused:
        clean_text(value, schemas.SURNAME, "surname")
    assert refused.value.code == code
    assert refused.value.field == "surname"
    assert parse_refusal(str(refused.value)) == ("surname", code)
    assert code in CODES


def test_free_text_keeps_lines_tabs_and_the_zero_width_non_joiner_only() -> None:
    rule = paragraphs(100)
    cleaned = clean_text(" line 1\r\n\tline 2\rline 3 ", rule, "remarks")
    assert cleaned == "line 1\n\tline 2\nline 3"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ inside a Persian word
    assert clean_text(persian, rule, "remarks") == persian
    for hostile in ("\u200b", "\u200d", "\u200e", "\u202e", "\x00", "\u2028"):
        with pytest.raises(TextRefused):
            clean_text(f"a{hostile}b", rule, "remarks")


def test_lengths_are_checked_after_nfc() -> None:
    rule = surname_rule(10)
    decomposed = "e\u0301" * 10  # 20 characters as sent, 10 once composed
    assert clean_text(decomposed, rule, "surname") == "\u00e9" * 10
    expanding = "\ufb2c" * 4  # 4 characters as sent, 12 under NFC
    with pytest.raises(TextRefused) as refused:
        clean_text(expanding, rule, "surname")
    assert refused.value.code == "too_long"


def test_document_numbers_refuse_what_number_norm_cannot_hold() -> None:
    with pytest.raises(TextRefused) as refused:
        clean_text("\u00df" * 30, watchlist_schemas.DOCUMENT_NUMBER, "document_number")  # SS each
    assert refused.value.code == "derived_too_long" and refused.value.derived == "number_norm"


def test_cheap_predicate_for_received_text() -> None:
    assert text_problem("Ould Ahmed", 120) is None
    assert text_problem("x\x00y", 120) == "control_character"
    assert text_problem("x\u202ey", 120) == "format_character"
    assert text_problem("x" * 121, 120) == "too_long"
    assert text_problem("a\nb", 100, kind="paragraphs") is None
    assert text_problem("a\nb", 100) == "line_break"


def test_request_schemas_clean_after_decoding() -> None:
    from registry.problems import Problem

    body = (
        b'{"direction":"entry","traveller":{"surname":" Tour\\u0065\\u0301 ","nationality":"MLI"}}'
    )
    decoded = schemas.decode_as(body, crossing_schemas.RegistrationRequest)
    assert decoded.traveller is not None and decoded.traveller.surname == "Tour\u00e9"
    with pytest.raises(Problem) as problem:
        schemas.decode_as(
            b'{"direction":"entry","traveller":{"surname":"x\\u0000","nationality":"MLI"}}',
            crossing_schemas.RegistrationRequest,
        )
    param = problem.value.invalid_params[0]
    assert problem.value.status == 422
    assert param["name"] == "traveller.surname" and param["code"] == "control_character"
