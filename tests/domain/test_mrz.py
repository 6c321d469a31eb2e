"""Tests for registry.mrz: ICAO Doc 9303 specimens, every check digit, layout errors, input
normalisation, field validation, century inference and hypothesis round-trip properties."""

from __future__ import annotations

import json
import string
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.mrz import (
    COUNTRY_CODES,
    MRZ_ALPHABET,
    MrzProblem,
    MrzResult,
    build_mrva,
    build_mrvb,
    build_td1,
    build_td2,
    build_td3,
    check_digit,
    normalise_mrz_input,
    parse_mrz,
)

SPECIMEN_TODAY = date(2010, 1, 1)
# The Doc 9303 Part 7 visa specimens expire on 1996-12-10.
VISA_SPECIMEN_TODAY = date(1995, 1, 1)

TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)
TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
)
TD2 = (
    "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
    "D231458907UTO7408122F1204159<<<<<<<6",
)
MRVA = (
    "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L8988901C4XXX4009078F96121096ZE184226B<<<<<<",
)
MRVB = (
    "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
    "L8988901C4XXX4009078F9612109<<<<<<<<",
)
# Doc 9303 Parts 5 and 6: document number D23145890734 (longer than 9 characters).
TD1_LONG = (
    "I<UTOD23145890<7349<<<<<<<<<<<",
    "3407127M9507122UTO<<<<<<<<<<<2",
    "STEVENSON<<PETER<JOHN<<<<<<<<<",
)
TD2_LONG = (
    "I<UTOSTEVENSON<<PETER<JOHN<<<<<<<<<<",
    "D23145890<UTO3407127M95071227349<<<8",
)
LONG_TODAY = date(1994, 1, 1)

SPECIMENS = {
    "TD3": (TD3, SPECIMEN_TODAY),
    "TD1": (TD1, SPECIMEN_TODAY),
    "TD2": (TD2, SPECIMEN_TODAY),
    "MRVA": (MRVA, VISA_SPECIMEN_TODAY),
    "MRVB": (MRVB, VISA_SPECIMEN_TODAY),
    "TD1_LONG": (TD1_LONG, LONG_TODAY),
    "TD2_LONG": (TD2_LONG, LONG_TODAY),
}

UPPER = string.ascii_uppercase
ALNUM = string.ascii_uppercase + string.digits
ALPHABET = "".join(sorted(MRZ_ALPHABET))


def mrz(lines: tuple[str, ...] | list[str]) -> str:
    return "\n".join(lines)


def problem_keys(result: MrzResult) -> list[tuple[str, str]]:
    return [(problem.code, problem.field) for problem in result.problems]


def substitute(lines: tuple[str, ...], line: int, position: int, text: str) -> tuple[str, ...]:
    changed = list(lines)
    changed[line] = changed[line][:position] + text + changed[line][position + len(text) :]
    return tuple(changed)


def data_fields(result: MrzResult) -> MrzResult:
    """The result without its raw lines and problems: what the document says."""
    return replace(result, lines=(), problems=())


def with_check(value: str) -> str:
    return value + str(check_digit(value))


def raw_td3(
    *,
    number: str = "L898902C3",
    nationality: str = "UTO",
    birth: str = "740812",
    sex: str = "F",
    expiry: str = "120415",
    personal: str = "ZE184226B",
    issuing_state: str = "UTO",
    name: str = "ERIKSSON<<ANNA<MARIA",
) -> str:
    """A TD3 MRZ from raw field text with correct check digits (even for nonsense fields)."""
    personal = personal.ljust(14, "<")
    line2 = (
        with_check(number.ljust(9, "<"))
        + nationality
        + with_check(birth)
        + sex
        + with_check(expiry)
        + with_check(personal)
    )
    line2 = with_check(line2)
    composite = line2[0:10] + line2[13:20] + line2[21:43]
    line2 = line2[:43] + str(check_digit(composite))
    line1 = ("P<" + issuing_state + name).ljust(44, "<")
    return mrz((line1, line2))


# ------------------------------------------------------------------------------ check digit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("L898902C3", 6),
        ("740812", 2),
        ("120415", 9),
        ("ZE184226B<<<<<", 1),
        ("D23145890734", 9),
        ("<<<<<<", 0),
        ("", 0),
        ("A", 0),
        ("Z", 5),
    ],
)
def test_check_digit(value: str, expected: int) -> None:
    assert check_digit(value) == expected


@pytest.mark.parametrize("value", ["abc", "12-3", "Ä", " "])
def test_check_digit_rejects_non_mrz_characters(value: str) -> None:
    with pytest.raises(ValueError):
        check_digit(value)


# -------------------------------------------------------------------------------- specimens


def test_td3_specimen() -> None:
    result = parse_mrz(mrz(TD3), today=SPECIMEN_TODAY)
    assert result.problems == ()
    assert result.valid
    assert result.format == "TD3"
    assert result.document_code == "P"
    assert result.issuing_state == "UTO"
    assert result.surname == "ERIKSSON"
    assert result.given_names == "ANNA MARIA"
    assert result.document_number == "L898902C3"
    assert result.nationality == "UTO"
    assert result.date_of_birth == date(1974, 8, 12)
    assert result.sex == "F"
    assert result.expiry_date == date(2012, 4, 15)
    assert result.optional_data == "ZE184226B"
    assert result.optional_data_2 == ""
    assert result.lines == TD3


