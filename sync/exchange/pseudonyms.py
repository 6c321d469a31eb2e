"""Pseudonyms the partner cannot reverse: commutative blinding on Curve25519.

Each national node keeps its OWN secret scalar for an agreement (``BlindingKey``, a file
readable by its owner only, never shared, never committed); nothing secret is common to the
two countries. Two groups are used, each with its own scalar derived from that one secret:

* exchanged records (``blind_message``, ``reblind``): X25519, the x-only Montgomery ladder
  (OpenSSL's, through ``cryptography``: 32 us here against 36 us for libsodium's, with the
  same results; ``tests/exchange/test_exchange_pseudonyms.py`` checks RFC 7748's vector). An
  identity element is hashed straight to a u-coordinate (``element_u``: SHA-512 of a domain-
  separated message, reduced mod 2^255-19). About half such u lie on the curve's twist;
  X25519 is defined and safe on both (the twist has a 2^253 prime-order subgroup, and the
  clamped scalar is a multiple of 8, so a low-order component reveals nothing of the key).
  x-only multiplication commutes, which is all the double blinding needs, at half the cost
  of ristretto255 (30 against 65 us per element here, hash included): the exchange blinds
  four elements per crossing on both sides.
* hit/no-hit (``sync.exchange.hits``, an oblivious PRF): ristretto255 (``evaluate``,
  ``evaluate_message``), because the asker must unblind with the inverse of its one-time
  scalar, which X25519's clamping does not allow.

Identity elements (``element_message``), all normalised as in ``registry.names``:

* ``travel_document.number``: ``bp2|document|{STATE}|{NUMBER}`` (issuing state + number);
* ``traveller.date_of_birth``, ``traveller.nationality``, ``travel_document.expiry_date``,
  ``traveller.surname``, ``traveller.given_names`` (and the Arabic forms): bound to the
  crossing's document, ``bp2|{field}|{STATE}|{NUMBER}|{value}``, so that equal values on
  different documents cannot be linked (no frequency count of birth dates or nationalities);
* ``traveller.name_key``: the *person* element, ``bp2|person|{name key}|{birth date}|
  {nationality}`` (birth date and nationality only when the agreement shares them), NOT bound
  to a document, so that one person is recognised across two documents.

Exchange (double blinding, an ECDH private set intersection done record by record)
    The sender A blinds each element with its scalar ``a`` and sends ``H(x)^a`` in the
    batch. The receiver B checks it is a valid group element, raises it to its scalar ``b``
    and keeps ``H(x)^ab`` in the partner record (never ``H(x)^a``); it returns ``H(x)^ab`` in
    its signed acknowledgement, and A keeps it with its own outgoing record
    (``sync.models.ExchangeKey``). The other direction is symmetric, so both sides end up
    holding the same double-blinded keys for both sides' crossings, and reconciliation
    compares them (``sync.reconcile.service``). Blinding happens as records are exchanged,
    never at reconciliation time.

Why a guess cannot be tested offline
    ``H(g)^ab`` for a guess ``g`` needs both scalars. The partner holds ``b`` and
    ``H(x)^ab``; without ``a`` it cannot compute ``H(g)^ab`` (the Diffie-Hellman assumption
    on Curve25519 and its twist, the one X25519 rests on). Each guess needs an online
    request to the other side: a hit/no-hit evaluation (``sync.exchange.hits``, an oblivious
    PRF) or a record blinded in an acknowledgement. Both are authenticated by the
    agreement's Ed25519 keys, counted against the agreement's daily budgets
    (``daily_hit_budget``, ``daily_blinding_budget``) and audited on both sides with the
    agreement version.

Pseudonymous ids (``pseudonymous_id``)
    Crossing, traveller and document ids that leave are ``hex(HMAC-SHA256(k, uuid))[:32]``
    with ``k = HMAC-SHA256(scalar, "bp2|ids|{agreement id}")``; the X25519 scalar of the
    exchange is ``HMAC-SHA256(scalar, "bp2|exchange")``. Ids are stable for one agreement (so
    cases survive a new version of it), unrelated across agreements, never our UUIDs.

Encoding
    A blinded element (an X25519 u-coordinate, or a ristretto255 encoding for hit/no-hit)
    travels as unpadded base64url of its 32 bytes (43 characters). The
    scalar file holds 64 hex digits (a canonical, non-zero scalar); ``write_blinding_key``
    creates one with mode 0600.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import rbcl
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from registry.base64url import b64url, unb64url
from registry.names import name_key, normalise_document_number, normalise_name

PSEUDONYM_VERSION: Final = "bp2"
POINT_BYTES: Final = 32
ENCODED_LENGTH: Final = 43
_SCALAR_HEX = re.compile(r"[0-9a-fA-F]{64}")
_ENCODED = re.compile(r"[A-Za-z0-9_-]{43}")


def encode_point(point: bytes) -> str:
    """A group element as it travels: 43 characters of unpadded base64url."""
    return b64url(point)


def decode_point(text: Any) -> bytes:
    """A received group element; ValueError unless it is a valid ristretto255 encoding."""
    if not isinstance(text, str) or not _ENCODED.fullmatch(text):
        raise ValueError("a blinded value is 43 characters of base64url")
    try:
        point = unb64url(text)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a blinded value is 43 characters of base64url") from exc
    if len(point) != POINT_BYTES or not rbcl.crypto_core_ristretto255_is_valid_point(point):
        raise ValueError("not a ristretto255 group element")
    if point == bytes(POINT_BYTES):
        raise ValueError("the identity element is not a blinded value")
    return point


def element_point(message: str) -> bytes:
    """``H(message)`` on ristretto255 (SHA-512, then from_hash): hit/no-hit queries."""
    digest = hashlib.sha512(message.encode("utf-8")).digest()
    return bytes(rbcl.crypto_core_ristretto255_from_hash(digest))


_FIELD_PRIME: Final = 2**255 - 19
# u-coordinates of the points of order 1, 2, 4 and 8 (and their non-canonical forms): a
# partner sending one would learn nothing (X25519 of them is all-zero), but it is not a value.
_LOW_ORDER_U: Final = frozenset(
    {
        0,
        1,
        _FIELD_PRIME - 1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
    }
)
_X25519_DOMAIN: Final = b"bp3|x25519|"


def element_u(message: str) -> bytes:
    """``H(message)`` for exchanged records: an X25519 u-coordinate (SHA-512 of the
    domain-separated message, reduced mod 2^255-19, 32 bytes little-endian)."""
    digest = hashlib.sha512(_X25519_DOMAIN + message.encode("utf-8")).digest()
    return (int.from_bytes(digest, "little") % _FIELD_PRIME).to_bytes(POINT_BYTES, "little")


def decode_element(text: Any) -> bytes:
    """A received blinded element of an exchanged record; ValueError unless it is the
    canonical encoding of a u-coordinate of no small order."""
    if not isinstance(text, str) or not _ENCODED.fullmatch(text):
        raise ValueError("a blinded value is 43 characters of base64url")
    try:
        u = unb64url(text)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a blinded value is 43 characters of base64url") from exc
    number = int.from_bytes(u, "little")
    if len(u) != POINT_BYTES or number >= _FIELD_PRIME:
        raise ValueError("not a canonical Curve25519 u-coordinate")
    if number in _LOW_ORDER_U:
        raise ValueError("a point of small order is not a blinded value")
    return u


@functools.lru_cache(maxsize=64)
def _x25519_key(scalar: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(scalar)  # clamped as RFC 7748 says


def _x25519(scalar: bytes, u: bytes) -> bytes:
    """X25519(scalar, u) (RFC 7748); ValueError when the result is all-zero (small order)."""
    try:
        return _x25519_key(scalar).exchange(X25519PublicKey.from_public_bytes(u))
    except ValueError as exc:  # OpenSSL refuses an all-zero shared value
        raise ValueError("a point of small order is not a blinded value") from exc


@functools.lru_cache(maxsize=64)
def _derived(scalar: bytes, purpose: bytes) -> bytes:
    return hmac.digest(scalar, PSEUDONYM_VERSION.encode() + b"|" + purpose, "sha256")


@dataclass(frozen=True)
class BlindingKey:
    """This node's secret scalar for an agreement. Never leaves the node."""

    scalar: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.scalar) != POINT_BYTES or self.scalar == bytes(POINT_BYTES):
            raise ValueError("a blinding key is a non-zero 32-byte scalar")
        if bytes(rbcl.crypto_core_ristretto255_scalar_reduce(self.scalar + bytes(32))) != bytes(
            self.scalar
        ):
            raise ValueError("a blinding key must be a canonical ristretto255 scalar")

    def evaluate(self, point: bytes) -> bytes:
        """``point ^ scalar`` on ristretto255: the hit/no-hit oblivious PRF."""
        return bytes(rbcl.crypto_scalarmult_ristretto255(self.scalar, point))

    def evaluate_message(self, message: str) -> str:
        """``H(message) ^ scalar`` on ristretto255, encoded: the hit/no-hit index."""
        return encode_point(self.evaluate(element_point(message)))

    def blind_message(self, message: str) -> str:
        """``H(message) ^ a`` for an exchanged record (X25519), encoded."""
        return encode_point(_x25519(self.exchange_scalar, element_u(message)))

    def reblind(self, text: Any) -> str:
        """A partner's blinded value raised to our exchange scalar (the double-blinded key).
        ValueError unless ``text`` is a valid blinded element."""
        return encode_point(_x25519(self.exchange_scalar, decode_element(text)))

    @property
    def exchange_scalar(self) -> bytes:
        """The X25519 scalar of exchanged records, derived from ours (libsodium clamps it)."""
        return _derived(self.scalar, b"exchange")

    @property
    def fingerprint(self) -> str:
        """16 hex characters naming this key (not derived from any blinded value)."""
        return hmac.new(self.scalar, b"bp2|fingerprint", hashlib.sha256).hexdigest()[:16]

    def ids_key(self, agreement_id: str) -> bytes:
        """The key of our pseudonymous ids under one agreement."""
        return _derived(self.scalar, b"ids|" + agreement_id.encode())


