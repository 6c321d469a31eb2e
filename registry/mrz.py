"""Parse and build ICAO Doc 9303 machine-readable zones (MRZ) for travel documents.

Formats: TD1 (3 x 30), TD2 (2 x 36), TD3 passports (2 x 44), and the visas MRV-A (2 x 44)
and MRV-B (2 x 36). Pure standard-library code with no I/O. ``parse_mrz`` never raises on bad
input: every defect comes back as an ``MrzProblem`` on the returned ``MrzResult``. The
``build_*`` helpers compose valid MRZ lines (every check digit computed) for tests and fixtures.

Rules that Doc 9303 leaves to the implementer:

* Century of the date of birth: the latest year with those two digits that does not put the
  date after ``today``.
* Century of the expiry date: the year with those two digits in the window
  ``[today.year - 50, today.year + 49]``.
* A date written wholly or partly in fillers (``<``) means "unknown": the date is ``None`` and
  no problem is reported.
* Sex ``<`` (unspecified) and ``X`` both come back as ``"X"``.
* The specimen state ``UTO`` (Utopia) is accepted as a country code, so Doc 9303 specimens
  parse as valid.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

FILLER = "<"
MRZ_ALPHABET = frozenset(string.ascii_uppercase + string.digits + FILLER)
_WEIGHTS = (7, 3, 1)
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)

# Problem codes (stable machine names).
CHECK_DIGIT_FAILED = "check_digit_failed"
DOCUMENT_EXPIRED = "document_expired"
INVALID_DATE = "invalid_date"
BAD_COUNTRY_CODE = "bad_country_code"
WRONG_LINE_LENGTH = "wrong_line_length"
WRONG_LINE_COUNT = "wrong_line_count"
INVALID_CHARACTERS = "invalid_characters"
UNKNOWN_FORMAT = "unknown_format"
INVALID_SEX = "invalid_sex"

#: Lines further than this from every known line length are not guessed at: unknown_format.
LINE_LENGTH_TOLERANCE = 4
#: Expiry years are placed in [today.year - EXPIRY_YEARS_BACK, today.year - EXPIRY_YEARS_BACK + 99].
EXPIRY_YEARS_BACK = 50


class MrzFormat(StrEnum):
    """The MRZ layouts this module understands."""

    TD1 = "TD1"
    TD2 = "TD2"
    TD3 = "TD3"
    MRVA = "MRVA"
    MRVB = "MRVB"


_CONCATENATED_WIDTHS = {90: 30, 72: 36, 88: 44}

ISO_3166_ALPHA3 = frozenset(
    """
    ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE
    BDI BEL BEN BES BFA BGD BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA
    CAF CAN CCK CHE CHL CHN CIV CMR COD COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE
    DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH ESP EST ETH FIN FJI FLK FRA FRO FSM
    GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM GUY
    HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM JEY JOR JPN
    KAZ KEN KGZ KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA
    MAC MAF MAR MCO MDA MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI
    MYS MYT NAM NCL NER NFK NGA NIC NIU NLD NOR NPL NRU NZL OMN
    PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA
    SAU SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM
    SYC SYR TCA TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV TWN TZA
    UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE
    """.split()
)

#: Codes Doc 9303 Part 3 adds to ISO 3166-1: Germany's "D", British nationality classes,
#: international organisations and persons without a defined nationality.
ICAO_SPECIAL_CODES = frozenset(
    """
    D GBD GBN GBO GBP GBS EUE UNO UNA UNK
    XBA XIM XCC XCE XCO XEC XPO XES XMP XOM XDC
    XXA XXB XXC XXX
    """.split()
)

#: Codes found on documents in circulation though not listed in Doc 9303: Kosovo passports
#: use RKS; XKX is the user-assigned code many systems use for Kosovo.
DE_FACTO_CODES = frozenset({"RKS", "XKX"})

#: Utopia, the fictional state of the Doc 9303 specimens.
SPECIMEN_CODES = frozenset({"UTO"})

COUNTRY_CODES = ISO_3166_ALPHA3 | ICAO_SPECIAL_CODES | DE_FACTO_CODES | SPECIMEN_CODES

_SEX_CODES = {"M": "M", "F": "F", "X": "X", FILLER: "X"}

_FIELD_LABELS = {
    "document_number": "document number",
    "date_of_birth": "date of birth",
    "expiry_date": "expiry date",
    "optional_data": "optional data (personal number)",
    "composite": "composite",
    "issuing_state": "issuing state",
    "nationality": "nationality",
}


@dataclass(frozen=True)
class MrzProblem:
    """One defect found in an MRZ: a stable ``code``, the ``field`` at fault, a message."""

    code: str
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class MrzResult:
    """Fields read from an MRZ plus every problem found; fields are empty when unreadable."""

    format: str = ""
    document_code: str = ""
    issuing_state: str = ""
    surname: str = ""
    given_names: str = ""
    document_number: str = ""
    nationality: str = ""
    date_of_birth: date | None = None
    sex: str = ""
    expiry_date: date | None = None
    optional_data: str = ""
    optional_data_2: str = ""
    lines: tuple[str, ...] = ()
    problems: tuple[MrzProblem, ...] = ()

    @property
    def valid(self) -> bool:
        """True when no problem at all was found."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view: dates as ISO strings, problems as plain dicts."""
        return {
            "format": str(self.format),
            "document_code": self.document_code,
            "issuing_state": self.issuing_state,
            "surname": self.surname,
            "given_names": self.given_names,
            "document_number": self.document_number,
            "nationality": self.nationality,
            "date_of_birth": _iso(self.date_of_birth),
            "sex": self.sex,
            "expiry_date": _iso(self.expiry_date),
            "optional_data": self.optional_data,
            "optional_data_2": self.optional_data_2,
            "lines": list(self.lines),
            "problems": [problem.to_dict() for problem in self.problems],
            "valid": self.valid,
        }

    def check_results(self) -> dict[str, Any]:
        """What a travel document keeps of its MRZ check: the format, every problem found
        and the verdict, and the optional data no column holds. The other fields are the
        document's and traveller's own columns, and the lines are its raw MRZ (parse it
        again for the whole reading): a full copy doubled every document record."""
        return {
            "format": str(self.format),
            "optional_data": self.optional_data,
            "optional_data_2": self.optional_data_2,
            "problems": [problem.to_dict() for problem in self.problems],
            "valid": self.valid,
        }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