def test_td1_specimen() -> None:
    result = parse_mrz(mrz(TD1), today=SPECIMEN_TODAY)
    assert result.problems == ()
    assert result.format == "TD1"
    assert result.document_code == "I"
    assert result.issuing_state == "UTO"
    assert result.surname == "ERIKSSON"
    assert result.given_names == "ANNA MARIA"
    assert result.document_number == "D23145890"
    assert result.nationality == "UTO"
    assert result.date_of_birth == date(1974, 8, 12)
    assert result.sex == "F"
    assert result.expiry_date == date(2012, 4, 15)
    assert result.optional_data == ""
    assert result.optional_data_2 == ""
    assert result.lines == TD1


def test_td2_specimen() -> None:
    result = parse_mrz(mrz(TD2), today=SPECIMEN_TODAY)
    assert result.problems == ()
    assert result.format == "TD2"
    assert result.document_code == "I"
    assert result.issuing_state == "UTO"
    assert result.surname == "ERIKSSON"
    assert result.given_names == "ANNA MARIA"
    assert result.document_number == "D23145890"
    assert result.nationality == "UTO"
    assert result.date_of_birth == date(1974, 8, 12)
    assert result.sex == "F"
    assert result.expiry_date == date(2012, 4, 15)
    assert result.optional_data == ""
    assert result.optional_data_2 == ""
    assert result.lines == TD2


def test_mrva_specimen() -> None:
    result = parse_mrz(mrz(MRVA), today=VISA_SPECIMEN_TODAY)
    assert result.problems == ()
    assert result.format == "MRVA"
    assert result.document_code == "V"
    assert result.issuing_state == "UTO"
    assert result.surname == "ERIKSSON"
    assert result.given_names == "ANNA MARIA"
    assert result.document_number == "L8988901C"
    assert result.nationality == "XXX"
    assert result.date_of_birth == date(1940, 9, 7)
    assert result.sex == "F"
    assert result.expiry_date == date(1996, 12, 10)
    assert result.optional_data == "6ZE184226B"
    assert result.optional_data_2 == ""
    assert result.lines == MRVA


def test_mrvb_specimen() -> None:
    result = parse_mrz(mrz(MRVB), today=VISA_SPECIMEN_TODAY)
    assert result.problems == ()
    assert result.format == "MRVB"
    assert result.document_code == "V"
    assert result.issuing_state == "UTO"
    assert result.surname == "ERIKSSON"
    assert result.given_names == "ANNA MARIA"
    assert result.document_number == "L8988901C"
    assert result.nationality == "XXX"
    assert result.date_of_birth == date(1940, 9, 7)
    assert result.sex == "F"
    assert result.expiry_date == date(1996, 12, 10)
    assert result.optional_data == ""
    assert result.lines == MRVB


@pytest.mark.parametrize("lines", [TD1_LONG, TD2_LONG], ids=["TD1", "TD2"])
def test_long_document_number_specimens(lines: tuple[str, ...]) -> None:
    result = parse_mrz(mrz(lines), today=LONG_TODAY)
    assert result.problems == ()
    assert result.document_number == "D23145890734"
    assert result.optional_data == ""
    assert result.surname == "STEVENSON"
    assert result.given_names == "PETER JOHN"
    assert result.date_of_birth == date(1934, 7, 12)
    assert result.sex == "M"
    assert result.expiry_date == date(1995, 7, 12)


def test_long_document_number_keeps_following_optional_data() -> None:
    lines = build_td1(
        issuing_state="UTO",
        document_number="D23145890734",
        optional_data="ABC12",
        date_of_birth=date(1934, 7, 12),
        sex="M",
        expiry_date=date(2030, 7, 12),
        nationality="UTO",
        surname="STEVENSON",
        given_names="PETER JOHN",
    )
    assert lines[0] == "I<UTOD23145890<7349<ABC12<<<<<"
    result = parse_mrz(mrz(lines), today=SPECIMEN_TODAY)
    assert result.problems == ()
    assert result.document_number == "D23145890734"
    assert result.optional_data == "ABC12"


def test_long_document_number_without_extension_fails_check() -> None:
    # Check digit position holds '<' but the optional data holds no extension + check digit.
    lines = substitute(TD1, 0, 14, "<")
    result = parse_mrz(mrz(lines), today=SPECIMEN_TODAY)
    assert ("check_digit_failed", "document_number") in problem_keys(result)


def test_td3_specimen_expired_in_2026() -> None:
    result = parse_mrz(mrz(TD3), today=date(2026, 1, 1))
    assert problem_keys(result) == [("document_expired", "expiry_date")]
    assert not result.valid
    assert "2012-04-15" in result.problems[0].message
    assert result.expiry_date == date(2012, 4, 15)
    assert result.date_of_birth == date(1974, 8, 12)


