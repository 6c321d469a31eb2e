"""Signed answers (``sync.api.signed_json``) are checked against the Struct their handler
documents before they are signed: a stray answer never leaves with a valid signature."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any, cast

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.base64url import unb64url
from sync.api import signed_json
from sync.batches import SIGNATURE
from sync.exchange.schemas import HitAnswer, PartnerBatchRefusal


def request_of(key: Ed25519PrivateKey) -> Any:
    """The one thing ``signed_json`` reads of a request: the node's signing key."""
    node = SimpleNamespace(signing_key=key)
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(node=node)))


def test_a_conforming_answer_is_signed_as_sent() -> None:
    key = Ed25519PrivateKey.generate()
    response = signed_json(request_of(key), {"hit": True, "reference": "Q-1"}, HitAnswer)
    body = cast(bytes, response.content)
    assert msgspec.json.decode(body) == {"hit": True, "reference": "Q-1"}
    signature = unb64url(response.headers[SIGNATURE])
    key.public_key().verify(signature, hashlib.sha256(body).digest())  # raises if not


def test_a_struct_answer_keeps_its_field_order() -> None:
    refusal = PartnerBatchRefusal(ack=7, reason="gap", keys={})
    response = signed_json(request_of(Ed25519PrivateKey.generate()), refusal, PartnerBatchRefusal)
    assert response.content == b'{"ack":7,"reason":"gap","keys":{}}'


@pytest.mark.parametrize(
    "stray",
    [
        {"hit": "yes", "reference": "Q-1"},  # a field of the wrong type
        {"reference": "Q-1"},  # a field missing
    ],
)
def test_a_stray_answer_is_never_signed(stray: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        signed_json(request_of(Ed25519PrivateKey.generate()), stray, HitAnswer)