# --------------------------------------------------------------------------- check digits


def _char_value(char: str) -> int | None:
    if char == FILLER:
        return 0
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    return None


def check_digit(value: str) -> int:
    """The Doc 9303 check digit of ``value``: weights 7-3-1, '<'=0, digits, A-Z=10-35.

    Raises ValueError for a character outside the MRZ alphabet.
    """
    total = 0
    for index, char in enumerate(value):
        number = _char_value(char)
        if number is None:
            raise ValueError(f"{char!r} is not an MRZ character")
        total += number * _WEIGHTS[index % 3]
    return total % 10


def _computable(value: str) -> bool:
    return all(_char_value(char) is not None for char in value)


# -------------------------------------------------------------------------- normalisation


def normalise_mrz_input(text: str) -> list[str]:
    """Split reader output into MRZ lines.

    Splits on any newline, removes all whitespace, uppercases ASCII letters and drops empty
    lines. A single line of 90, 72 or 88 characters is split into TD1, TD2/MRV-B or
    TD3/MRV-A lines.
    """
    lines = []
    for raw in text.splitlines():
        line = "".join(char for char in raw if not char.isspace()).translate(_ASCII_UPPER)
        if line:
            lines.append(line)
    if len(lines) == 1 and len(lines[0]) in _CONCATENATED_WIDTHS:
        line = lines[0]
        width = _CONCATENATED_WIDTHS[len(line)]
        lines = [line[start : start + width] for start in range(0, len(line), width)]
    return lines


# ------------------------------------------------------------------------ format detection


def _choose_width(lines: list[str]) -> int | None:
    """The line length the lines were meant to have, or None if they fit no format."""
    candidates = (36, 44) if len(lines) == 2 else (30,)

    def score(width: int) -> tuple[int, int, int]:
        exact = sum(len(line) == width for line in lines)
        distance = sum(abs(len(line) - width) for line in lines)
        return (-exact, distance, -width)

    width = min(candidates, key=score)
    if all(abs(len(line) - width) > LINE_LENGTH_TOLERANCE for line in lines):
        return None
    return width


def _format_for(width: int, first_line: str) -> MrzFormat:
    is_visa = first_line.startswith("V")
    if width == 30:
        return MrzFormat.TD1
    if width == 36:
        return MrzFormat.MRVB if is_visa else MrzFormat.TD2
    return MrzFormat.MRVA if is_visa else MrzFormat.TD3


