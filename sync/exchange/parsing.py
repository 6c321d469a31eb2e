"""Read an agreement file: TOML decoded by msgspec into Structs, then the cross-field rules.

``AgreementFile`` and ``PartyEntry`` state the file's shape: which keys exist
(``forbid_unknown_fields``), their types, and what one value may be (patterns, ranges and
lengths, ``Meta``). The rules that need more than one value follow in plain code: URLs and
public keys, distinct parties, paired posts keyed by the parties' countries, known record
types and fields, pseudonymised fields, the photo and referral flags, signature encodings.

Every defect is an ``AgreementError(field, message)`` whose ``field`` is a dotted path
(``parties[1].country``, ``record_types.crossing.colour``). msgspec's validation errors are
translated into the same paths and words (``_translate``): a person reads ``retention_days:
must be 1..3650``, never a JSON path or a Python type name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlparse

import msgspec
from msgspec import Meta

from registry.base64url import unb64url
from registry.receipts import public_key_from_text
from sync.exchange.model import (
    DEFAULT_BLINDING_BUDGET,
    DEFAULT_HIT_BUDGET,
    PHOTO,
    PROTECTION_REFERRAL,
    PSEUDONYMISABLE,
    RECORD_TYPES,
    REVEALS,
    Agreement,
    AgreementError,
    Party,
    canonical_content,
)

MAX_RETENTION_DAYS: Final = 3650
MAX_BUDGET: Final = 10_000_000
_SIGNATURE_BYTES: Final = 64
_NODE_CODE = r"[A-Z0-9][A-Z0-9-]{0,31}"
_POST_CODE = re.compile(_NODE_CODE)

Identifier = Annotated[str, Meta(pattern=r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")]
CountryCode = Annotated[str, Meta(pattern=r"\A[A-Z]{3}\Z")]
NodeCode = Annotated[str, Meta(pattern=rf"\A{_NODE_CODE}\Z")]


class PartyEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[[parties]]`` table as written."""

    country: CountryCode
    node: NodeCode
    url: str
    public_key: str


class AgreementFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An agreement file as written (see ``sync.exchange.model`` for every key)."""

    id: Identifier
    version: Annotated[int, Meta(ge=1)]
    title: str = ""
    valid_from: date
    valid_to: date
    purposes: tuple[str, ...]
    retention_days: Annotated[int, Meta(ge=1, le=MAX_RETENTION_DAYS)]
    share_photos: bool = False
    share_protection_referrals: bool = False
    daily_blinding_budget: Annotated[int, Meta(ge=1, le=MAX_BUDGET)] = DEFAULT_BLINDING_BUDGET
    daily_hit_budget: Annotated[int, Meta(ge=1, le=MAX_BUDGET)] = DEFAULT_HIT_BUDGET
    share_note_text: bool = False
    pseudonymised: tuple[str, ...] = ()
    parties: Annotated[tuple[PartyEntry, ...], Meta(min_length=2, max_length=2)]
    paired_posts: Annotated[tuple[dict[str, str], ...], Meta(min_length=1)]
    record_types: Annotated[dict[str, tuple[str, ...]], Meta(min_length=1)]
    detail_fields: dict[str, tuple[str, ...]] = {}
    signatures: dict[str, str] = {}


# ------------------------------------------------------------------------------------------
# msgspec's validation errors in the agreement's words
# ------------------------------------------------------------------------------------------
_STRINGS: Final = "must be an array of strings"
_IDENTIFIER: Final = "must be 1..64 characters of A-Z a-z 0-9 . _ -"
_PARTIES: Final = "must list exactly two [[parties]]"
_PAIRS: Final = "must list at least one [[paired_posts]]"
_RECORD_TYPES: Final = "must be a non-empty table"

# Generic words for a value of the wrong type, by msgspec's name of the expected type.
_TYPE_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "str": "must be a string",
        "int": "must be an integer",
        "bool": "must be true or false",
        "date": "must be a TOML date such as 2026-01-01 (no time, no quotes)",
        "array": "must be an array",
        "object": "must be a table",
    }
)
# Keys whose wrong type (or absence) deserves more than the generic words. ``[]`` stands for
# any item of an array, ``*`` for any key of a table whose keys are data.
_SHAPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "title": "must be a string",
        "purposes": _STRINGS,
        "pseudonymised": _STRINGS,
        "parties": _PARTIES,
        "parties[]": "must be a table",
        "paired_posts": _PAIRS,
        "paired_posts[]": "must be a table of country = post code",
        "record_types": _RECORD_TYPES,
        "record_types.*": _STRINGS,
        "detail_fields": "must be a table of record type = [fields]",
        "detail_fields.*": _STRINGS,
        "signatures": "must be a table of country = signature",
        "signatures.*": "must be a base64url string",
    }
)
# What a value that breaks its constraint (pattern, range, length) is told.
_CONSTRAINTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "id": _IDENTIFIER,
        "version": "must be 1 or more",
        "retention_days": f"must be 1..{MAX_RETENTION_DAYS}",
        "daily_blinding_budget": f"must be 1..{MAX_BUDGET:_} records a day",
        "daily_hit_budget": f"must be 1..{MAX_BUDGET:_} queries a day",
        "parties": _PARTIES,
        "parties[].country": "must be an ISO 3166 alpha-3 code such as MRT",
        "parties[].node": "must be a node code such as MR-NATIONAL",
        "paired_posts": _PAIRS,
        "record_types": _RECORD_TYPES,
    }
)
# Python types of the msgspec type names a table's value can have here.
_PYTHON_TYPES: Final[Mapping[str, type]] = MappingProxyType(
    {"str": str, "array": list, "object": dict}
)

_LOCATION = re.compile(r"(?P<what>.*?)(?: - at `\$(?P<where>[^`]*)`)?", re.DOTALL)
_KEY_PROBLEM = re.compile(
    r"Object (?P<problem>missing required|contains unknown) field `(?P<name>[^`]+)`"
)
_WRONG_TYPE = re.compile(r"Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`")
_STEP = re.compile(r"\.(?P<field>\w+)|\[(?P<index>\d+)\]|(?P<key>\[\.\.\.\])")

# One step of a path: a Struct field, an array index, or a key of a table whose keys are data
# (None while msgspec leaves it unnamed: ``[...]``).
_Step = tuple[Literal["field", "index", "key"], str | int | None]


def _steps(where: str) -> list[_Step]:
    steps: list[_Step] = []
    for match in _STEP.finditer(where):
        if match["field"] is not None:
            steps.append(("field", match["field"]))
        elif match["index"] is not None:
            steps.append(("index", int(match["index"])))
        else:
            steps.append(("key", None))
    return steps


def _dotted(steps: Sequence[_Step], *, template: bool = False) -> str:
    """``parties[1].country`` (or, as a template, ``parties[].country``; keys as ``*``)."""
    text = ""
    for kind, value in steps:
        if kind == "index":
            text += "[]" if template else f"[{value}]"
        else:
            name = "*" if template and kind == "key" else str(value)
            text += f".{name}" if text else name
    return text


def _name_keys(node: object, steps: Sequence[_Step], wanted: type) -> list[_Step] | None:
    """``steps`` with each unnamed table key named: the path, in the decoded TOML ``node``,
    to the first value that is not a ``wanted``; None when no such value is there."""
    if not steps:
        return None if isinstance(node, wanted) else []
    (kind, value), rest = steps[0], steps[1:]
    children: list[tuple[str | int, object]] = []
    if kind == "key" and value is None and isinstance(node, dict):
        children = list(node.items())
    elif kind == "index" and isinstance(node, list) and isinstance(value, int):
        children = [(value, node[value])] if value < len(node) else []
    elif isinstance(node, dict) and value in node:
        children = [(str(value), node[value])]
    for name, child in children:
        found = _name_keys(child, rest, wanted)
        if found is not None:
            return [(kind, name), *found]
    return None


def _translate(error: msgspec.ValidationError, raw: Mapping[str, object]) -> AgreementError:
    """The ``AgreementError`` a person should read for msgspec's ``error``."""
    located = _LOCATION.fullmatch(str(error))
    what, where = (located["what"], located["where"] or "") if located else (str(error), "")
    steps = _steps(where)
    key_problem = _KEY_PROBLEM.fullmatch(what)
    if key_problem is not None:
        steps.append(("field", key_problem["name"]))
        if key_problem["problem"] == "contains unknown":
            return AgreementError(_dotted(steps), "unknown field")
        return AgreementError(
            _dotted(steps), _SHAPES.get(_dotted(steps, template=True), "is required")
        )
    wrong_type = _WRONG_TYPE.fullmatch(what)
    if wrong_type is None:  # a value breaking its pattern, range or length
        return AgreementError(_dotted(steps), _CONSTRAINTS.get(_dotted(steps, template=True), what))
    expected = wrong_type["expected"].split(" | ")[0]
    if ("key", None) in steps:
        named = _name_keys(raw, steps, _PYTHON_TYPES.get(expected, object))
        steps = named if named is not None else steps[: steps.index(("key", None))]
    template = _dotted(steps, template=True)
    if template not in _SHAPES and template.endswith("[]") and template[:-2] in _SHAPES:
        steps, template = steps[:-1], template[:-2]  # a bad item: the whole array is misshapen
    message = _SHAPES.get(template) or _TYPE_WORDS.get(expected, f"must be {expected}")
    if expected in ("str", "int") and template not in _SHAPES and wrong_type["got"] == "bool":
        message += ", not a boolean"
    return AgreementError(_dotted(steps), message)


