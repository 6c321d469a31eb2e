"""What an agreement shares, and the report of ``borderpost agreement check FILE``.

``describe`` lists every field of every record type with how it is shared (the admin page
shows it too); ``check_report`` says whether a file is valid, in force and usable on this
node, with the problems that stop the exchange and the warnings worth a look.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from sync.exchange.model import (
    PHOTO,
    PROTECTION_REFERRAL,
    PSEUDONYMISABLE,
    RECORD_TYPES,
    REVEALS,
    Agreement,
    AgreementError,
    purge_before,
)
from sync.exchange.parsing import load_agreement
from sync.exchange.pseudonyms import BlindingKey
from sync.exchange.signing import agreement_status, signature_valid

CLEAR: Final = "clear"
PSEUDONYMISED: Final = "pseudonymised (blinded, X25519)"
NOT_SHARED: Final = "not shared"

# Identifying fields that deserve a warning when shared in clear.
_IDENTIFYING: Final = frozenset(PSEUDONYMISABLE) | frozenset(REVEALS)

# Fields reconciliation needs from the partner (warned about when missing).
_RECONCILE_NEEDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "crossing": ("id", "post", "direction", "occurred_at", "document_id"),
        "travel_document": ("id", "issuing_state", "number"),
    }
)


def describe(agreement: Agreement) -> list[dict[str, str]]:
    """What the agreement shares, one row per field, then its settings.

    Rows are ``{"record_type", "field", "shared_as"}``; ``shared_as`` is ``"clear"``,
    ``"pseudonymised (blinded, X25519)"`` or ``"not shared"`` (``field`` ``"*"`` for a whole
    record type). Settings come last under record type ``"(agreement)"``: photos,
    protection referrals, retention, purposes, daily budgets, validity.
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
        "note_text": "shared" if agreement.share_note_text else NOT_SHARED,
        "retention_days": f"{agreement.retention_days} days",
        "purposes": ", ".join(agreement.purposes),
        "daily_blinding_budget": f"{agreement.daily_blinding_budget} records",
        "daily_hit_budget": f"{agreement.daily_hit_budget} queries",
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
        "daily_blinding_budget": agreement.daily_blinding_budget,
        "daily_hit_budget": agreement.daily_hit_budget,
        "purge_before": None,
    }


def _key_problems(key_available: bool) -> list[str]:
    if not key_available:
        return ["this node's blinding key for the agreement is not configured"]
    return []


def check_report(
    source: str | Path,
    *,
    today: date,
    key_available: bool,
    key: BlindingKey | None = None,
    revocations: Mapping[tuple[str, int], str] | None = None,
    development_urls: bool = False,
) -> dict[str, Any]:
    """A JSON-able report for ``borderpost agreement check FILE``.

    Keys: ``file``, ``valid`` (parsed), ``errors`` (``[{"field", "message"}]``), ``agreement``
    (summary, or None), ``in_force``, ``revoked`` (who revoked this version, when and why,
    from ``revocations``: the node's record of them, keyed by ``(id, version)``),
    ``problems`` (everything that stops the exchange), ``warnings`` (allowed but worth a
    look), ``shares`` (``describe``) and ``exchange_allowed``: valid, in force, not revoked,
    https URLs that are not example hosts (unless ``development_urls``), and this node's own
    blinding key present (each party keeps its own: nothing to compare with the partner).
    """
    report: dict[str, Any] = {
        "file": str(source) if isinstance(source, Path) or "\n" not in source else None,
        "valid": False,
        "errors": [],
        "agreement": None,
        "in_force": False,
        "revoked": None,
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
    revoked = (revocations or {}).get((agreement.id, agreement.version))
    in_force, problems = agreement_status(
        agreement, today, revoked=revoked, development_urls=development_urls
    )
    problems += _key_problems(key_available or key is not None)
    summary = _summary(agreement)
    summary["purge_before"] = purge_before(agreement, today).isoformat()
    report |= {
        "valid": True,
        "agreement": summary,
        "in_force": in_force,
        "revoked": revoked,
        "problems": problems,
        "warnings": _warnings(agreement),
        "shares": describe(agreement),
        "exchange_allowed": not problems,
    }
    return report