def _line_count_problem(lines: list[str]) -> MrzProblem:
    return MrzProblem(
        WRONG_LINE_COUNT,
        "format",
        f"An MRZ has 2 lines (TD2, TD3, visas) or 3 lines (TD1); got {len(lines)}.",
    )


def _unknown_format_problem(message: str) -> MrzProblem:
    return MrzProblem(UNKNOWN_FORMAT, "format", message)


def _length_problems(lines: list[str], width: int, fmt: MrzFormat) -> list[MrzProblem]:
    return [
        MrzProblem(
            WRONG_LINE_LENGTH,
            f"line_{number}",
            f"Line {number} of a {fmt} MRZ must have {width} characters; got {len(line)}.",
        )
        for number, line in enumerate(lines, start=1)
        if len(line) != width
    ]


def _listing(line: str, wanted: Callable[[str], bool], offset: int = 0) -> str:
    return ", ".join(
        f"{char!r} at position {index}"
        for index, char in enumerate(line, start=offset + 1)
        if wanted(char)
    )


def _character_problems(lines: list[str]) -> list[MrzProblem]:
    problems = []
    for number, line in enumerate(lines, start=1):
        bad = _listing(line, lambda char: char not in MRZ_ALPHABET)
        if bad:
            message = f"Line {number} has characters not allowed in an MRZ: {bad}."
            problems.append(MrzProblem(INVALID_CHARACTERS, f"line_{number}", message))
    return problems


# ------------------------------------------------------------------------ field extraction


@dataclass(frozen=True)
class _RawFields:
    """The raw character fields of one MRZ, whatever its layout."""

    document_code: str
    issuing_state: str
    name: str
    name_line: int
    name_offset: int
    document_number: str
    document_number_check: str
    nationality: str
    date_of_birth: str
    date_of_birth_check: str
    sex: str
    expiry_date: str
    expiry_date_check: str
    optional_data: str
    optional_data_2: str = ""
    optional_data_check: str | None = None
    composite: str | None = None
    composite_check: str | None = None


def _split_long_document_number(number: str, check: str, optional: str) -> tuple[str, str, str]:
    """Apply the TD1/TD2 rule for document numbers longer than 9 characters.

    When the check digit position holds '<', the number continues at the start of the
    optional data, followed by its check digit and a filler. Returns (number, check digit
    character, remaining optional data). Without at least one extension character the
    check digit character is '<', which fails verification.
    """
    if check != FILLER:
        return number, check, optional
    end = optional.find(FILLER)
    end = len(optional) if end < 0 else end
    segment = optional[:end]
    if len(segment) < 2:
        return number, check, optional
    return number + segment[:-1], segment[-1], optional[end + 1 :]


def _composite_two_line(line2: str, end: int) -> str:
    return line2[0:10] + line2[13:20] + line2[21:end]


def _composite_td1(line1: str, line2: str) -> str:
    return line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]


def _common_line2(line2: str) -> dict[str, str]:
    """Positions 1-28 shared by the second line of TD2, TD3, MRV-A and MRV-B."""
    return {
        "document_number": line2[0:9],
        "document_number_check": line2[9],
        "nationality": line2[10:13],
        "date_of_birth": line2[13:19],
        "date_of_birth_check": line2[19],
        "sex": line2[20],
        "expiry_date": line2[21:27],
        "expiry_date_check": line2[27],
    }


def _line1_header(line1: str) -> dict[str, str]:
    return {"document_code": line1[0:2], "issuing_state": line1[2:5]}


def _extract_td3(lines: list[str]) -> _RawFields:
    line1, line2 = lines
    return _RawFields(
        **_line1_header(line1),
        name=line1[5:44],
        name_line=1,
        name_offset=5,
        **_common_line2(line2),
        optional_data=line2[28:42],
        optional_data_check=line2[42],
        composite=_composite_two_line(line2, 43),
        composite_check=line2[43],
    )


def _extract_td2(lines: list[str]) -> _RawFields:
    line1, line2 = lines
    common = _common_line2(line2)
    number, check, optional = _split_long_document_number(
        common.pop("document_number"), common.pop("document_number_check"), line2[28:35]
    )
    return _RawFields(
        **_line1_header(line1),
        name=line1[5:36],
        name_line=1,
        name_offset=5,
        document_number=number,
        document_number_check=check,
        **common,
        optional_data=optional,
        composite=_composite_two_line(line2, 35),
        composite_check=line2[35],
    )