def test_expiry_day_itself_is_not_expired() -> None:
    assert parse_mrz(mrz(TD3), today=date(2012, 4, 15)).valid
    result = parse_mrz(mrz(TD3), today=date(2012, 4, 16))
    assert problem_keys(result) == [("document_expired", "expiry_date")]


def test_check_results_keep_the_verdict_and_what_no_column_holds() -> None:
    result = parse_mrz(mrz(TD3), today=date(2026, 1, 1))
    kept = json.loads(json.dumps(result.check_results()))
    assert kept == {
        "format": "TD3",
        "optional_data": "ZE184226B",
        "optional_data_2": "",
        "problems": [problem.to_dict() for problem in result.problems],
        "valid": False,
    }
    assert [p["code"] for p in kept["problems"]] == ["document_expired"]
    assert parse_mrz(mrz(TD3), today=date(2012, 1, 1)).check_results()["valid"] is True


def test_to_dict_is_json_serialisable() -> None:
    result = parse_mrz(mrz(TD3), today=date(2026, 1, 1))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["format"] == "TD3"
    assert data["date_of_birth"] == "1974-08-12"
    assert data["expiry_date"] == "2012-04-15"
    assert data["lines"] == list(TD3)
    assert data["valid"] is False
    assert data["problems"] == [
        {
            "code": "document_expired",
            "field": "expiry_date",
            "message": result.problems[0].message,
        }
    ]


def test_to_dict_of_unreadable_input() -> None:
    data = json.loads(json.dumps(parse_mrz("garbage").to_dict()))
    assert data["date_of_birth"] is None
    assert data["format"] == ""
    assert data["problems"][0]["code"] == "wrong_line_count"


# ------------------------------------------------------------------------------ check digits

# (specimen, line index, position, field)
CHECK_DIGITS = [
    ("TD3", 1, 9, "document_number"),
    ("TD3", 1, 19, "date_of_birth"),
    ("TD3", 1, 27, "expiry_date"),
    ("TD3", 1, 42, "optional_data"),
    ("TD3", 1, 43, "composite"),
    ("TD1", 0, 14, "document_number"),
    ("TD1", 1, 6, "date_of_birth"),
    ("TD1", 1, 14, "expiry_date"),
    ("TD1", 1, 29, "composite"),
    ("TD2", 1, 9, "document_number"),
    ("TD2", 1, 19, "date_of_birth"),
    ("TD2", 1, 27, "expiry_date"),
    ("TD2", 1, 35, "composite"),
    ("MRVA", 1, 9, "document_number"),
    ("MRVA", 1, 19, "date_of_birth"),
    ("MRVA", 1, 27, "expiry_date"),
    ("MRVB", 1, 9, "document_number"),
    ("MRVB", 1, 19, "date_of_birth"),
    ("MRVB", 1, 27, "expiry_date"),
    ("TD1_LONG", 0, 18, "document_number"),
    ("TD1_LONG", 1, 6, "date_of_birth"),
    ("TD1_LONG", 1, 14, "expiry_date"),
    ("TD1_LONG", 1, 29, "composite"),
    ("TD2_LONG", 1, 31, "document_number"),
    ("TD2_LONG", 1, 35, "composite"),
]
HAS_COMPOSITE = {"TD3", "TD1", "TD2", "TD1_LONG", "TD2_LONG"}


def _check_digit_id(case: tuple[str, int, int, str]) -> str:
    return f"{case[0]}-{case[3]}"


@pytest.mark.parametrize("case", CHECK_DIGITS, ids=_check_digit_id)
def test_every_wrong_check_digit_is_caught(case: tuple[str, int, int, str]) -> None:
    name, line, position, field = case
    lines, today = SPECIMENS[name]
    original = lines[line][position]
    expected = [("check_digit_failed", field)]
    if name in HAS_COMPOSITE and field != "composite":
        # The composite digit covers the other check digits, so it fails too.
        expected.append(("check_digit_failed", "composite"))
    for wrong in (digit for digit in string.digits if digit != original):
        result = parse_mrz(mrz(substitute(lines, line, position, wrong)), today=today)
        assert problem_keys(result) == expected, wrong
        assert f"'{wrong}'" in result.problems[0].message


@pytest.mark.parametrize("case", CHECK_DIGITS, ids=_check_digit_id)
@pytest.mark.parametrize("wrong", ["<", "A"])
def test_non_digit_in_check_digit_position_is_caught(
    case: tuple[str, int, int, str], wrong: str
) -> None:
    name, line, position, field = case
    lines, today = SPECIMENS[name]
    result = parse_mrz(mrz(substitute(lines, line, position, wrong)), today=today)
    assert ("check_digit_failed", field) in problem_keys(result)


COMPOSITE_POSITION = {"TD3": (1, 43), "TD1": (1, 29), "TD2": (1, 35)}


