"""Data-sharing agreements as code: parse, verify, describe and ENFORCE a bilateral agreement.

An agreement is a versioned TOML file that both national nodes hold (example:
``deploy/agreements/mr-ml-2026.toml``). Top-level keys, then tables::

    id = "MR-ML-2026"                  # [A-Za-z0-9._-], 1..64
    version = 1                        # >= 1; bump it on every change (parties re-sign)
    title = "..."                      # optional
    valid_from = 2026-01-01            # TOML local dates, both inclusive
    valid_to = 2027-12-31
    purposes = ["border_management", "migration_statistics"]
    retention_days = 180               # 1..3650: the receiver purges partner records past it
    share_photos = false               # default false: photo rows AND image bytes
    share_protection_referrals = false # default false
    hmac_key_id = "mr-ml-2026-k1"      # names the shared HMAC key; the key itself is NOT here
    hmac_key_check = "0123456789abcdef"  # optional: key_check(key, hmac_key_id), 16 hex
    pseudonymised = ["travel_document.number", "traveller.surname", "traveller.given_names"]

    [[parties]]                        # exactly two
    country = "MRT"                    # ISO 3166 alpha-3
    node = "MR-NATIONAL"               # national node code
    url = "https://borderpost.example.mr"
    public_key = "<43 chars>"          # Ed25519, registry.receipts.public_key_to_text

    [[paired_posts]]                   # keys are the two party countries
    MRT = "MR-GOGUI"
    MLI = "ML-GOGUI"

    [record_types]                     # record type -> the fields that may leave
    crossing = ["id", "post", "direction", "occurred_at", "document_id", "traveller_id"]
    traveller = ["id", "surname", "given_names", "nationality", "sex", "date_of_birth"]
    travel_document = ["id", "traveller_id", "issuing_state", "document_type", "number"]

    [signatures]                       # country -> base64url Ed25519 signature (64 bytes)
    MRT = "..."
    MLI = "..."

Record types and fields are the columns of the registry tables ``crossing``, ``traveller``,
``travel_document``, ``photo`` and ``protection_referral``. A post code appears in at most
one pair.

Canonical form and signatures
    The canonical content is the parsed TOML document minus its top-level ``signatures`` key,
    serialised as JSON with sorted keys, separators ``(",", ":")``, ``ensure_ascii=False``,
    dates and times as ISO 8601 strings, encoded UTF-8 (``canonical_content``). Comments,
    layout and key order therefore do not matter; any change of meaning invalidates both
    signatures. Each party signs the canonical bytes with its national node's Ed25519 key
    (``sign_agreement``). An agreement is in force only when it parses, today lies in
    [valid_from, valid_to], and BOTH parties' signatures verify (``agreement_status``).

Pseudonyms (``pseudonym``)
    ``hex(HMAC-SHA256(key, message))``, lowercase, 64 characters, where ``message`` is UTF-8:

    * ``bp1|document_number|{STATE}|{NUMBER}``: both through
      ``registry.names.normalise_document_number`` (uppercase A-Z0-9 only, so ``"D<<"`` ->
      ``"D"`` and ``"A 12-345"`` -> ``"A12345"``);
    * ``bp1|name|{normalise_name(value)}``: one name part (surname or given names, Latin or
      Arabic script);
    * ``bp1|name_key|{name_key(surname, given_names)}``: the order-independent key of a full
      name (``traveller.name_key``, recomputed from the row's surname and given names).

    A value that is missing or normalises to nothing (or a document without an issuing
    state) has no pseudonym: the field is sent as ``null``, never in clear.

The HMAC key
    The shared secret (at least 32 bytes) is exchanged out of band and kept in a file on each
    national node, readable by its owner only; the TOML only names it (``hmac_key_id``) and,
    optionally, carries ``hmac_key_check`` so both sides can prove they hold the same key
    (``key_check``). Load it with ``read_hmac_key(path)``; every function that needs it takes
    it as the ``hmac_key`` parameter.

Enforcement
    ``filter_record`` is the ONE function through which a record leaves for the partner: it
    keeps only the allowed fields and replaces every pseudonymised field by its pseudonym.
    Whether the agreement is in force is checked once per exchange with ``agreement_status``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import urlparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.models import Crossing, Photo, ProtectionReferral, TravelDocument, Traveller
from registry.names import name_key, normalise_document_number, normalise_name
from registry.receipts import public_key_from_text, public_key_to_text

__all__ = [
    "CLEAR",
    "HMAC_KEY_MIN_BYTES",
    "PSEUDONYMISABLE",
    "PSEUDONYMISED",
    "RECORD_TYPES",
    "Agreement",
    "AgreementError",
    "Party",
    "PseudonymKind",
    "agreement_status",
    "canonical_content",
    "check_report",
    "describe",
    "filter_record",
    "key_check",
    "load_agreement",
    "pseudonym",
    "purge_before",
    "read_hmac_key",
    "sign_agreement",
    "signature_valid",
]

HMAC_KEY_MIN_BYTES: Final = 32
PSEUDONYM_VERSION: Final = "bp1"
CLEAR: Final = "clear"
PSEUDONYMISED: Final = "pseudonymised (HMAC-SHA256)"
NOT_SHARED: Final = "not shared"

PseudonymKind = Literal["document_number", "name", "name_key"]

# Every record type that could ever travel to the partner, with its columns.
RECORD_TYPES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        model.__tablename__: frozenset(column.name for column in model.__table__.columns)  # type: ignore[attr-defined]
        for model in (Crossing, Traveller, TravelDocument, Photo, ProtectionReferral)
    }
)
PHOTO: Final = "photo"
PROTECTION_REFERRAL: Final = "protection_referral"

# Fields that may be pseudonymised, and how.
PSEUDONYMISABLE: Final[Mapping[str, PseudonymKind]] = MappingProxyType(
    {
        "travel_document.number": "document_number",
        "traveller.surname": "name",
        "traveller.given_names": "name",
        "traveller.surname_ar": "name",
        "traveller.given_names_ar": "name",
        "traveller.name_key": "name_key",
    }
)

# A field shared in clear must not reveal a pseudonymised one.
_REVEALS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "travel_document.number_norm": frozenset({"travel_document.number"}),
        "travel_document.raw_mrz": frozenset(
            {"travel_document.number", "traveller.surname", "traveller.given_names"}
        ),
        # the receipt carries 8 bytes of an unkeyed hash of state:number (brute-forceable)
        "crossing.receipt": frozenset({"travel_document.number"}),
        "traveller.name_key": frozenset({"traveller.surname", "traveller.given_names"}),
        "traveller.surname_ar": frozenset({"traveller.surname"}),
        "traveller.given_names_ar": frozenset({"traveller.given_names"}),
    }
)

# Identifying fields that deserve a warning when shared in clear.
_IDENTIFYING: Final = frozenset(PSEUDONYMISABLE) | frozenset(_REVEALS)

# Fields reconciliation needs from the partner (warned about when missing).
_RECONCILE_NEEDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "crossing": ("id", "post", "direction", "occurred_at", "document_id"),
        "travel_document": ("id", "issuing_state", "number"),
    }
)

_TOP_REQUIRED: Final = frozenset(
    {
        "id",
        "version",
        "valid_from",
        "valid_to",
        "purposes",
        "retention_days",
        "hmac_key_id",
        "parties",
        "paired_posts",
        "record_types",
    }
)
_TOP_OPTIONAL: Final = frozenset(
    {
        "title",
        "share_photos",
        "share_protection_referrals",
        "hmac_key_check",
        "pseudonymised",
        "signatures",
    }
)
_PARTY_FIELDS: Final = frozenset({"country", "node", "url", "public_key"})
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_COUNTRY = re.compile(r"[A-Z]{3}")
_NODE_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,31}")
_KEY_CHECK = re.compile(r"[0-9a-f]{16}")
_SIGNATURES_HEADER = re.compile(r"^\s*\[\s*signatures\s*(\.[^\]]*)?\]\s*(#.*)?$")
_TABLE_HEADER = re.compile(r"^\s*\[")
_SIGNATURE_BYTES: Final = 64
_MAX_RETENTION_DAYS: Final = 3650


class AgreementError(ValueError):
    """An invalid agreement file; ``field`` names the offending key (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Party:
    """One signatory: its country, national node code, node URL and Ed25519 public key."""

    country: str
    node: str
    url: str
    public_key: str


@dataclass(frozen=True)
class Agreement:
    """A parsed agreement. Build it with ``load_agreement``; it is not yet known to be in force.

    ``paired_posts`` holds ``(post of parties[0], post of parties[1])``; use ``pairs_for`` to
    get them oriented as ``(our post, their post)``. ``record_types`` maps each shared record
    type to its allowed fields; ``pseudonymised`` holds ``"record_type.field"`` names.
    """

    id: str
    version: int
    title: str
    parties: tuple[Party, Party]
    paired_posts: tuple[tuple[str, str], ...]
    record_types: Mapping[str, frozenset[str]]
    pseudonymised: frozenset[str]
    purposes: tuple[str, ...]
    retention_days: int
    valid_from: date
    valid_to: date
    hmac_key_id: str
    hmac_key_check: str | None = None
    share_photos: bool = False
    share_protection_referrals: bool = False
    signatures: Mapping[str, str] = field(default_factory=dict)
    canonical: bytes = field(default=b"", repr=False, compare=False)

    def __hash__(self) -> int:
        return hash((self.canonical, tuple(sorted(self.signatures.items()))))

    @property
    def content_sha256(self) -> str:
        """Fingerprint of the canonical content: both parties must see the same value."""
        return hashlib.sha256(self.canonical).hexdigest()

    def party(self, code: str) -> Party:
        """The party with this country code or node code; KeyError if none."""
        for party in self.parties:
            if code in (party.country, party.node):
                return party
        raise KeyError(code)

    def partner_of(self, code: str) -> Party:
        """The other party, given our country code or node code."""
        ours = self.party(code)
        return self.parties[1] if ours is self.parties[0] else self.parties[0]

    def pairs_for(self, code: str) -> tuple[tuple[str, str], ...]:
        """The post pairs as ``(our post, their post)`` for the party ``code``."""
        if self.party(code) is self.parties[0]:
            return self.paired_posts
        return tuple((theirs, ours) for ours, theirs in self.paired_posts)

    def is_shared(self, record_type: str) -> bool:
        """True when records of this type may leave at all (flags included)."""
        if record_type == PHOTO and not self.share_photos:
            return False
        if record_type == PROTECTION_REFERRAL and not self.share_protection_referrals:
            return False
        return record_type in self.record_types


# ------------------------------------------------------------------------------------------
# Pseudonyms and the HMAC key
# ------------------------------------------------------------------------------------------
def _check_key(hmac_key: bytes) -> None:
    if not isinstance(hmac_key, bytes | bytearray) or len(hmac_key) < HMAC_KEY_MIN_BYTES:
        raise ValueError(f"the agreement HMAC key must be at least {HMAC_KEY_MIN_BYTES} bytes")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _hmac_hex(hmac_key: bytes, *parts: str) -> str:
    message = "|".join((PSEUDONYM_VERSION, *parts)).encode("utf-8")
    return hmac.new(bytes(hmac_key), message, hashlib.sha256).hexdigest()


def pseudonym(
    kind: PseudonymKind,
    value: Any,
    *,
    hmac_key: bytes,
    issuing_state: str | None = None,
    given_names: str | None = None,
) -> str | None:
    """The pseudonym of a value, or None when there is nothing to pseudonymise.

    ``kind``: ``"document_number"`` (``issuing_state`` required), ``"name"`` (one name part),
    or ``"name_key"`` (``value`` is the surname, ``given_names`` the given names; order
    independent). See the module docstring for the exact messages. Raises ValueError for an
    unknown kind or a key shorter than 32 bytes.
    """
    _check_key(hmac_key)
    if kind == "document_number":
        number = normalise_document_number(_text(value)) if value is not None else ""
        state = normalise_document_number(_text(issuing_state)) if issuing_state is not None else ""
        if not number or not state:
            return None
        return _hmac_hex(hmac_key, kind, state, number)
    if kind == "name":
        normalised = normalise_name(_text(value)) if value is not None else ""
        return _hmac_hex(hmac_key, kind, normalised) if normalised else None
    if kind == "name_key":
        surname = _text(value) if value is not None else ""
        given = _text(given_names) if given_names is not None else ""
        key = name_key(surname, given)
        return _hmac_hex(hmac_key, kind, key) if key else None
    raise ValueError(f"unknown pseudonym kind {kind!r}")


def key_check(hmac_key: bytes, hmac_key_id: str) -> str:
    """16 hex characters proving possession of the key without revealing it.

    ``hmac_key_check`` in the TOML holds this value; it depends on the key and its id only,
    so it survives new versions of the agreement.
    """
    _check_key(hmac_key)
    return _hmac_hex(hmac_key, "key-check", hmac_key_id)[:16]


def read_hmac_key(path: str | Path) -> bytes:
    """Read the shared HMAC key: one line of hex (64+ digits) or base64url (32+ bytes).

    The file must not be readable by group or others (``chmod 600``). Raises ValueError.
    """
    path = Path(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and os.name == "posix":
        raise ValueError(f"HMAC key file {path} has permissions {mode:04o}; chmod 600 {path}")
    text = path.read_text(encoding="ascii").strip()
    if re.fullmatch(r"(?:[0-9a-fA-F]{2}){32,}", text):
        key = bytes.fromhex(text)
    else:
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        except ValueError as exc:
            raise ValueError(f"HMAC key file {path} is neither hex nor base64url") from exc
    _check_key(key)
    return key


# ------------------------------------------------------------------------------------------
# Enforcement
# ------------------------------------------------------------------------------------------
def _pseudonymise_field(qualified: str, row: Mapping[str, Any], hmac_key: bytes) -> str | None:
    kind = PSEUDONYMISABLE[qualified]
    name = qualified.split(".", 1)[1]
    if kind == "document_number":
        state = row.get("issuing_state")
        return pseudonym(kind, row.get(name), hmac_key=hmac_key, issuing_state=state)
    if kind == "name_key":
        surname, given = row.get("surname"), row.get("given_names")
        if surname is None and given is None:
            return None
        return pseudonym(kind, surname, hmac_key=hmac_key, given_names=given)
    return pseudonym(kind, row.get(name), hmac_key=hmac_key)


def filter_record(
    agreement: Agreement, record_type: str, row: Mapping[str, Any], *, hmac_key: bytes
) -> dict[str, Any] | None:
    """What of ``row`` may leave for the partner: THE enforcement point of an agreement.

    Returns None when the record type is not shared (photos and protection referrals also
    need their flag). Otherwise a new dict holding only allowed fields: clear fields present
    in ``row`` are copied unchanged; every pseudonymised field is present and holds its
    pseudonym, or None when it has none: the clear value never leaves. Values needed to compute a
    pseudonym (issuing state, surname and given names) are read from ``row`` even when they
    are not themselves shared. Does NOT check dates or signatures: call ``agreement_status``
    before an exchange.
    """
    _check_key(hmac_key)
    if not agreement.is_shared(record_type):
        return None
    out: dict[str, Any] = {}
    for name in agreement.record_types[record_type]:
        qualified = f"{record_type}.{name}"
        if qualified in agreement.pseudonymised:
            if qualified in PSEUDONYMISABLE:  # else a hand-made agreement: never in clear
                out[name] = _pseudonymise_field(qualified, row, hmac_key)
        elif _REVEALS.get(qualified, frozenset()) & agreement.pseudonymised:
            continue  # load_agreement refuses this; re-checked for hand-made agreements
        elif name in row:
            out[name] = row[name]
    return out


# ------------------------------------------------------------------------------------------
# Canonical form and signatures
# ------------------------------------------------------------------------------------------
def _json_default(value: Any) -> str:
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    raise TypeError(f"cannot canonicalise {type(value).__name__}")


def canonical_content(data: Mapping[str, Any]) -> bytes:
    """The signed bytes: ``data`` minus ``signatures``, as sorted-key compact UTF-8 JSON."""
    content = {key: value for key, value in data.items() if key != "signatures"}
    return json.dumps(
        content,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_json_default,
    ).encode("utf-8")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def signature_valid(agreement: Agreement, country: str) -> bool:
    """True when the party ``country`` has signed this exact canonical content."""
    signature = agreement.signatures.get(country)
    if signature is None:
        return False
    try:
        key = public_key_from_text(agreement.party(country).public_key)
        key.verify(_unb64url(signature), agreement.canonical)
    except (InvalidSignature, ValueError, KeyError):
        return False
    return True


def _strip_signatures(text: str) -> str:
    """The TOML text without its ``[signatures]`` table(s) (and trailing blank lines)."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if _SIGNATURES_HEADER.match(line):
            skipping = True
            continue
        if skipping and _TABLE_HEADER.match(line):
            skipping = False
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept) + "\n"


def sign_agreement(text: str, party_code: str, private_key: Ed25519PrivateKey) -> str:
    """Return ``text`` with ``party_code``'s signature added (or replaced) in ``[signatures]``.

    ``party_code`` is a party's country or node code; ``private_key`` must match that
    party's public key. The other party's existing signature is kept (it stays valid only if
    the content did not change). Raises AgreementError.
    """
    agreement = load_agreement(text)
    try:
        party = agreement.party(party_code)
    except KeyError:
        raise AgreementError("signatures", f"{party_code!r} is not a party") from None
    ours = public_key_to_text(public_key_from_text(party.public_key))
    if public_key_to_text(private_key.public_key()) != ours:
        raise AgreementError(
            f"signatures.{party.country}",
            f"the private key does not match the public key of {party.country}",
        )
    body = _strip_signatures(text)
    try:
        remaining = tomllib.loads(body)
    except tomllib.TOMLDecodeError as exc:
        raise AgreementError("signatures", f"cannot remove the signatures table: {exc}") from exc
    if "signatures" in remaining or canonical_content(remaining) != agreement.canonical:
        raise AgreementError("signatures", "must be a [signatures] table of its own")
    signatures = dict(agreement.signatures)
    signatures[party.country] = _b64url(private_key.sign(agreement.canonical))
    lines = [f'{country} = "{signatures[country]}"' for country in sorted(signatures)]
    return body + "\n[signatures]\n" + "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# Parsing and validation
# ------------------------------------------------------------------------------------------
def _require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
    if key not in data:
        raise AgreementError(path, "is required")
    value = data[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise AgreementError(path, f"must be {_kind_name(kind)}, not a boolean")
    if not isinstance(value, kind):
        raise AgreementError(path, f"must be {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "a boolean", list: "an array"}
    names |= {dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _no_unknown(data: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        prefix = f"{path}." if path else ""
        raise AgreementError(f"{prefix}{unknown[0]}", "unknown field")


def _date(data: Mapping[str, Any], key: str) -> date:
    value = data.get(key)
    if value is None:
        raise AgreementError(key, "is required")
    if type(value) is not date:
        raise AgreementError(key, "must be a TOML date such as 2026-01-01 (no time, no quotes)")
    return value


def _string_list(value: Any, path: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AgreementError(path, "must be an array of strings")
    if not value and not allow_empty:
        raise AgreementError(path, "must not be empty")
    if any(not item.strip() for item in value):
        raise AgreementError(path, "must not contain empty strings")
    if len(set(value)) != len(value):
        raise AgreementError(path, "contains duplicates")
    return tuple(value)


def _parse_party(raw: Any, index: int) -> Party:
    path = f"parties[{index}]"
    if not isinstance(raw, dict):
        raise AgreementError(path, "must be a table")
    _no_unknown(raw, _PARTY_FIELDS, path)
    country = _require(raw, "country", str, f"{path}.country")
    if not _COUNTRY.fullmatch(country):
        raise AgreementError(f"{path}.country", "must be an ISO 3166 alpha-3 code such as MRT")
    node = _require(raw, "node", str, f"{path}.node")
    if not _NODE_CODE.fullmatch(node):
        raise AgreementError(f"{path}.node", "must be a node code such as MR-NATIONAL")
    url = _require(raw, "url", str, f"{path}.url")
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise AgreementError(f"{path}.url", "must be an http(s) URL")
    key = _require(raw, "public_key", str, f"{path}.public_key")
    try:
        public_key_from_text(key)
    except ValueError as exc:
        raise AgreementError(f"{path}.public_key", f"not an Ed25519 public key: {exc}") from None
    return Party(country, node, url, key)


def _parse_parties(raw: Any) -> tuple[Party, Party]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise AgreementError("parties", "must list exactly two [[parties]]")
    first, second = (_parse_party(item, index) for index, item in enumerate(raw))
    for attribute in ("country", "node", "public_key"):
        if getattr(first, attribute) == getattr(second, attribute):
            raise AgreementError(f"parties[1].{attribute}", "must differ from parties[0]")
    return first, second


def _parse_pairs(raw: Any, parties: tuple[Party, Party]) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list) or not raw:
        raise AgreementError("paired_posts", "must list at least one [[paired_posts]]")
    countries = [party.country for party in parties]
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"paired_posts[{index}]"
        if not isinstance(item, dict):
            raise AgreementError(path, "must be a table of country = post code")
        _no_unknown(item, countries, path)
        posts = []
        for country in countries:
            post = _require(item, country, str, f"{path}.{country}")
            if not _NODE_CODE.fullmatch(post):
                raise AgreementError(f"{path}.{country}", "must be a post code such as MR-GOGUI")
            if post in seen:
                raise AgreementError(f"{path}.{country}", f"post {post} is already paired")
            seen.add(post)
            posts.append(post)
        pairs.append((posts[0], posts[1]))
    return tuple(pairs)


def _parse_record_types(raw: Any) -> dict[str, frozenset[str]]:
    if not isinstance(raw, dict) or not raw:
        raise AgreementError("record_types", "must be a non-empty table")
    record_types: dict[str, frozenset[str]] = {}
    for record_type, fields in raw.items():
        path = f"record_types.{record_type}"
        if record_type not in RECORD_TYPES:
            known = ", ".join(sorted(RECORD_TYPES))
            raise AgreementError(path, f"unknown record type (known: {known})")
        names = _string_list(fields, path)
        unknown = sorted(set(names) - RECORD_TYPES[record_type])
        if unknown:
            raise AgreementError(f"{path}.{unknown[0]}", f"{record_type} has no such field")
        record_types[record_type] = frozenset(names)
    return record_types


def _parse_pseudonymised(raw: Any, record_types: Mapping[str, frozenset[str]]) -> frozenset[str]:
    names = _string_list(raw, "pseudonymised", allow_empty=True)
    for name in names:
        record_type, _, field_name = name.partition(".")
        if name not in PSEUDONYMISABLE:
            known = ", ".join(sorted(PSEUDONYMISABLE))
            raise AgreementError(f"pseudonymised.{name}", f"cannot be pseudonymised ({known})")
        if field_name not in record_types.get(record_type, frozenset()):
            raise AgreementError(
                f"pseudonymised.{name}", f"is not an allowed field of record_types.{record_type}"
            )
    pseudonymised = frozenset(names)
    for record_type, fields in record_types.items():
        for field_name in sorted(fields):
            qualified = f"{record_type}.{field_name}"
            revealed = sorted(_REVEALS.get(qualified, frozenset()) & pseudonymised)
            if revealed and qualified not in pseudonymised:
                raise AgreementError(
                    f"record_types.{record_type}.{field_name}",
                    f"shared in clear, it reveals {revealed[0]}, which is pseudonymised",
                )
    return pseudonymised


def _parse_flag(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise AgreementError(key, "must be true or false")
    return value


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


def _parse_signatures(raw: Any, parties: tuple[Party, Party]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise AgreementError("signatures", "must be a table of country = signature")
    _no_unknown(raw, [party.country for party in parties], "signatures")
    signatures: dict[str, str] = {}
    for country, value in raw.items():
        path = f"signatures.{country}"
        if not isinstance(value, str):
            raise AgreementError(path, "must be a base64url string")
        try:
            decoded = _unb64url(value)
        except ValueError:
            raise AgreementError(path, "is not base64url") from None
        if len(decoded) != _SIGNATURE_BYTES:
            raise AgreementError(path, f"an Ed25519 signature is {_SIGNATURE_BYTES} bytes")
        signatures[country] = value
    return signatures


def _parse_header(data: Mapping[str, Any]) -> dict[str, Any]:
    agreement_id = _require(data, "id", str, "id")
    if not _ID.fullmatch(agreement_id):
        raise AgreementError("id", "must be 1..64 characters of A-Z a-z 0-9 . _ -")
    version = _require(data, "version", int, "version")
    if version < 1:
        raise AgreementError("version", "must be 1 or more")
    title = data.get("title", "")
    if not isinstance(title, str):
        raise AgreementError("title", "must be a string")
    valid_from, valid_to = _date(data, "valid_from"), _date(data, "valid_to")
    if valid_to < valid_from:
        raise AgreementError("valid_to", "is before valid_from")
    retention = _require(data, "retention_days", int, "retention_days")
    if not 1 <= retention <= _MAX_RETENTION_DAYS:
        raise AgreementError("retention_days", f"must be 1..{_MAX_RETENTION_DAYS}")
    key_id = _require(data, "hmac_key_id", str, "hmac_key_id")
    if not _ID.fullmatch(key_id):
        raise AgreementError("hmac_key_id", "must be 1..64 characters of A-Z a-z 0-9 . _ -")
    check = data.get("hmac_key_check")
    if check is not None and not (isinstance(check, str) and _KEY_CHECK.fullmatch(check)):
        raise AgreementError("hmac_key_check", "must be 16 lowercase hex characters")
    return {
        "id": agreement_id,
        "version": version,
        "title": title,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "purposes": _string_list(data.get("purposes"), "purposes"),
        "retention_days": retention,
        "hmac_key_id": key_id,
        "hmac_key_check": check,
    }


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
    Signatures are decoded but NOT verified here: see ``agreement_status``.
    """
    try:
        data = tomllib.loads(_read_source(source))
    except tomllib.TOMLDecodeError as exc:
        raise AgreementError("toml", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise AgreementError("file", f"cannot read: {exc}") from None
    _no_unknown(data, _TOP_REQUIRED | _TOP_OPTIONAL, "")
    header = _parse_header(data)
    parties = _parse_parties(data.get("parties"))
    record_types = _parse_record_types(data.get("record_types"))
    share_photos = _parse_flag(data, "share_photos")
    share_referrals = _parse_flag(data, "share_protection_referrals")
    _check_flags(record_types, share_photos, share_referrals)
    return Agreement(
        **header,
        parties=parties,
        paired_posts=_parse_pairs(data.get("paired_posts"), parties),
        record_types=MappingProxyType(record_types),
        pseudonymised=_parse_pseudonymised(data.get("pseudonymised", []), record_types),
        share_photos=share_photos,
        share_protection_referrals=share_referrals,
        signatures=MappingProxyType(_parse_signatures(data.get("signatures"), parties)),
        canonical=canonical_content(data),
    )


# ------------------------------------------------------------------------------------------
# Status, description and the CLI report
# ------------------------------------------------------------------------------------------
def agreement_status(agreement: Agreement, today: date) -> tuple[bool, list[str]]:
    """``(in_force, problems)``: in force only inside its validity window and signed by both.

    Every problem stops the exchange. An invalid file never gets this far: ``load_agreement``
    raises.
    """
    problems: list[str] = []
    if today < agreement.valid_from:
        problems.append(f"not yet valid: in force from {agreement.valid_from.isoformat()}")
    if today > agreement.valid_to:
        problems.append(f"expired on {agreement.valid_to.isoformat()}")
    for party in agreement.parties:
        label = f"{party.country} ({party.node})"
        if party.country not in agreement.signatures:
            problems.append(f"not signed by {label}")
        elif not signature_valid(agreement, party.country):
            problems.append(f"the signature of {label} does not verify")
    return not problems, problems


def purge_before(agreement: Agreement, today: date) -> date:
    """Partner records that occurred before this date are past retention and must go."""
    return date.fromordinal(today.toordinal() - agreement.retention_days)


def describe(agreement: Agreement) -> list[dict[str, str]]:
    """What the agreement shares, one row per field, then its settings.

    Rows are ``{"record_type", "field", "shared_as"}``; ``shared_as`` is ``"clear"``,
    ``"pseudonymised (HMAC-SHA256)"`` or ``"not shared"`` (``field`` ``"*"`` for a whole
    record type). Settings come last under record type ``"(agreement)"``: photos,
    protection referrals, retention, purposes, HMAC key id, validity.
    """
    rows: list[dict[str, str]] = []
    for record_type in sorted(RECORD_TYPES):
        if not agreement.is_shared(record_type):
            rows.append({"record_type": record_type, "field": "*", "shared_as": NOT_SHARED})
            continue
        for name in sorted(agreement.record_types[record_type]):
            qualified = f"{record_type}.{name}"
            how = PSEUDONYMISED if qualified in agreement.pseudonymised else CLEAR
            rows.append({"record_type": record_type, "field": name, "shared_as": how})
    settings = {
        "photos": "shared" if agreement.share_photos else NOT_SHARED,
        "protection_referrals": ("shared" if agreement.share_protection_referrals else NOT_SHARED),
        "retention_days": f"{agreement.retention_days} days",
        "purposes": ", ".join(agreement.purposes),
        "hmac_key_id": agreement.hmac_key_id,
        "validity": f"{agreement.valid_from.isoformat()} .. {agreement.valid_to.isoformat()}",
    }
    rows.extend(
        {"record_type": "(agreement)", "field": name, "shared_as": value}
        for name, value in settings.items()
    )
    return rows


def _warnings(agreement: Agreement) -> list[str]:
    warnings: list[str] = []
    for record_type, fields in sorted(agreement.record_types.items()):
        for name in sorted(fields):
            qualified = f"{record_type}.{name}"
            if qualified in _IDENTIFYING and qualified not in agreement.pseudonymised:
                warnings.append(f"{qualified} is identifying and shared in clear")
    for record_type, needed in _RECONCILE_NEEDS.items():
        missing = [
            name for name in needed if name not in agreement.record_types.get(record_type, ())
        ]
        if missing:
            warnings.append(
                f"reconciliation needs {record_type} fields not shared: {', '.join(missing)}"
            )
    if agreement.share_photos and PHOTO not in agreement.record_types:
        warnings.append("share_photos is true but record_types.photo lists no field")
    if agreement.share_protection_referrals and PROTECTION_REFERRAL not in agreement.record_types:
        warnings.append(
            "share_protection_referrals is true but record_types.protection_referral lists no field"
        )
    return warnings


def _summary(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "version": agreement.version,
        "title": agreement.title,
        "content_sha256": agreement.content_sha256,
        "valid_from": agreement.valid_from.isoformat(),
        "valid_to": agreement.valid_to.isoformat(),
        "parties": [
            {
                "country": party.country,
                "node": party.node,
                "url": party.url,
                "public_key": party.public_key,
                "signed": party.country in agreement.signatures,
                "signature_valid": signature_valid(agreement, party.country),
            }
            for party in agreement.parties
        ],
        "paired_posts": [
            {agreement.parties[0].country: ours, agreement.parties[1].country: theirs}
            for ours, theirs in agreement.paired_posts
        ],
        "hmac_key_id": agreement.hmac_key_id,
        "purge_before": None,
    }


def _key_problems(
    agreement: Agreement, hmac_key_available: bool, hmac_key: bytes | None
) -> list[str]:
    if hmac_key is not None:
        try:
            check = key_check(hmac_key, agreement.hmac_key_id)
        except ValueError as exc:
            return [str(exc)]
        if agreement.hmac_key_check is not None and check != agreement.hmac_key_check:
            return [f"the HMAC key does not match hmac_key_check of {agreement.hmac_key_id}"]
        return []
    if not hmac_key_available:
        return [f"the HMAC key {agreement.hmac_key_id} is not configured on this node"]
    return []


def check_report(
    source: str | Path,
    *,
    today: date,
    hmac_key_available: bool,
    hmac_key: bytes | None = None,
) -> dict[str, Any]:
    """A JSON-able report for ``borderpost agreement check FILE``.

    Keys: ``file``, ``valid`` (parsed), ``errors`` (``[{"field", "message"}]``), ``agreement``
    (summary, or None), ``in_force``, ``problems`` (everything that stops the exchange),
    ``warnings`` (allowed but worth a look), ``shares`` (``describe``) and
    ``exchange_allowed``: valid, in force, and the HMAC key present (and matching
    ``hmac_key_check`` when ``hmac_key`` is given).
    """
    report: dict[str, Any] = {
        "file": str(source) if isinstance(source, Path) or "\n" not in source else None,
        "valid": False,
        "errors": [],
        "agreement": None,
        "in_force": False,
        "problems": [],
        "warnings": [],
        "shares": [],
        "exchange_allowed": False,
    }
    try:
        agreement = load_agreement(source)
    except AgreementError as exc:
        report["errors"] = [{"field": exc.field, "message": exc.message}]
        report["problems"] = [f"invalid agreement: {exc}"]
        return report
    in_force, problems = agreement_status(agreement, today)
    problems += _key_problems(agreement, hmac_key_available or hmac_key is not None, hmac_key)
    summary = _summary(agreement)
    summary["purge_before"] = purge_before(agreement, today).isoformat()
    report |= {
        "valid": True,
        "agreement": summary,
        "in_force": in_force,
        "problems": problems,
        "warnings": _warnings(agreement),
        "shares": describe(agreement),
        "exchange_allowed": not problems,
    }
    return report