def _extract_visa(lines: list[str]) -> _RawFields:
    line1, line2 = lines
    return _RawFields(
        **_line1_header(line1),
        name=line1[5:],
        name_line=1,
        name_offset=5,
        **_common_line2(line2),
        optional_data=line2[28:],
    )


def _extract_td1(lines: list[str]) -> _RawFields:
    line1, line2, line3 = lines
    number, check, optional = _split_long_document_number(line1[5:14], line1[14], line1[15:30])
    return _RawFields(
        **_line1_header(line1),
        name=line3,
        name_line=3,
        name_offset=0,
        document_number=number,
        document_number_check=check,
        nationality=line2[15:18],
        date_of_birth=line2[0:6],
        date_of_birth_check=line2[6],
        sex=line2[7],
        expiry_date=line2[8:14],
        expiry_date_check=line2[14],
        optional_data=optional,
        optional_data_2=line2[18:29],
        composite=_composite_td1(line1, line2),
        composite_check=line2[29],
    )


_EXTRACTORS: dict[MrzFormat, Callable[[list[str]], _RawFields]] = {
    MrzFormat.TD1: _extract_td1,
    MrzFormat.TD2: _extract_td2,
    MrzFormat.TD3: _extract_td3,
    MrzFormat.MRVA: _extract_visa,
    MrzFormat.MRVB: _extract_visa,
}


# ------------------------------------------------------------------------- field decoding


def _verify(
    field: str, subject: str, check: str, *, filler_allowed: bool = False
) -> list[MrzProblem]:
    """A check_digit_failed problem unless ``check`` is the check digit of ``subject``.

    Subjects holding non-MRZ characters are skipped (already reported as invalid
    characters). With ``filler_allowed`` a '<' check digit is accepted for an all-filler
    subject (TD3 personal number).
    """
    if not _computable(subject):
        return []
    if filler_allowed and check == FILLER and not subject.strip(FILLER):
        return []
    expected = check_digit(subject)
    if check == str(expected):
        return []
    label = _FIELD_LABELS[field]
    message = f"The {label} check digit is {check!r} but the data gives {expected}."
    return [MrzProblem(CHECK_DIGIT_FAILED, field, message)]


def _check_digit_problems(raw: _RawFields) -> list[MrzProblem]:
    problems = _verify("document_number", raw.document_number, raw.document_number_check)
    problems += _verify("date_of_birth", raw.date_of_birth, raw.date_of_birth_check)
    problems += _verify("expiry_date", raw.expiry_date, raw.expiry_date_check)
    if raw.optional_data_check is not None:
        problems += _verify(
            "optional_data", raw.optional_data, raw.optional_data_check, filler_allowed=True
        )
    if raw.composite is not None and raw.composite_check is not None:
        problems += _verify("composite", raw.composite, raw.composite_check)
    return problems


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _birth_year(yy: int, month: int, day: int, today: date) -> int:
    """The latest year ending in ``yy`` that does not put the birth date after ``today``."""
    year = today.year - (today.year - yy) % 100
    if (year, month, day) > (today.year, today.month, today.day):
        year -= 100
    return year


def _expiry_year(yy: int, month: int, day: int, today: date) -> int:
    """The year ending in ``yy`` within [today.year - 50, today.year + 49] (month/day unused)."""
    start = today.year - EXPIRY_YEARS_BACK
    return start + (yy - start) % 100


def _read_date(
    value: str,
    field: str,
    today: date,
    pick_year: Callable[[int, int, int, date], int],
) -> tuple[date | None, list[MrzProblem]]:
    """Decode YYMMDD; fillers mean "unknown" (None, no problem)."""
    if FILLER in value and all(char == FILLER or _is_digit(char) for char in value):
        return None, []
    invalid = MrzProblem(
        INVALID_DATE,
        field,
        f"The {_FIELD_LABELS[field]} {value!r} is not a valid YYMMDD date.",
    )
    if len(value) != 6 or not all(_is_digit(char) for char in value):
        return None, [invalid]
    yy, month, day = int(value[0:2]), int(value[2:4]), int(value[4:6])
    try:
        return date(pick_year(yy, month, day, today), month, day), []
    except ValueError:
        return None, [invalid]