@pytest.mark.parametrize(
    "case",
    [case for case in CHECK_DIGITS if case[0] in COMPOSITE_POSITION and case[3] != "composite"],
    ids=_check_digit_id,
)
def test_wrong_check_digit_with_repaired_composite_is_the_only_problem(
    case: tuple[str, int, int, str],
) -> None:
    name, line, position, field = case
    lines, today = SPECIMENS[name]
    wrong = "9" if lines[line][position] != "9" else "8"
    corrupted = substitute(lines, line, position, wrong)
    composite_line, composite_position = COMPOSITE_POSITION[name]
    outcomes = []
    for digit in string.digits:
        repaired = substitute(corrupted, composite_line, composite_position, digit)
        outcomes.append(problem_keys(parse_mrz(mrz(repaired), today=today)))
    assert outcomes.count([("check_digit_failed", field)]) == 1
    assert all(("check_digit_failed", field) in outcome for outcome in outcomes)


def test_td3_empty_personal_number_check_digit_may_be_filler_or_zero() -> None:
    lines = build_td3(
        issuing_state="UTO",
        surname="ERIKSSON",
        given_names="ANNA",
        document_number="L898902C3",
        nationality="UTO",
        date_of_birth=date(1974, 8, 12),
        sex="F",
        expiry_date=date(2012, 4, 15),
    )
    assert lines[1][28:43] == "<" * 15
    assert parse_mrz(mrz(lines), today=SPECIMEN_TODAY).valid
    zero = substitute(lines, 1, 42, "0")
    assert parse_mrz(mrz(zero), today=SPECIMEN_TODAY).valid
    five = substitute(lines, 1, 42, "5")
    assert ("check_digit_failed", "optional_data") in problem_keys(
        parse_mrz(mrz(five), today=SPECIMEN_TODAY)
    )


def test_td3_filled_personal_number_needs_a_real_check_digit() -> None:
    result = parse_mrz(mrz(substitute(TD3, 1, 42, "<")), today=SPECIMEN_TODAY)
    assert ("check_digit_failed", "optional_data") in problem_keys(result)


# ----------------------------------------------------------------------- layout problems

LINE_SETS = {"TD3": TD3, "TD1": TD1, "TD2": TD2, "MRVA": MRVA, "MRVB": MRVB}
LENGTH_CASES = [
    (name, index, change)
    for name, lines in LINE_SETS.items()
    for index in range(len(lines))
    for change in ("short", "long")
]


@pytest.mark.parametrize(("name", "index", "change"), LENGTH_CASES)
def test_wrong_line_length(name: str, index: int, change: str) -> None:
    lines = list(LINE_SETS[name])
    expected_length = len(lines[index])
    lines[index] = lines[index][:-1] if change == "short" else lines[index] + "<"
    result = parse_mrz(mrz(lines), today=SPECIMEN_TODAY)
    assert problem_keys(result) == [("wrong_line_length", f"line_{index + 1}")]
    message = result.problems[0].message
    assert str(expected_length) in message
    assert str(len(lines[index])) in message
    assert result.format == name
    assert result.document_number == ""
    assert result.date_of_birth is None


@pytest.mark.parametrize("name", list(LINE_SETS))
def test_every_line_of_wrong_length_is_named(name: str) -> None:
    lines = [line + "<<" for line in LINE_SETS[name]]
    result = parse_mrz(mrz(lines), today=SPECIMEN_TODAY)
    expected = [("wrong_line_length", f"line_{n}") for n in range(1, len(lines) + 1)]
    assert problem_keys(result) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n \r\n",
        TD3[0],
        TD3[1],
        mrz(TD1[:1]),
        mrz((*TD1, TD1[2])),
        mrz((*TD3, TD3[1], TD3[1])),
        TD3[0] + TD3[1][:-1],
    ],
    ids=["empty", "blank", "td3-line-1", "td3-line-2", "td1-one-line", "4-lines", "4-long", "87"],
)
def test_wrong_line_count(text: str) -> None:
    result = parse_mrz(text, today=SPECIMEN_TODAY)
    assert problem_keys(result) == [("wrong_line_count", "format")]
    assert result.format == ""
    assert result.document_number == ""
    assert result.surname == ""
    assert result.date_of_birth is None
    assert not result.valid


@pytest.mark.parametrize(
    "lines",
    [("ABCDEFGHIJ", "ABCDEFGHIJ"), ("P<UTO", "L898"), ("A" * 60, "A" * 60), ("A" * 10,) * 3],
)
def test_unrecognisable_shape_is_unknown_format(lines: tuple[str, ...]) -> None:
    result = parse_mrz(mrz(lines), today=SPECIMEN_TODAY)
    assert problem_keys(result) == [("unknown_format", "format")]
    assert result.format == ""


@pytest.mark.parametrize("first", ["<", "7"])
def test_document_code_not_starting_with_a_letter_is_unknown_format(first: str) -> None:
    result = parse_mrz(mrz(substitute(TD3, 0, 0, first)), today=SPECIMEN_TODAY)
    assert problem_keys(result) == [("unknown_format", "format")]
    assert result.document_number == ""


def test_parse_never_raises_on_junk() -> None:
    for text in ["\x00\x01", "<" * 88, "é" * 90, "\n".join(["#" * 44] * 2), "\u2028" * 3]:
        assert isinstance(parse_mrz(text, today=SPECIMEN_TODAY), MrzResult)


# --------------------------------------------------------------------- keyboard-wedge input


