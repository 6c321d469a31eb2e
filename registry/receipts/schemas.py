"""Request schema of the receipts slice (msgspec): a scanned receipt payload to verify."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class ReceiptVerifyRequest(msgspec.Struct, forbid_unknown_fields=True):
    payload: Annotated[str, Meta(min_length=4, max_length=400)]
