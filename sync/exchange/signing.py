"""Signatures of an agreement, and whether it is in force.

Canonical form and signatures
    The canonical content is the parsed TOML document minus its top-level ``signatures`` key,
    serialised as JSON with sorted keys, separators ``(",", ":")``, ``ensure_ascii=False``,
    dates and times as ISO 8601 strings, encoded UTF-8 (``canonical_content``). Comments,
    layout and key order therefore do not matter; any change of meaning invalidates both
    signatures. Each party signs the canonical bytes with its national node's Ed25519 key
    (``sign_agreement``). An agreement is in force only when it parses, today lies in
    [valid_from, valid_to], and BOTH parties' signatures verify (``agreement_status``).
"""

from __future__ import annotations

import base64
import re
from datetime import date

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.receipts import public_key_from_text, public_key_to_text
from sync.exchange.model import Agreement, AgreementError, canonical_content
from sync.exchange.parsing import load_agreement, unb64url

_SIGNATURES_HEADER = re.compile(r"^\s*\[\s*signatures\s*(\.[^\]]*)?\]\s*(#.*)?$")
_TABLE_HEADER = re.compile(r"^\s*\[")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signature_valid(agreement: Agreement, country: str) -> bool:
    """True when the party ``country`` has signed this exact canonical content."""
    signature = agreement.signatures.get(country)
    if signature is None:
        return False
    try:
        key = public_key_from_text(agreement.party(country).public_key)
        key.verify(unb64url(signature), agreement.canonical)
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
        remaining = msgspec.toml.decode(body)
    except msgspec.DecodeError as exc:
        raise AgreementError("signatures", f"cannot remove the signatures table: {exc}") from exc
    if "signatures" in remaining or canonical_content(remaining) != agreement.canonical:
        raise AgreementError("signatures", "must be a [signatures] table of its own")
    signatures = dict(agreement.signatures)
    signatures[party.country] = _b64url(private_key.sign(agreement.canonical))
    lines = [f'{country} = "{signatures[country]}"' for country in sorted(signatures)]
    return body + "\n[signatures]\n" + "\n".join(lines) + "\n"


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