@pytest.mark.parametrize("name", list(LINE_SETS))
def test_keyboard_wedge_variants_parse_like_clean_input(name: str) -> None:
    lines = LINE_SETS[name]
    clean = parse_mrz(mrz(lines), today=SPECIMEN_TODAY)
    variants = [
        "\r\n".join(lines),
        "\r".join(lines) + "\r",
        "\n\n  \r\n" + "\r\n".join(lines) + "\r\n\r\n   ",
        "\n".join(f"  {line[:10]} {line[10:]}\t " for line in lines),
        "\n".join(lines).lower(),
        "".join(lines),
        "".join(lines) + "\r\n",
        "\r\n".join(line.lower().replace("<", "< ") for line in lines),
    ]
    for variant in variants:
        assert parse_mrz(variant, today=SPECIMEN_TODAY) == clean, repr(variant)


def test_normalise_mrz_input() -> None:
    assert normalise_mrz_input(" p<uto \r\n\r\n l898 \n") == ["P<UTO", "L898"]
    assert normalise_mrz_input("") == []
    assert normalise_mrz_input("".join(TD3)) == list(TD3)
    assert normalise_mrz_input("".join(TD2)) == list(TD2)
    assert normalise_mrz_input("".join(TD1)) == list(TD1)
    assert normalise_mrz_input("A" * 89) == ["A" * 89]


def test_normalise_does_not_change_length_of_non_ascii_letters() -> None:
    # str.upper() would turn 'ß' into 'SS'; the MRZ must keep its length and flag it.
    assert normalise_mrz_input("straße") == ["STRAßE"]


# --------------------------------------------------------------------- field validation


def test_invalid_characters_are_listed_with_positions() -> None:
    lines = substitute(TD3, 1, 3, "#")
    lines = substitute(lines, 1, 40, "é")
    result = parse_mrz(mrz(lines), today=SPECIMEN_TODAY)
    assert ("invalid_characters", "line_2") in problem_keys(result)
    message = next(p.message for p in result.problems if p.code == "invalid_characters")
    assert "'#' at position 4" in message
    assert "'é' at position 41" in message
    assert result.format == "TD3"


@pytest.mark.parametrize("line", [0, 1, 2])
def test_invalid_characters_name_the_td1_line(line: int) -> None:
    result = parse_mrz(mrz(substitute(TD1, line, 20, "*")), today=SPECIMEN_TODAY)
    assert ("invalid_characters", f"line_{line + 1}") in problem_keys(result)


def test_digits_in_name_are_invalid_characters() -> None:
    result = parse_mrz(mrz(substitute(TD3, 0, 6, "1")), today=SPECIMEN_TODAY)
    assert problem_keys(result) == [("invalid_characters", "line_1")]
    assert "'1' at position 7" in result.problems[0].message
    td1 = parse_mrz(mrz(substitute(TD1, 2, 0, "0")), today=SPECIMEN_TODAY)
    assert problem_keys(td1) == [("invalid_characters", "line_3")]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("issuing_state", {"issuing_state": "ZZZ"}),
        ("issuing_state", {"issuing_state": "U<O"}),
        ("issuing_state", {"issuing_state": "<<<"}),
        ("nationality", {"nationality": "QQQ"}),
        ("nationality", {"nationality": "12<"}),
    ],
)
def test_bad_country_code(field: str, kwargs: dict[str, str]) -> None:
    result = parse_mrz(raw_td3(**kwargs), today=SPECIMEN_TODAY)
    assert problem_keys(result) == [("bad_country_code", field)]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("D<<", "D"),
        ("DEU", "DEU"),
        ("GBD", "GBD"),
        ("XXA", "XXA"),
        ("XXX", "XXX"),
        ("UNO", "UNO"),
        ("EUE", "EUE"),
        ("XOM", "XOM"),
        ("UNK", "UNK"),
        ("RKS", "RKS"),
    ],
)
def test_special_country_codes_are_accepted(raw: str, code: str) -> None:
    result = parse_mrz(raw_td3(issuing_state=raw, nationality=raw), today=SPECIMEN_TODAY)
    assert result.problems == ()
    assert result.issuing_state == code
    assert result.nationality == code


def test_country_code_set_contains_iso_and_icao_codes() -> None:
    assert {"AFG", "ZWE", "USA", "FRA", "D", "XXB", "XXC", "GBN", "XPO"} <= COUNTRY_CODES
    assert "ZZZ" not in COUNTRY_CODES


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"birth": "991332"}, "date_of_birth"),
        ({"birth": "740230"}, "date_of_birth"),
        ({"birth": "7408A2"}, "date_of_birth"),
        ({"expiry": "120015"}, "expiry_date"),
        ({"expiry": "121232"}, "expiry_date"),
    ],
)
def test_invalid_date(kwargs: dict[str, str], field: str) -> None:
    result = parse_mrz(raw_td3(**kwargs), today=SPECIMEN_TODAY)
    assert problem_keys(result) == [("invalid_date", field)]
    assert getattr(result, field) is None
    assert repr(next(iter(kwargs.values()))) in result.problems[0].message


