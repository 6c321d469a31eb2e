"""The sync outbox: records that must travel are appended in the writing transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from registry.models import OutboxEntry


def record_payload(record: SQLModel) -> dict[str, Any]:
    """JSON-safe copy of a table row (binary columns as hex)."""
    payload: dict[str, Any] = {}
    for name, value in record.model_dump().items():
        if isinstance(value, bytes):
            payload[name] = value.hex()
        elif hasattr(value, "isoformat"):
            payload[name] = value.isoformat()
        elif value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
            payload[name] = str(value)
        else:
            payload[name] = value
    return payload


def record_id_of(record: SQLModel) -> str:
    for attr in ("id", "sha256", "seq"):
        value = getattr(record, attr, None)
        if value is not None:
            return str(value)
    raise ValueError(f"{type(record).__name__} has no identifier")


def enqueue(session: AsyncSession, *records: SQLModel) -> None:
    """Append each record to the outbox in the caller's transaction."""
    for record in records:
        session.add(
            OutboxEntry(
                record_type=record.__tablename__,  # type: ignore[attr-defined]
                record_id=record_id_of(record),
                payload=record_payload(record),
            )
        )
