"""Cross-post stays read a document's history only when earlier movements can count.

``registry.hq.stays`` skips the history of an open entry whose previous movement is an exit
before the rule's window (or that has none). This test builds random movement histories
(entries, exits, refused crossings, several document rows sharing a key, movements on the
window's edge) on SQLite and PostgreSQL, and checks that every open stay's limit and every
overstay equal those of the full computation over the whole history.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from registry import hq
from registry.crossings import search
from registry.crossings.registration import allowed_until_of
from registry.ids import uuid7
from registry.models import Crossing, Officer, TravelDocument, Traveller
from registry.names import name_key
from registry.outbox import insert_rows
from registry.stays import StayRules, overstay_days
from tests.support.nodes import NodeUnderTest

AS_OF = date(2026, 11, 1)
RULES = {"default": {"max_days": 30, "window_days": 60}, "MLI": {"max_days": 20, "window_days": 45}}


def _world(seed: int, officer_id: Any) -> tuple[list[Any], dict[str, tuple[str, str]]]:
    """Travellers with one or two document rows per key, and random movements."""
    rng = random.Random(seed)
    rows: list[Any] = []
    nationality_of: dict[str, tuple[str, str]] = {}
    for n in range(60):
        nationality = rng.choice(["MLI", "SEN", "MRT"])
        number = f"S{n:06d}"
        documents = []
        for copy in range(rng.choice([1, 1, 2])):  # the same document registered twice
            traveller = Traveller(
                origin=f"MR-POST{copy}",
                surname="STAY",
                given_names=f"CASE {n}",
                name_key=name_key("STAY", f"CASE {n}"),
                date_of_birth=date(1980, 1, 1),
                sex="F",
                nationality=nationality,
            )
            document = TravelDocument(
                origin=f"MR-POST{copy}",
                traveller_id=traveller.id,
                issuing_state="SEN",
                document_type="P",
                number=number,
                number_norm=number,
            )
            rows += [traveller, document]
            documents.append((traveller, document))
        nationality_of[number] = (nationality, "SEN")
        day = AS_OF - timedelta(days=rng.randint(80, 200))
        for _ in range(rng.randint(1, 7)):
            traveller, document = rng.choice(documents)
            rows.append(
                Crossing(
                    id=uuid7(),
                    origin=document.origin,
                    post=document.origin,
                    direction=rng.choice(["entry", "entry", "exit"]),
                    occurred_at=datetime.combine(day, datetime.min.time(), UTC)
                    + timedelta(hours=rng.randint(0, 23)),
                    officer_id=officer_id,
                    traveller_id=traveller.id,
                    document_id=document.id,
                    mode="car",
                    decision=rng.choice(["cleared"] * 5 + ["refused"]),
                )
            )
            # movements close together, and on either side of a window's edge
            day += timedelta(days=rng.choice([0, 1, 10, 25, 44, 45, 46, 59, 60, 61, 90]))
            if day > AS_OF:
                break
    return rows, nationality_of


def _expected(
    rows: list[Any], rules: StayRules, zone: Any, *, by_traveller: bool = False
) -> dict[str, tuple[Any, int]]:
    """Open entry id -> (allowed_until, days overstayed), from every document's (or with
    ``by_traveller``, every traveller record's) whole history."""
    key_of: dict[Any, Any] = {
        r.id: r.traveller_id if by_traveller else r.number_norm
        for r in rows
        if isinstance(r, TravelDocument)
    }
    nationality = {r.id: r.nationality for r in rows if isinstance(r, Traveller)}
    histories: dict[str, list[Crossing]] = defaultdict(list)
    for row in rows:
        if isinstance(row, Crossing) and row.decision != "refused":
            histories[key_of[row.document_id]].append(row)
    expected: dict[str, tuple[Any, int]] = {}
    for history in histories.values():
        history.sort(key=lambda c: (c.occurred_at, c.id))
        latest = history[-1]
        if latest.direction != "entry":
            continue
        until = allowed_until_of(rules, zone, nationality[latest.traveller_id], latest, history)
        expected[str(latest.id)] = (until, overstay_days(until, AS_OF))
    return expected


async def test_the_history_shortcut_gives_the_full_computation(post_node: NodeUnderTest) -> None:
    node = post_node.node
    node.stay_rules_override = StayRules.from_mapping(RULES).for_country("MRT")
    async with post_node.db.sessions() as session:
        officer = (await session.scalars(select(Officer).where(Officer.username == "admin"))).one()
    for seed in range(3):
        rows, _ = _world(seed, officer.id)
        expected = _expected(rows, node.stay_rules, node.settings.zone)
        assert expected and any(days for _, days in expected.values()), "a case to compare"
        async with post_node.db.sessions() as session:
            await session.begin()
            await insert_rows(session, *rows)
            kw: dict[str, Any] = {"node": node, "officer": officer, "as_of": AS_OF, "limit": 500}
            open_ = await hq.cross_post_stays(session, overstays_only=False, **kw)
            over = await hq.cross_post_stays(session, overstays_only=True, **kw)
            await session.rollback()
        got = {
            v["id"]: (v["allowed_until"], v["days_overstayed"])
            for v in open_["items"]
            if v["id"] in expected
        }
        want = {k: (u.isoformat() if u else None, d) for k, (u, d) in expected.items()}
        assert got == want, seed
        assert {v["id"] for v in over["items"]} == {k for k, (_, d) in expected.items() if d}


async def test_a_post_lists_every_overstay_its_screen_lets_through(
    post_node: NodeUnderTest,
) -> None:
    """The post's own overstays (by traveller record) include re-entries with the allowance
    already used up, which overstay from their first day."""
    node = post_node.node
    node.stay_rules_override = StayRules.from_mapping(RULES).for_country("MRT")
    async with post_node.db.sessions() as session:
        officer = (await session.scalars(select(Officer).where(Officer.username == "admin"))).one()
    for seed in range(3):
        rows, _ = _world(seed, officer.id)
        expected = _expected(rows, node.stay_rules, node.settings.zone, by_traveller=True)
        recent = [k for k, (u, d) in expected.items() if d and u is not None and d < 20]
        async with post_node.db.sessions() as session:
            await session.begin()
            await insert_rows(session, *rows)
            kw: dict[str, Any] = {"node": node, "officer": officer, "as_of": AS_OF}
            over = await search.open_stays(session, overstays_only=True, **kw)
            await session.rollback()
        got = {v["id"]: v["days_overstayed"] for v in over}
        assert got == {k: d for k, (_, d) in expected.items() if d}, seed
        assert recent or seed, "a re-entry overstaying within days of its entry"