def test_filler_dates_mean_unknown() -> None:
    result = parse_mrz(raw_td3(birth="<<<<<<"), today=SPECIMEN_TODAY)
    assert result.problems == ()
    assert result.date_of_birth is None
    partial = parse_mrz(raw_td3(birth="74<<<<"), today=SPECIMEN_TODAY)
    assert partial.problems == ()
    assert partial.date_of_birth is None
    built = build_td3(
        issuing_state="UTO",
        surname="DOE",
        given_names="",
        document_number="X1",
        nationality="UTO",
        date_of_birth=None,
        sex="X",
        expiry_date=date(2020, 1, 1),
    )
    assert built[1][13:20] == "<<<<<<0"
    assert parse_mrz(mrz(built), today=SPECIMEN_TODAY).date_of_birth is None


@pytest.mark.parametrize(("raw", "sex"), [("M", "M"), ("F", "F"), ("X", "X"), ("<", "X")])
def test_sex(raw: str, sex: str) -> None:
    result = parse_mrz(raw_td3(sex=raw), today=SPECIMEN_TODAY)
    assert result.problems == ()
    assert result.sex == sex


@pytest.mark.parametrize("raw", ["Q", "1", "W"])
def test_invalid_sex(raw: str) -> None:
    result = parse_mrz(raw_td3(sex=raw), today=SPECIMEN_TODAY)
    assert problem_keys(result) == [("invalid_sex", "sex")]
    assert result.sex == ""


@pytest.mark.parametrize(
    ("name", "surname", "given_names"),
    [
        ("ERIKSSON<<ANNA<MARIA", "ERIKSSON", "ANNA MARIA"),
        ("VAN<DER<BERG<<JAN", "VAN DER BERG", "JAN"),
        ("SINGLENAME", "SINGLENAME", ""),
        ("SINGLENAME<<", "SINGLENAME", ""),
        ("<<ANNA", "", "ANNA"),
        ("POLLY<<ANNE<<MARIE", "POLLY", "ANNE MARIE"),
        ("A" * 39, "A" * 39, ""),
        ("WOLFESCHLEGELSTEINHAUSENBERGER<<HUBERT", "WOLFESCHLEGELSTEINHAUSENBERGER", "HUBERT"),
        ("NILSSON<<ANNA<MARIA<ELISABETH<KARIN<EVA", "NILSSON", "ANNA MARIA ELISABETH KARIN EVA"),
    ],
)
def test_names(name: str, surname: str, given_names: str) -> None:
    result = parse_mrz(raw_td3(name=name), today=SPECIMEN_TODAY)
    assert result.problems == ()
    assert result.surname == surname
    assert result.given_names == given_names


def test_problem_is_frozen() -> None:
    problem = MrzProblem("invalid_sex", "sex", "x")
    with pytest.raises(AttributeError):
        problem.code = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- centuries


@pytest.mark.parametrize(
    ("birth", "today", "expected"),
    [
        ("500101", date(2026, 1, 1), date(1950, 1, 1)),
        ("150101", date(2026, 1, 1), date(2015, 1, 1)),
        ("000229", date(2026, 1, 1), date(2000, 2, 29)),
        ("260101", date(2026, 1, 1), date(2026, 1, 1)),
        ("260102", date(2026, 1, 1), date(1926, 1, 2)),
        ("991231", date(2026, 1, 1), date(1999, 12, 31)),
        ("740812", date(2010, 1, 1), date(1974, 8, 12)),
        ("090101", date(2010, 1, 1), date(2009, 1, 1)),
        ("110101", date(2010, 1, 1), date(1911, 1, 1)),
    ],
)
def test_birth_date_century(birth: str, today: date, expected: date) -> None:
    result = parse_mrz(raw_td3(birth=birth, expiry="301231"), today=today)
    assert result.date_of_birth == expected


@pytest.mark.parametrize(
    ("expiry", "today", "expected"),
    [
        ("300101", date(2026, 1, 1), date(2030, 1, 1)),
        ("750101", date(2026, 1, 1), date(2075, 1, 1)),
        ("760101", date(2026, 1, 1), date(1976, 1, 1)),
        ("120415", date(2026, 1, 1), date(2012, 4, 15)),
        ("961210", date(2010, 1, 1), date(1996, 12, 10)),
        ("591231", date(2010, 1, 1), date(2059, 12, 31)),
        ("600101", date(2010, 1, 1), date(1960, 1, 1)),
        ("050101", date(2090, 1, 1), date(2105, 1, 1)),
    ],
)
def test_expiry_date_century(expiry: str, today: date, expected: date) -> None:
    result = parse_mrz(raw_td3(expiry=expiry), today=today)
    assert result.expiry_date == expected
    expired = ("document_expired", "expiry_date") in problem_keys(result)
    assert expired == (expected < today)


def test_today_defaults_to_the_real_date() -> None:
    # The specimen expired in 2012, so with the real date it is always expired.
    assert problem_keys(parse_mrz(mrz(TD3))) == [("document_expired", "expiry_date")]


# ----------------------------------------------------------------------------- builders