def _country(value: str, field: str) -> tuple[str, list[MrzProblem]]:
    code = value.rstrip(FILLER)
    if code in COUNTRY_CODES:
        return code, []
    message = f"The {_FIELD_LABELS[field]} code {value!r} is not an ICAO 9303 country code."
    return code, [MrzProblem(BAD_COUNTRY_CODE, field, message)]


def _sex(value: str) -> tuple[str, list[MrzProblem]]:
    if value in _SEX_CODES:
        return _SEX_CODES[value], []
    message = f"Sex must be 'M', 'F', 'X' or '<'; got {value!r}."
    return "", [MrzProblem(INVALID_SEX, "sex", message)]


def _name_parts(component: str) -> str:
    return " ".join(part for part in component.split(FILLER) if part)


def _split_name(field: str) -> tuple[str, str]:
    """(primary identifier, secondary identifier) with '<' between parts turned to spaces."""
    primary, _, secondary = field.rstrip(FILLER).partition(FILLER * 2)
    return _name_parts(primary), _name_parts(secondary)


def _name_problems(raw: _RawFields) -> list[MrzProblem]:
    digits = _listing(raw.name, _is_digit, raw.name_offset)
    if not digits:
        return []
    message = f"Line {raw.name_line} has digits in the name field: {digits}."
    return [MrzProblem(INVALID_CHARACTERS, f"line_{raw.name_line}", message)]


def _expiry_problems(expiry: date | None, today: date) -> list[MrzProblem]:
    if expiry is None or expiry >= today:
        return []
    message = f"The document expired on {expiry.isoformat()}."
    return [MrzProblem(DOCUMENT_EXPIRED, "expiry_date", message)]


def _decode(
    fmt: MrzFormat, lines: list[str], raw: _RawFields, problems: list[MrzProblem], today: date
) -> MrzResult:
    issuing_state, issuer_problems = _country(raw.issuing_state, "issuing_state")
    nationality, nationality_problems = _country(raw.nationality, "nationality")
    birth, birth_problems = _read_date(raw.date_of_birth, "date_of_birth", today, _birth_year)
    expiry, expiry_problems = _read_date(raw.expiry_date, "expiry_date", today, _expiry_year)
    sex, sex_problems = _sex(raw.sex)
    surname, given_names = _split_name(raw.name)
    problems = (
        problems
        + _name_problems(raw)
        + issuer_problems
        + nationality_problems
        + _check_digit_problems(raw)
        + birth_problems
        + sex_problems
        + expiry_problems
        + _expiry_problems(expiry, today)
    )
    return MrzResult(
        format=fmt,
        document_code=raw.document_code.rstrip(FILLER),
        issuing_state=issuing_state,
        surname=surname,
        given_names=given_names,
        document_number=raw.document_number.strip(FILLER),
        nationality=nationality,
        date_of_birth=birth,
        sex=sex,
        expiry_date=expiry,
        optional_data=raw.optional_data.strip(FILLER),
        optional_data_2=raw.optional_data_2.strip(FILLER),
        lines=tuple(lines),
        problems=tuple(problems),
    )


def parse_mrz(text: str, *, today: date | None = None) -> MrzResult:
    """Parse MRZ text as sent by a reader; never raises on bad input.

    ``today`` (default ``date.today()``) drives the expiry check and century inference.
    When the layout cannot be read (wrong line count or length, unknown format) the result
    has empty fields and only the layout problems.
    """
    today = today if today is not None else date.today()
    lines = normalise_mrz_input(text)
    if len(lines) not in (2, 3):
        return MrzResult(lines=tuple(lines), problems=(_line_count_problem(lines),))
    width = _choose_width(lines)
    if width is None:
        lengths = ", ".join(str(len(line)) for line in lines)
        problem = _unknown_format_problem(f"No MRZ format has {len(lines)} lines of {lengths}.")
        return MrzResult(lines=tuple(lines), problems=(problem,))
    fmt = _format_for(width, lines[0])
    problems = _character_problems(lines)
    length_problems = _length_problems(lines, width, fmt)
    if length_problems:
        return MrzResult(format=fmt, lines=tuple(lines), problems=tuple(problems + length_problems))
    if lines[0][0] not in string.ascii_uppercase:
        problem = _unknown_format_problem(
            f"The document code must start with a letter; got {lines[0][0]!r}."
        )
        return MrzResult(lines=tuple(lines), problems=tuple([*problems, problem]))
    return _decode(fmt, lines, _EXTRACTORS[fmt](lines), problems, today)


