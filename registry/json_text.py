"""JSON text as the node stores and sends it: compact (no spaces) and UTF-8 rather than
escapes. Outbox payloads are read, compressed, sent and parsed again at national byte for
byte, so the database's JSON columns and the sync batches share this one encoder."""

from __future__ import annotations

from typing import Any

import msgspec


def compact_json(value: Any) -> str:
    """``value`` as compact JSON text."""
    return msgspec.json.encode(value).decode()