def test_build_td3_reproduces_the_specimen() -> None:
    lines = build_td3(
        document_code="P",
        issuing_state="UTO",
        surname="ERIKSSON",
        given_names="ANNA MARIA",
        document_number="L898902C3",
        nationality="UTO",
        date_of_birth=date(1974, 8, 12),
        sex="F",
        expiry_date=date(2012, 4, 15),
        optional_data="ZE184226B",
    )
    assert lines == TD3


def test_build_td1_td2_and_visas_reproduce_the_specimens() -> None:
    person = {
        "issuing_state": "UTO",
        "surname": "Eriksson",
        "given_names": "Anna Maria",
        "date_of_birth": date(1974, 8, 12),
        "sex": "F",
        "expiry_date": date(2012, 4, 15),
        "nationality": "UTO",
    }
    assert build_td1(document_number="D23145890", **person) == TD1
    assert build_td2(document_number="D23145890", **person) == TD2
    visa = {
        **person,
        "document_number": "L8988901C",
        "nationality": "XXX",
        "date_of_birth": date(1940, 9, 7),
        "expiry_date": date(1996, 12, 10),
    }
    assert build_mrva(**visa, optional_data="6ZE184226B") == MRVA
    assert build_mrvb(**visa) == MRVB


def test_build_long_document_numbers_reproduce_the_specimens() -> None:
    person = {
        "issuing_state": "UTO",
        "surname": "STEVENSON",
        "given_names": "PETER JOHN",
        "document_number": "D23145890734",
        "date_of_birth": date(1934, 7, 12),
        "sex": "M",
        "expiry_date": date(1995, 7, 12),
        "nationality": "UTO",
    }
    assert build_td1(**person) == TD1_LONG
    assert build_td2(**person) == TD2_LONG


def test_builder_name_conventions() -> None:
    lines = build_td3(
        issuing_state="UTO",
        surname="O'Brien-Smith",
        given_names="Mary Ann",
        document_number="X1",
        nationality="UTO",
        date_of_birth=date(1980, 1, 1),
        sex="X",
        expiry_date=date(2030, 1, 1),
    )
    assert lines[0].startswith("P<UTOOBRIEN<SMITH<<MARY<ANN<")
    assert lines[1][20] == "<"
    result = parse_mrz(mrz(lines), today=SPECIMEN_TODAY)
    assert (result.surname, result.given_names, result.sex) == ("OBRIEN SMITH", "MARY ANN", "X")


@pytest.mark.parametrize(
    "override",
    [
        {"document_number": "1234567890"},
        {"document_number": "AB-12"},
        {"optional_data": "A" * 15},
        {"document_code": "V"},
        {"document_code": "1"},
        {"sex": "Q"},
        {"surname": "MÜLLER"},
        {"issuing_state": "ABCD"},
    ],
)
def test_build_td3_rejects_bad_fields(override: dict[str, str]) -> None:
    fields = {
        "issuing_state": "UTO",
        "surname": "ERIKSSON",
        "given_names": "ANNA",
        "document_number": "L898902C3",
        "nationality": "UTO",
        "date_of_birth": date(1974, 8, 12),
        "sex": "F",
        "expiry_date": date(2012, 4, 15),
        **override,
    }
    with pytest.raises(ValueError):
        build_td3(**fields)  # type: ignore[arg-type]


def test_build_visa_requires_v_code() -> None:
    with pytest.raises(ValueError):
        build_mrva(
            document_code="P",
            issuing_state="UTO",
            surname="A",
            given_names="B",
            document_number="1",
            nationality="UTO",
            date_of_birth=None,
            sex="M",
            expiry_date=None,
        )


def test_build_td2_long_number_without_room_for_optional_data() -> None:
    with pytest.raises(ValueError):
        build_td2(
            issuing_state="UTO",
            surname="A",
            given_names="B",
            document_number="D23145890734",
            nationality="UTO",
            date_of_birth=None,
            sex="M",
            expiry_date=None,
            optional_data="ABCD",
        )


# -------------------------------------------------------- exhaustive single substitutions


def _documented_equivalence(
    fmt: str, lines: tuple[str, ...], line: int, position: int, new: str
) -> bool:
    """Single changes Doc 9303 itself treats as meaning the same thing.

    * sex '<' (unspecified) and 'X' both read as "X";
    * TD3: an empty personal number's check digit may be '<' or '0'.
    """
    old = lines[line][position]
    sex_position = (1, 7) if fmt == "TD1" else (1, 20)
    if (line, position) == sex_position and {old, new} == {"<", "X"}:
        return True
    empty_personal_number = fmt == "TD3" and lines[1][28:42] == "<" * 14
    return empty_personal_number and (line, position) == (1, 42) and {old, new} == {"<", "0"}


def _assert_change_detected_or_visible(
    lines: tuple[str, ...], line: int, position: int, new: str, today: date
) -> None:
    original = parse_mrz(mrz(lines), today=today)
    old = lines[line][position]
    changed = parse_mrz(mrz(substitute(lines, line, position, new)), today=today)
    if _documented_equivalence(str(original.format), lines, line, position, new):
        return
    assert not changed.valid or data_fields(changed) != data_fields(original), (
        f"line {line + 1} position {position + 1}: {old!r} -> {new!r} went unnoticed"
    )


