"""Data-sharing agreements as the unit tests write them: BASE (an agreement between MRT and
MLI as a dict), a tiny TOML writer, variants and signatures by both parties' test keys, and
the documented blinded element and pseudonymous id computed independently of sync.exchange
(``mac``, ``ref``). Shared by tests/exchange/test_agreement_documents.py,
test_exchange_pseudonyms.py and test_agreement_enforcement.py.
"""

from __future__ import annotations

import base64
import copy
import ctypes
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rbcl.rbcl import _sodium as _libsodium  # an X25519 independent of the module's

from registry.receipts import public_key_to_text
from sync.exchange.pseudonyms import BlindingKey
from sync.exchange.signing import sign_agreement

ROOT = Path(__file__).resolve().parents[2]


EXAMPLE = ROOT / "deploy" / "agreements" / "mr-ml-2026.toml"
MR_KEY = Ed25519PrivateKey.generate()
ML_KEY = Ed25519PrivateKey.generate()
KEY = BlindingKey(bytes(range(31)) + b"\x01")
PARTNER_KEY = BlindingKey(bytes(range(1, 32)) + b"\x02")
TODAY = date(2026, 6, 1)

BASE: dict[str, Any] = {
    "id": "MR-ML-2026",
    "version": 1,
    "title": "test agreement",
    "valid_from": date(2026, 1, 1),
    "valid_to": date(2026, 12, 31),
    "purposes": ["border_management", "migration_statistics"],
    "retention_days": 180,
    "share_photos": False,
    "share_protection_referrals": False,
    "daily_hit_budget": 100,
    "pseudonymised": ["travel_document.number", "traveller.surname", "traveller.given_names"],
    "parties": [
        {
            "country": "MRT",
            "node": "MR-NATIONAL",
            "url": "https://borderpost.police.gov.mr",
            "public_key": public_key_to_text(MR_KEY.public_key()),
        },
        {
            "country": "MLI",
            "node": "ML-NATIONAL",
            "url": "https://borderpost.police.gouv.ml",
            "public_key": public_key_to_text(ML_KEY.public_key()),
        },
    ],
    "paired_posts": [
        {"MRT": "MR-GOGUI", "MLI": "ML-GOGUI"},
        {"MRT": "MR-KOBENI", "MLI": "ML-NIORO"},
    ],
    "record_types": {
        "crossing": ["id", "post", "direction", "occurred_at", "mode", "decision", "document_id"],
        "traveller": ["id", "surname", "given_names", "nationality", "sex", "date_of_birth"],
        "travel_document": ["id", "issuing_state", "document_type", "number", "expiry_date"],
    },
}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | date):
        return value.isoformat() if isinstance(value, date) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return json.dumps(value)


def to_toml(data: dict[str, Any]) -> str:
    """A tiny TOML writer for the shapes an agreement uses."""
    lines: list[str] = []
    arrays: dict[str, list[dict[str, Any]]] = {}
    tables: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            tables[key] = value
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays[key] = value
        else:
            lines.append(f"{key} = {_value(value)}")
    for key, items in arrays.items():
        for item in items:
            lines.append(f"\n[[{key}]]")
            lines += [f"{k} = {_value(v)}" for k, v in item.items()]
    for key, table in tables.items():
        lines.append(f"\n[{key}]")
        lines += [f"{k} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def variant(change: Callable[[dict[str, Any]], None]) -> str:
    data = copy.deepcopy(BASE)
    change(data)
    return to_toml(data)


def signed(text: str, *keys: tuple[str, Ed25519PrivateKey]) -> str:
    for party, key in keys or (("MRT", MR_KEY), ("MLI", ML_KEY)):
        text = sign_agreement(text, party, key)
    return text


def mac(*parts: str, key: BlindingKey = KEY) -> str:
    """The documented blinded element ``H(bp2|parts)^a``, computed independently of the
    module and of OpenSSL (which the module uses): SHA-512 of ``bp3|x25519|`` and the message
    reduced mod 2^255-19, then libsodium's X25519 with ``HMAC-SHA256(scalar, "bp2|exchange")``,
    unpadded base64url."""
    message = "|".join(("bp2", *parts)).encode()
    u = int.from_bytes(hashlib.sha512(b"bp3|x25519|" + message).digest(), "little") % (2**255 - 19)
    scalar = hmac.new(key.scalar, b"bp2|exchange", hashlib.sha256).digest()
    out = ctypes.create_string_buffer(32)
    assert _libsodium.crypto_scalarmult_curve25519(out, scalar, u.to_bytes(32, "little")) == 0
    blinded = out.raw
    return base64.urlsafe_b64encode(blinded).rstrip(b"=").decode()


def ref(value: Any, key: BlindingKey = KEY, agreement_id: str = "MR-ML-2026") -> str:
    """The documented pseudonymous id of one of our ids."""
    ids_key = hmac.new(key.scalar, f"bp2|ids|{agreement_id}".encode(), hashlib.sha256).digest()
    return hmac.new(ids_key, str(value).encode(), hashlib.sha256).hexdigest()[:32]