# ------------------------------------------------------------------------------------------
# The rules that need more than one value
# ------------------------------------------------------------------------------------------
def _names(values: tuple[str, ...], path: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not values and not allow_empty:
        raise AgreementError(path, "must not be empty")
    if any(not value.strip() for value in values):
        raise AgreementError(path, "must not contain empty strings")
    if len(set(values)) != len(values):
        raise AgreementError(path, "contains duplicates")
    return values


def _no_unknown(keys: Mapping[str, object], allowed: Sequence[str], path: str) -> None:
    unknown = sorted(set(keys) - set(allowed))
    if unknown:
        raise AgreementError(f"{path}.{unknown[0]}", "unknown field")


def _party(entry: PartyEntry, index: int) -> Party:
    path = f"parties[{index}]"
    parsed = urlparse(entry.url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise AgreementError(f"{path}.url", "must be an http(s) URL")
    try:
        public_key_from_text(entry.public_key)
    except ValueError as exc:
        raise AgreementError(f"{path}.public_key", f"not an Ed25519 public key: {exc}") from None
    return Party(entry.country, entry.node, entry.url, entry.public_key)


def _parties(entries: tuple[PartyEntry, ...]) -> tuple[Party, Party]:
    first, second = (_party(entry, index) for index, entry in enumerate(entries))
    for attribute in ("country", "node", "public_key"):
        if getattr(first, attribute) == getattr(second, attribute):
            raise AgreementError(f"parties[1].{attribute}", "must differ from parties[0]")
    return first, second


def _pairs(
    entries: tuple[dict[str, str], ...], parties: tuple[Party, Party]
) -> tuple[tuple[str, str], ...]:
    countries = [party.country for party in parties]
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        path = f"paired_posts[{index}]"
        _no_unknown(entry, countries, path)
        posts = []
        for country in countries:
            if country not in entry:
                raise AgreementError(f"{path}.{country}", "is required")
            post = entry[country]
            if not _POST_CODE.fullmatch(post):
                raise AgreementError(f"{path}.{country}", "must be a post code such as MR-GOGUI")
            if post in seen:
                raise AgreementError(f"{path}.{country}", f"post {post} is already paired")
            seen.add(post)
            posts.append(post)
        pairs.append((posts[0], posts[1]))
    return tuple(pairs)


def _record_types(shared: Mapping[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    record_types: dict[str, frozenset[str]] = {}
    for record_type, fields in shared.items():
        path = f"record_types.{record_type}"
        if record_type not in RECORD_TYPES:
            known = ", ".join(sorted(RECORD_TYPES))
            raise AgreementError(path, f"unknown record type (known: {known})")
        names = _names(fields, path)
        unknown = sorted(set(names) - RECORD_TYPES[record_type])
        if unknown:
            raise AgreementError(f"{path}.{unknown[0]}", f"{record_type} has no such field")
        record_types[record_type] = frozenset(names)
    return record_types


def _detail_fields(
    listed: Mapping[str, tuple[str, ...]], record_types: Mapping[str, frozenset[str]]
) -> dict[str, frozenset[str]]:
    """The detail tier: fields released only on an approved, purposed detail request, of
    record types shared in bulk, and not already shared in bulk."""
    detail: dict[str, frozenset[str]] = {}
    for record_type, fields in listed.items():
        path = f"detail_fields.{record_type}"
        if record_type not in record_types:
            raise AgreementError(path, "is not a record type shared in record_types")
        names = _names(fields, path)
        for name in names:
            if name not in RECORD_TYPES[record_type]:
                raise AgreementError(f"{path}.{name}", f"{record_type} has no such field")
            if name in record_types[record_type]:
                raise AgreementError(f"{path}.{name}", "is already exchanged in bulk")
        detail[record_type] = frozenset(names)
    return detail


def _pseudonymised(
    listed: tuple[str, ...], record_types: Mapping[str, frozenset[str]]
) -> frozenset[str]:
    for name in _names(listed, "pseudonymised", allow_empty=True):
        record_type, _, field_name = name.partition(".")
        if name not in PSEUDONYMISABLE:
            known = ", ".join(sorted(PSEUDONYMISABLE))
            raise AgreementError(f"pseudonymised.{name}", f"cannot be pseudonymised ({known})")
        if field_name not in record_types.get(record_type, frozenset()):
            raise AgreementError(
                f"pseudonymised.{name}", f"is not an allowed field of record_types.{record_type}"
            )
    pseudonymised = frozenset(listed)
    for record_type, fields in record_types.items():
        for field_name in sorted(fields):
            qualified = f"{record_type}.{field_name}"
            revealed = sorted(REVEALS.get(qualified, frozenset()) & pseudonymised)
            if revealed and qualified not in pseudonymised:
                raise AgreementError(
                    f"record_types.{record_type}.{field_name}",
                    f"shared in clear, it reveals {revealed[0]}, which is pseudonymised",
                )
    return pseudonymised


def _check_flags(
    record_types: Mapping[str, frozenset[str]], share_photos: bool, share_referrals: bool
) -> None:
    if PHOTO in record_types and not share_photos:
        raise AgreementError(f"record_types.{PHOTO}", "listed while share_photos is false")
    if PROTECTION_REFERRAL in record_types and not share_referrals:
        raise AgreementError(
            f"record_types.{PROTECTION_REFERRAL}",
            "listed while share_protection_referrals is false",
        )


def _signatures(signed: Mapping[str, str], parties: tuple[Party, Party]) -> dict[str, str]:
    _no_unknown(signed, [party.country for party in parties], "signatures")
    for country, value in signed.items():
        path = f"signatures.{country}"
        try:
            decoded = unb64url(value)
        except ValueError:
            raise AgreementError(path, "is not base64url") from None
        if len(decoded) != _SIGNATURE_BYTES:
            raise AgreementError(path, f"an Ed25519 signature is {_SIGNATURE_BYTES} bytes")
    return dict(signed)


# ------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------
def _read_source(source: str | Path) -> str:
    if isinstance(source, Path):
        return source.read_text(encoding="utf-8")
    if "\n" not in source and "=" not in source and Path(source).is_file():
        return Path(source).read_text(encoding="utf-8")
    return source


def load_agreement(source: str | Path) -> Agreement:
    """Parse and validate an agreement from a path (``Path``, or a str naming a file) or TOML text.

    Raises AgreementError(field, message) on any defect: invalid TOML, a missing or unknown
    key, a bad date/code/URL/key/signature encoding, an unknown record type or field, a
    pseudonymised field that is not allowed (or not pseudonymisable), a clear field that
    reveals a pseudonymised one, photos or protection referrals listed without their flag.
    Signatures are decoded but NOT verified here: see ``sync.exchange.signing``.
    """
    try:
        raw: dict[str, Any] = msgspec.toml.decode(_read_source(source))
    except msgspec.DecodeError as exc:
        raise AgreementError("toml", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise AgreementError("file", f"cannot read: {exc}") from None
    try:  # as msgspec.toml.decode(text, type=AgreementFile) would, keeping ``raw`` to sign
        document = msgspec.convert(
            raw, AgreementFile, builtin_types=(datetime, date, time), str_keys=True
        )
    except msgspec.ValidationError as exc:
        raise _translate(exc, raw) from None
    if document.valid_to < document.valid_from:
        raise AgreementError("valid_to", "is before valid_from")
    purposes = _names(document.purposes, "purposes")
    parties = _parties(document.parties)
    record_types = _record_types(document.record_types)
    _check_flags(record_types, document.share_photos, document.share_protection_referrals)
    return Agreement(
        id=document.id,
        version=document.version,
        title=document.title,
        valid_from=document.valid_from,
        valid_to=document.valid_to,
        purposes=purposes,
        retention_days=document.retention_days,
        daily_blinding_budget=document.daily_blinding_budget,
        daily_hit_budget=document.daily_hit_budget,
        parties=parties,
        paired_posts=_pairs(document.paired_posts, parties),
        record_types=MappingProxyType(record_types),
        detail_fields=MappingProxyType(_detail_fields(document.detail_fields, record_types)),
        pseudonymised=_pseudonymised(document.pseudonymised, record_types),
        share_photos=document.share_photos,
        share_protection_referrals=document.share_protection_referrals,
        share_note_text=document.share_note_text,
        signatures=MappingProxyType(_signatures(document.signatures, parties)),
        canonical=canonical_content(raw),
    )