# -------------------------------------------------------------------------------- builders


def _mrz_chars(value: str, what: str, *, name: bool = False) -> str:
    """Uppercase ``value`` and check it only uses MRZ characters (raises ValueError)."""
    text = value.translate(_ASCII_UPPER)
    if name:
        text = text.replace("'", "")
        for separator in " -,":
            text = text.replace(separator, FILLER)
    bad = sorted({char for char in text if char not in MRZ_ALPHABET})
    if bad:
        raise ValueError(f"{what} has characters not allowed in an MRZ: {bad}")
    return text


def _pad(value: str, width: int, what: str) -> str:
    if len(value) > width:
        raise ValueError(f"{what} {value!r} is longer than {width} characters")
    return value.ljust(width, FILLER)


def _with_check(value: str) -> str:
    return value + str(check_digit(value))


def _yymmdd(value: date | None) -> str:
    return value.strftime("%y%m%d") if value is not None else FILLER * 6


def _sex_char(sex: str) -> str:
    codes = {"M": "M", "F": "F", "X": FILLER, FILLER: FILLER}
    if sex not in codes:
        raise ValueError(f"sex must be 'M', 'F', 'X' or '<'; got {sex!r}")
    return codes[sex]


def _name_field(surname: str, given_names: str, width: int) -> str:
    """Primary and secondary identifiers joined by '<<', truncated to ``width``."""
    primary = _mrz_chars(surname.strip(), "surname", name=True)
    secondary = _mrz_chars(given_names.strip(), "given names", name=True)
    text = f"{primary}{FILLER * 2}{secondary}" if secondary else primary
    return text[:width].ljust(width, FILLER)


def _header(document_code: str, issuing_state: str) -> str:
    code = _mrz_chars(document_code, "document code")
    if not code[:1].isalpha():
        raise ValueError(f"document code must start with a letter; got {document_code!r}")
    return _pad(code, 2, "document code") + _pad(
        _mrz_chars(issuing_state, "issuing state"), 3, "issuing state"
    )


def _number_and_optional(number: str, optional: str, width: int, *, long_ok: bool) -> str:
    """Document number + check digit (10 chars) followed by the optional data field.

    Numbers over 9 characters use the TD1/TD2 extension into the optional data field.
    """
    number = _mrz_chars(number, "document number")
    optional = _mrz_chars(optional, "optional data")
    if len(number) <= 9:
        return _with_check(_pad(number, 9, "document number")) + _pad(optional, width, "optional")
    if not long_ok:
        raise ValueError(f"document number {number!r} is longer than 9 characters")
    extension = number[9:] + str(check_digit(number))
    if optional:
        extension += FILLER + optional
    return number[:9] + FILLER + _pad(extension, width, "document number extension + optional")


def _line2_middle(
    nationality: str, date_of_birth: date | None, sex: str, expiry_date: date | None
) -> str:
    """Nationality, date of birth, sex and expiry (positions 11-28 of a two-line MRZ)."""
    return (
        _pad(_mrz_chars(nationality, "nationality"), 3, "nationality")
        + _with_check(_yymmdd(date_of_birth))
        + _sex_char(sex)
        + _with_check(_yymmdd(expiry_date))
    )


def _build_two_line(
    fmt: MrzFormat,
    *,
    document_code: str,
    issuing_state: str,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    date_of_birth: date | None,
    sex: str,
    expiry_date: date | None,
    optional_data: str,
) -> tuple[str, str]:
    width = 44 if fmt in (MrzFormat.TD3, MrzFormat.MRVA) else 36
    is_visa = fmt in (MrzFormat.MRVA, MrzFormat.MRVB)
    if document_code.upper().startswith("V") != is_visa:
        raise ValueError(f"{fmt} document code {document_code!r}: only visas start with 'V'")
    line1 = _header(document_code, issuing_state) + _name_field(surname, given_names, width - 5)
    middle = _line2_middle(nationality, date_of_birth, sex, expiry_date)
    if fmt is MrzFormat.TD3:
        personal = _pad(_mrz_chars(optional_data, "optional data"), 14, "optional data")
        personal += FILLER if not personal.strip(FILLER) else str(check_digit(personal))
        number = _number_and_optional(document_number, "", 0, long_ok=False)
        line2 = number[:10] + middle + personal
        return line1, line2 + str(check_digit(_composite_two_line(line2, 43)))
    if fmt is MrzFormat.TD2:
        number = _number_and_optional(document_number, optional_data, 7, long_ok=True)
        line2 = number[:10] + middle + number[10:]
        return line1, line2 + str(check_digit(_composite_two_line(line2, 35)))
    number = _number_and_optional(document_number, optional_data, width - 28, long_ok=False)
    return line1, number[:10] + middle + number[10:]


