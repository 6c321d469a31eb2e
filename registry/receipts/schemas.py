"""Request and response schemas of the receipts slice (msgspec): a scanned receipt payload to
verify, a crossing's receipt payload, and the claims a valid receipt makes."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from registry.schemas import IsoDateTime
from registry.vocabulary import Direction


class ReceiptVerifyRequest(msgspec.Struct, forbid_unknown_fields=True):
    payload: Annotated[str, Meta(min_length=4, max_length=400)]


class ReceiptPayload(msgspec.Struct, kw_only=True):
    """The signed text a crossing's receipt QR code holds."""

    crossing_id: uuid.UUID
    payload: str


class ReceiptClaimsView(msgspec.Struct, kw_only=True):
    """What a receipt whose signature checks asserts (``signing.claims_view``); an invalid
    receipt is a 422 problem, so ``valid`` is always true here."""

    valid: Literal[True]
    version: int
    crossing_id: uuid.UUID
    node_code: str
    direction: Direction
    occurred_at: IsoDateTime
    document_hash: str