_UNSPECIFIED = {
    "issuing_state": "D",
    "surname": "X",
    "given_names": "",
    "document_number": "1",
    "nationality": "XXA",
    "date_of_birth": date(1950, 1, 1),
    "sex": "X",
    "expiry_date": date(2020, 1, 1),
}
EXHAUSTIVE = {
    **SPECIMENS,
    # Sex '<' and an empty TD3 personal number exercise the documented equivalences.
    "TD3_SPARSE": (build_td3(**_UNSPECIFIED), SPECIMEN_TODAY),
    "TD1_SPARSE": (build_td1(**_UNSPECIFIED), SPECIMEN_TODAY),
}


@pytest.mark.parametrize("name", list(EXHAUSTIVE))
def test_every_single_substitution_is_noticed(name: str) -> None:
    lines, today = EXHAUSTIVE[name]
    for line_index, line in enumerate(lines):
        for position, old in enumerate(line):
            for new in ALPHABET:
                if new != old:
                    _assert_change_detected_or_visible(lines, line_index, position, new, today)


# ---------------------------------------------------------------------- property tests

PROPERTY_TODAY = date(2010, 1, 1)

surnames = st.text(alphabet=UPPER, min_size=1, max_size=10)
given_names_strategy = st.lists(st.text(alphabet=UPPER, min_size=1, max_size=7), max_size=2).map(
    " ".join
)
document_numbers = st.text(alphabet=ALNUM, min_size=1, max_size=9)
births = st.dates(min_value=date(1911, 1, 1), max_value=date(2009, 12, 31))
expiries = st.dates(min_value=PROPERTY_TODAY, max_value=date(2059, 12, 31))
sexes = st.sampled_from(["M", "F", "X"])
countries = st.sampled_from(sorted(COUNTRY_CODES))
FORMATS = ("TD1", "TD2", "TD3", "MRVA", "MRVB")
OPTIONAL_WIDTH = {"TD1": 15, "TD2": 7, "TD3": 14, "MRVA": 16, "MRVB": 8}


@st.composite
def documents(
    draw: st.DrawFn,
    numbers: st.SearchStrategy[str] = document_numbers,
    formats: tuple[str, ...] = FORMATS,
) -> tuple[str, tuple[str, ...], dict[str, object]]:
    """(format, MRZ lines, the fields they were built from)."""
    fmt = draw(st.sampled_from(formats))
    number = draw(numbers)
    room = OPTIONAL_WIDTH[fmt] - (len(number) - 9 + 2 if len(number) > 9 else 0)
    if fmt == "MRVA" or fmt == "MRVB":
        code = draw(st.sampled_from(["V", "VA", "VB"]))
    else:
        code = draw(st.sampled_from(["P", "PD"] if fmt == "TD3" else ["I", "ID", "AC", "C"]))
    fields: dict[str, object] = {
        "document_code": code,
        "issuing_state": draw(countries),
        "surname": draw(surnames),
        "given_names": draw(given_names_strategy),
        "document_number": number,
        "nationality": draw(countries),
        "date_of_birth": draw(births),
        "sex": draw(sexes),
        "expiry_date": draw(expiries),
        "optional_data": draw(st.text(alphabet=ALNUM, max_size=max(room, 0))),
    }
    if fmt == "TD1":
        fields["optional_data_2"] = draw(st.text(alphabet=ALNUM, max_size=11))
    builder = {
        "TD1": build_td1,
        "TD2": build_td2,
        "TD3": build_td3,
        "MRVA": build_mrva,
        "MRVB": build_mrvb,
    }[fmt]
    lines = builder(**fields)  # type: ignore[arg-type]
    return fmt, lines, fields


def _assert_round_trip(fmt: str, lines: tuple[str, ...], fields: dict[str, object]) -> None:
    result = parse_mrz(mrz(lines), today=PROPERTY_TODAY)
    assert result.problems == ()
    assert result.format == fmt
    assert result.lines == lines
    for name, value in fields.items():
        assert getattr(result, name) == value, name
    if fmt != "TD1":
        assert result.optional_data_2 == ""


@settings(max_examples=300, deadline=None)
@given(documents())
def test_built_documents_parse_back(document: tuple[str, tuple[str, ...], dict]) -> None:
    _assert_round_trip(*document)


long_numbers = st.text(alphabet=ALNUM, min_size=10, max_size=14)


@settings(max_examples=200, deadline=None)
@given(documents(long_numbers, ("TD1", "TD2")))
def test_long_document_numbers_round_trip(document: tuple[str, tuple[str, ...], dict]) -> None:
    _assert_round_trip(*document)


@settings(max_examples=500, deadline=None)
@given(documents(), st.data())
def test_any_single_substitution_is_caught_or_changes_fields(
    document: tuple[str, tuple[str, ...], dict], data: st.DataObject
) -> None:
    _, lines, _ = document
    line = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    position = data.draw(st.integers(min_value=0, max_value=len(lines[line]) - 1))
    new = data.draw(st.sampled_from(ALPHABET).filter(lambda char: char != lines[line][position]))
    _assert_change_detected_or_visible(lines, line, position, new, PROPERTY_TODAY)