def build_td3(
    *,
    document_code: str = "P",
    issuing_state: str,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    date_of_birth: date | None,
    sex: str,
    expiry_date: date | None,
    optional_data: str = "",
) -> tuple[str, str]:
    """Compose the two lines of a valid TD3 (passport) MRZ; raises ValueError on bad fields.

    Builders check structure and compute every check digit; they do not validate country
    codes. Names are uppercased, spaces/hyphens become '<', and long names are truncated.
    """
    return _build_two_line(
        MrzFormat.TD3,
        document_code=document_code,
        issuing_state=issuing_state,
        surname=surname,
        given_names=given_names,
        document_number=document_number,
        nationality=nationality,
        date_of_birth=date_of_birth,
        sex=sex,
        expiry_date=expiry_date,
        optional_data=optional_data,
    )


def build_td2(
    *,
    document_code: str = "I",
    issuing_state: str,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    date_of_birth: date | None,
    sex: str,
    expiry_date: date | None,
    optional_data: str = "",
) -> tuple[str, str]:
    """Compose the two lines of a valid TD2 MRZ (document numbers over 9 chars allowed)."""
    return _build_two_line(
        MrzFormat.TD2,
        document_code=document_code,
        issuing_state=issuing_state,
        surname=surname,
        given_names=given_names,
        document_number=document_number,
        nationality=nationality,
        date_of_birth=date_of_birth,
        sex=sex,
        expiry_date=expiry_date,
        optional_data=optional_data,
    )


def build_mrva(
    *,
    document_code: str = "V",
    issuing_state: str,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    date_of_birth: date | None,
    sex: str,
    expiry_date: date | None,
    optional_data: str = "",
) -> tuple[str, str]:
    """Compose the two lines of a valid MRV-A (visa, 2 x 44) MRZ."""
    return _build_two_line(
        MrzFormat.MRVA,
        document_code=document_code,
        issuing_state=issuing_state,
        surname=surname,
        given_names=given_names,
        document_number=document_number,
        nationality=nationality,
        date_of_birth=date_of_birth,
        sex=sex,
        expiry_date=expiry_date,
        optional_data=optional_data,
    )


def build_mrvb(
    *,
    document_code: str = "V",
    issuing_state: str,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    date_of_birth: date | None,
    sex: str,
    expiry_date: date | None,
    optional_data: str = "",
) -> tuple[str, str]:
    """Compose the two lines of a valid MRV-B (visa, 2 x 36) MRZ."""
    return _build_two_line(
        MrzFormat.MRVB,
        document_code=document_code,
        issuing_state=issuing_state,
        surname=surname,
        given_names=given_names,
        document_number=document_number,
        nationality=nationality,
        date_of_birth=date_of_birth,
        sex=sex,
        expiry_date=expiry_date,
        optional_data=optional_data,
    )


def build_td1(
    *,
    document_code: str = "I",
    issuing_state: str,
    document_number: str,
    optional_data: str = "",
    date_of_birth: date | None,
    sex: str,
    expiry_date: date | None,
    nationality: str,
    optional_data_2: str = "",
    surname: str,
    given_names: str,
) -> tuple[str, str, str]:
    """Compose the three lines of a valid TD1 MRZ (document numbers over 9 chars allowed)."""
    line1 = _header(document_code, issuing_state) + _number_and_optional(
        document_number, optional_data, 15, long_ok=True
    )
    line2 = (
        _with_check(_yymmdd(date_of_birth))
        + _sex_char(sex)
        + _with_check(_yymmdd(expiry_date))
        + _pad(_mrz_chars(nationality, "nationality"), 3, "nationality")
        + _pad(_mrz_chars(optional_data_2, "optional data 2"), 11, "optional data 2")
    )
    line2 += str(check_digit(_composite_td1(line1, line2)))
    return line1, line2, _name_field(surname, given_names, 30)
