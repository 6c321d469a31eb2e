"""National headquarters (role=national): stays closed across posts, open stays and overstays,
under the stay rules in force when read; own citizens never overstay.

The national node and its hand-made dataset (posts MR-GOGUI (G) and MR-KOBENI (K), October
2026) are tests/hq_node.py and tests/hq_dataset.py, on PostgreSQL and on SQLite. The SQL
shortcut of open stays against its Python reference is test_hq_stays_shortcut.py.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from registry import hq
from registry.ids import uuid7
from registry.models import Crossing
from registry.outbox import insert_rows
from registry.stays import StayRules
from tests.support.hq_dataset import G, at
from tests.support.hq_node import Hq, ids_of


async def test_stays_are_closed_across_posts(national_node: Hq) -> None:
    node, world = national_node, national_node.world
    open_ = await node.get("/api/hq/stays/open", as_of="2026-11-01")
    assert ids_of(open_["items"], world) == ["c6", "c9", "c3", "c4", "c13"]
    assert open_["total"] == 5
    details = {world.labels([v["id"]])[0]: v for v in open_["items"]}
    assert (details["c6"]["allowed_until"], details["c6"]["allowed_until_source"]) == (
        "2026-08-29",
        "computed",
    )
    assert (details["c9"]["allowed_until"], details["c9"]["allowed_until_source"]) == (
        "2026-09-28",
        "computed",
    )
    assert details["c3"]["days_overstayed"] == 0
    over = await node.get("/api/hq/stays/overstays", as_of="2026-11-01")
    assert ids_of(over["items"], world) == ["c6", "c9"]
    assert [v["days_overstayed"] for v in over["items"]] == [64, 34]
    earlier = await node.get("/api/hq/stays/open", as_of="2026-10-10")
    assert ids_of(earlier["items"], world) == ["c6", "c9", "c3", "c7", "c4"]
    earlier_over = await node.get("/api/hq/stays/overstays", as_of="2026-10-10")
    assert [v["days_overstayed"] for v in earlier_over["items"]] == [42, 12]
    page = await node.get("/api/hq/stays/open", as_of="2026-11-01", limit=2, offset=2)
    assert ids_of(page["items"], world) == ["c3", "c4"] and page["total"] == 5


async def test_stays_follow_the_rules_in_force_when_read(national_node: Hq) -> None:
    node, world = national_node, national_node.world
    # Stricter rules come into force: every open stay's limit follows them when read (c6 was
    # recorded with the 90-day limit of its entry day, 2026-08-29).
    node.node.stay_rules_override = StayRules.from_mapping(
        {"default": {"max_days": 30, "window_days": 60}, "MLI": {"max_days": 20, "window_days": 60}}
    ).for_country("MRT")
    open_ = await node.get("/api/hq/stays/open", as_of="2026-11-01")
    limits = {world.labels([v["id"]])[0]: v["allowed_until"] for v in open_["items"]}
    assert limits == {
        "c6": "2026-06-30",
        "c9": "2026-07-30",
        "c3": "2026-10-22",
        "c4": "2026-10-24",
        "c13": "2026-11-19",
    }
    over = await node.get("/api/hq/stays/overstays", as_of="2026-11-01")
    assert ids_of(over["items"], world) == ["c6", "c9", "c3", "c4"]
    assert [v["days_overstayed"] for v in over["items"]] == [124, 94, 10, 8]
    # Unlimited for everyone: nobody overstays, whatever was recorded at entry.
    node.node.stay_rules_override = StayRules.from_mapping({"default": {"max_days": None}})
    assert (await node.get("/api/hq/stays/overstays", as_of="2026-11-01"))["items"] == []


async def test_own_citizens_never_overstay(national_node: Hq) -> None:
    node, world = national_node, national_node.world
    officer = await node.officer()
    citizen = Crossing(  # T14 (MRT) entered in March, recorded with the old 90-day limit
        id=uuid7(),
        origin=G,
        post=G,
        direction="entry",
        occurred_at=at(3, 1, 9),
        officer_id=world.ids[G],
        traveller_id=world.ids["T14"],
        document_id=world.ids["D14"],
        mode="car",
        decision="cleared",
        stay_allowed_until=date(2026, 5, 29),
    )
    async with node.db.sessions() as session:
        await session.begin()  # rolled back: the module's dataset stays as it is
        await insert_rows(session, citizen)
        kw: dict[str, Any] = {"node": node.node, "officer": officer, "as_of": date(2026, 11, 1)}
        over = await hq.cross_post_stays(session, overstays_only=True, **kw)
        open_ = await hq.cross_post_stays(session, overstays_only=False, **kw)
        await session.rollback()
    assert [v["id"] for v in over["items"]] == [world["c6"], world["c9"]]
    mine = [v for v in open_["items"] if v["id"] == str(citizen.id)]
    assert len(mine) == 1
    assert (mine[0]["allowed_until"], mine[0]["allowed_until_source"]) == (None, "unlimited")
    assert mine[0]["days_overstayed"] == 0
