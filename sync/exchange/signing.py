"""Signatures of an agreement, and whether it is in force.

Canonical form and signatures
    The canonical content is the parsed TOML document minus its top-level ``signatures`` key,
    serialised as JSON with sorted keys, separators ``(",", ":")``, ``ensure_ascii=False``,
    dates and times as ISO 8601 strings, encoded UTF-8 (``canonical_content``). Comments,
    layout and key order therefore do not matter; any change of meaning invalidates both
    signatures. Each party signs the canonical bytes with its national node's Ed25519 key
    (``sign_agreement``). An agreement is in force only when it parses, today lies in
    [valid_from, valid_to], and BOTH parties' signatures verify (``agreement_status``), its
    parties' URLs are ``https://`` and not an example host (unless the node's development
    flag allows it), and no party has revoked it.

Revocation notices
    A party revokes a version with a notice (``revocation_notice``): the agreement's id,
    version and content fingerprint, the revoking party, the time and the reason, as
    canonical JSON signed with that party's national node key. The partner checks it with
    the key the agreement gives that party (``verify_revocation``) before it stops and
    erases what it holds under that version.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any
from urllib.parse import urlparse

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.base64url import b64url, unb64url
from registry.receipts import public_key_from_text, public_key_to_text
from sync.exchange.model import Agreement, AgreementError, canonical_content
from sync.exchange.parsing import load_agreement

_SIGNATURES_HEADER = re.compile(r"^\s*\[\s*signatures\s*(\.[^\]]*)?\]\s*(#.*)?$")
_TABLE_HEADER = re.compile(r"^\s*\[")


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
    signatures[party.country] = b64url(private_key.sign(agreement.canonical))
    lines = [f'{country} = "{signatures[country]}"' for country in sorted(signatures)]
    return body + "\n[signatures]\n" + "\n".join(lines) + "\n"


_EXAMPLE_HOSTS = re.compile(r"(^|\.)example(\.(com|net|org|[a-z]{2}))?$")


def link_problems(agreement: Agreement, *, development_urls: bool = False) -> list[str]:
    """Each party's URL must be ``https://`` and not an example host (RFC 2606 names such as
    ``borderpost.example.mr``); ``development_urls`` (the node's development flag) allows
    both, for nodes tried out on one machine."""
    if development_urls:
        return []
    problems: list[str] = []
    for index, party in enumerate(agreement.parties):
        url = urlparse(party.url)
        host = (url.hostname or "").lower()
        if url.scheme != "https":
            problems.append(
                f"parties[{index}].url: must be https:// between the two countries "
                "(plain http only with BORDERPOST_AGREEMENT_DEVELOPMENT_URLS)"
            )
        elif _EXAMPLE_HOSTS.search(host):
            problems.append(
                f"parties[{index}].url: {host} is an example host: put the real address of "
                f"{party.node}"
            )
    return problems


def agreement_status(
    agreement: Agreement,
    today: date,
    *,
    revoked: str | None = None,
    development_urls: bool = False,
) -> tuple[bool, list[str]]:
    """``(in_force, problems)``: in force only inside its validity window, signed by both,
    with https URLs that are not example hosts (``link_problems``) and not revoked
    (``revoked`` says by whom and when, from the node's database).

    Every problem stops the exchange. An invalid file never gets this far: ``load_agreement``
    raises.
    """
    problems: list[str] = []
    if revoked:
        problems.append(f"revoked: {revoked}")
    problems += link_problems(agreement, development_urls=development_urls)
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


def revocation_notice(
    agreement: Agreement, party_code: str, revoked_at: datetime, reason: str
) -> bytes:
    """The canonical bytes a party signs to revoke this agreement version."""
    party = agreement.party(party_code)
    notice = {
        "type": "agreement_revocation",
        "agreement": agreement.id,
        "version": agreement.version,
        "content_sha256": agreement.content_sha256,
        "party": party.country,
        "node": party.node,
        "revoked_at": revoked_at.isoformat(),
        "reason": reason,
    }
    return json.dumps(notice, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_revocation(notice: bytes, private_key: Ed25519PrivateKey) -> str:
    """The base64url Ed25519 signature of a revocation notice."""
    return b64url(private_key.sign(notice))


def verify_revocation(agreement: Agreement, notice: bytes, signature: str) -> dict[str, Any]:
    """The notice, once its signature verifies with the key the agreement gives the party
    it names and it revokes exactly this agreement version; ValueError otherwise."""
    try:
        decoded = json.loads(notice)
    except ValueError as exc:
        raise ValueError("the notice is not JSON") from exc
    if not isinstance(decoded, dict) or decoded.get("type") != "agreement_revocation":
        raise ValueError("not a revocation notice")
    try:
        party = agreement.party(str(decoded.get("party")))
        public_key_from_text(party.public_key).verify(unb64url(signature), notice)
    except (KeyError, InvalidSignature, ValueError) as exc:
        raise ValueError("the notice is not signed by a party to the agreement") from exc
    if (decoded.get("agreement"), decoded.get("version"), decoded.get("content_sha256")) != (
        agreement.id,
        agreement.version,
        agreement.content_sha256,
    ):
        raise ValueError("the notice revokes another agreement or version")
    if decoded.get("node") != party.node or not isinstance(decoded.get("reason"), str):
        raise ValueError("the notice is malformed")
    datetime.fromisoformat(str(decoded.get("revoked_at")))
    return decoded
