"""Stored name keys brought up to the current ``registry.names`` folding (``db rekey-names``).

Names in ASCII keep the key they had: the look-alike folding (invisible characters removed,
Cyrillic/Greek/... look-alikes made Latin, Arabic spelling variants folded) leaves them as they
were. A traveller registered earlier with any other character in the name may have a stored
``traveller.name_key`` that today's search would not find (``OUEDR<Cyrillic A>OGO`` was keyed
``ogo uedr``). This recomputes the key of every such traveller and updates those that differ;
on national the ``traveller_name_key`` dictionary follows through its update trigger. Each
node keys its own rows, so run it on every node (posts and national). The watchlist needs no
rekey: its matcher keys non-ASCII listed names again whenever it loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.audit import audit
from registry.models import Traveller
from registry.names import name_key

CHUNK = 5_000


@dataclass(frozen=True)
class RekeyReport:
    """How many travellers were read, needed a fresh key (non-ASCII names) and changed."""

    read: int
    checked: int
    changed: int

    def as_dict(self) -> dict[str, int]:
        return {"read": self.read, "checked": self.checked, "changed": self.changed}


async def rekey_travellers(session: AsyncSession, *, origin: str) -> RekeyReport:
    """Recompute ``traveller.name_key`` where the name is not ASCII; update those that differ
    and audit the change once (ids of the rows changed). Call inside a write transaction."""
    query = select(
        col(Traveller.id),
        col(Traveller.surname),
        col(Traveller.given_names),
        col(Traveller.name_key),
    )
    read = checked = 0
    changes: list[dict[str, object]] = []
    rows = await session.stream(query.execution_options(yield_per=CHUNK))
    async for traveller_id, surname, given_names, stored in rows:
        read += 1
        if surname.isascii() and (given_names or "").isascii():
            continue
        checked += 1
        fresh = name_key(surname, given_names or "")
        if fresh != stored:
            changes.append({"traveller_id": traveller_id, "fresh": fresh})
    table = Traveller.__table__  # type: ignore[attr-defined]
    statement = (
        table.update()
        .where(table.c.id == bindparam("traveller_id"))
        .values(name_key=bindparam("fresh"))
    )
    connection = await session.connection()
    for start in range(0, len(changes), CHUNK):
        await connection.execute(statement, changes[start : start + CHUNK])
    if changes:
        await audit(
            session,
            origin=origin,
            officer=None,
            action="update",
            record_type="traveller",
            record_id="name_key",
            purpose="rekey_names",
            detail={"travellers": [str(change["traveller_id"]) for change in changes]},
        )
    return RekeyReport(read=read, checked=checked, changed=len(changes))
