"""Pseudonyms of documents and names, keyed by the HMAC key the two parties share.

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
    national node, readable by its owner only; the agreement only names it (``hmac_key_id``)
    and, optionally, carries ``hmac_key_check`` so both sides can prove they hold the same key
    (``key_check``). Load it with ``read_hmac_key(path)``; every function that needs it takes
    it as the ``hmac_key`` parameter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stat
from pathlib import Path
from typing import Any, Final

from registry.names import name_key, normalise_document_number, normalise_name
from sync.exchange.model import PseudonymKind

HMAC_KEY_MIN_BYTES: Final = 32
PSEUDONYM_VERSION: Final = "bp1"


def check_key(hmac_key: bytes) -> None:
    """Raise ValueError unless ``hmac_key`` is bytes of at least ``HMAC_KEY_MIN_BYTES``."""
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
    check_key(hmac_key)
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
    check_key(hmac_key)
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
    check_key(key)
    return key