def generate_blinding_key() -> BlindingKey:
    """A fresh random scalar."""
    return BlindingKey(bytes(rbcl.crypto_core_ristretto255_scalar_random()))


def write_blinding_key(path: str | Path, key: BlindingKey | None = None) -> BlindingKey:
    """Create the key file (mode 0600, refusing to overwrite one); returns the key."""
    key = key or generate_blinding_key()
    descriptor = os.open(Path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key.scalar.hex() + "\n")
    return key


def read_blinding_key(path: str | Path) -> BlindingKey:
    """Read this node's scalar: one line of 64 hex digits, file mode 0600. ValueError."""
    path = Path(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and os.name == "posix":
        raise ValueError(f"blinding key file {path} has permissions {mode:04o}; chmod 600 {path}")
    text = path.read_text(encoding="ascii").strip()
    if not _SCALAR_HEX.fullmatch(text):
        raise ValueError(f"blinding key file {path} must hold 64 hex digits")
    return BlindingKey(bytes.fromhex(text))


def pseudonymous_id(key: BlindingKey, agreement_id: str, value: Any) -> str | None:
    """Our id (a UUID) as it leaves under ``agreement_id``; None for None."""
    return ids_pseudonym(key.ids_key(agreement_id), value)


def ids_pseudonym(ids_key: bytes, value: Any) -> str | None:
    """``pseudonymous_id`` with the agreement's ids key already derived."""
    if value is None:
        return None
    return hmac.digest(ids_key, str(value).encode("utf-8"), "sha256").hex()[:32]


# ------------------------------------------------------------------------------------------
# Identity elements
# ------------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value if isinstance(value, str) else str(value)


def document_message(issuing_state: Any, number: Any) -> str | None:
    """``bp2|document|STATE|NUMBER``, or None when either normalises to nothing."""
    state = normalise_document_number(_text(issuing_state)) if issuing_state is not None else ""
    normalised = normalise_document_number(_text(number)) if number is not None else ""
    if not state or not normalised:
        return None
    return f"{PSEUDONYM_VERSION}|document|{state}|{normalised}"


def _bound(document: str | None) -> str:
    """The document part of a bound message (``STATE|NUMBER``), or ``-`` without one."""
    return document.split("|", 2)[2] if document else "-"


def element_message(
    qualified: str,
    row: Mapping[str, Any],
    *,
    document: str | None,
    person: frozenset[str] = frozenset(),
) -> str | None:
    """The message of one pseudonymised field of ``row`` (see the module docstring).

    ``document`` is the crossing's document message (the binding); ``person`` names the
    traveller fields (``date_of_birth``, ``nationality``) the person element includes.
    None when the value is missing or normalises to nothing: the field travels as null.
    """
    record_type, _, name = qualified.partition(".")
    if qualified == "travel_document.number":
        return document_message(row.get("issuing_state"), row.get("number"))
    if qualified == "traveller.name_key":
        surname, given = row.get("surname"), row.get("given_names")
        key = name_key(
            _text(surname) if surname is not None else "", _text(given) if given is not None else ""
        )
        if not key:
            return None
        extras = []
        for extra in sorted(person):
            value = row.get(extra)
            extras.append("" if value is None else _text(value))
        return "|".join((PSEUDONYM_VERSION, "person", key, *extras))
    value = row.get(name)
    if value is None:
        return None
    if name in ("surname", "given_names", "surname_ar", "given_names_ar"):
        text = normalise_name(_text(value))
    elif name in ("nationality", "issuing_state"):
        text = normalise_document_number(_text(value))
    else:
        text = _text(value).strip()
    if not text:
        return None
    return f"{PSEUDONYM_VERSION}|{qualified}|{_bound(document)}|{text}"


def query_message(kind: str, query: Mapping[str, Any]) -> str | None:
    """The element a hit/no-hit question is about: a document, or a name and birth date.

    The responder indexes the same messages for its whole registry (``sync.exchange.hits``).
    """
    if kind == "document":
        return document_message(query.get("issuing_state"), query.get("number"))
    key = name_key(_text(query.get("surname") or ""), _text(query.get("given_names") or ""))
    dob = query.get("date_of_birth")
    if not key or not dob:
        return None
    return f"{PSEUDONYM_VERSION}|name_dob|{key}|{_text(dob)[:10]}"
