"""Stay rules at a post over HTTP, on SQLite and PostgreSQL: the node's own citizens have
no stay limit and need no recorded entry to leave, and open stays follow the rules in force
when they are read, not the limit recorded at entry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from registry.stays import StayRules
from tests.support.factories import register, td3
from tests.support.nodes import NodeUnderTest, unique_number


async def stays(node: NodeUnderTest, kind: str, as_of: date) -> list[dict[str, Any]]:
    response = await node.client.get(
        f"/api/stays/{kind}", params={"as_of": as_of.isoformat()}, headers=node.auth("officer")
    )
    assert response.status_code == 200, response.text
    return response.json()


def local_day(crossing: dict[str, Any]) -> date:
    return date.fromisoformat(crossing["occurred_at_local"][:10])


async def test_a_mauritanian_entering_mauritania_has_no_limit(post_node: NodeUnderTest) -> None:
    assert post_node.node.settings.country == "MRT"
    citizen = await register(
        post_node,
        {"direction": "entry", "mrz": td3(unique_number(), nationality="MRT", surname="SY")},
    )
    foreigner = await register(
        post_node,
        {"direction": "entry", "mrz": td3(unique_number(), nationality="FRA", surname="MARTIN")},
    )
    assert citizen["stay_allowed_until"] is None and citizen["checks"] == []
    assert foreigner["stay_allowed_until"] is not None
    a_year_on = local_day(citizen) + timedelta(days=400)
    overstayers = [o["id"] for o in await stays(post_node, "overstays", a_year_on)]
    assert citizen["id"] not in overstayers and foreigner["id"] in overstayers
    open_ = {o["id"]: o for o in await stays(post_node, "open", a_year_on)}
    assert open_[citizen["id"]]["allowed_until"] is None
    assert open_[citizen["id"]]["days_overstayed"] == 0


async def test_a_mauritanian_leaves_without_a_recorded_entry(post_node: NodeUnderTest) -> None:
    citizen = await register(
        post_node,
        {"direction": "exit", "mrz": td3(unique_number(), nationality="MRT", surname="SY")},
    )
    assert citizen["checks"] == [] and citizen["closes_crossing_id"] is None
    foreigner = await register(post_node, {"direction": "exit", "mrz": td3(unique_number())})
    assert [c["code"] for c in foreigner["checks"]] == ["exit_without_entry"]


async def test_open_stays_follow_the_rules_in_force(post_node: NodeUnderTest) -> None:
    entry = await register(
        post_node,
        {"direction": "entry", "mrz": td3(unique_number(), nationality="FRA", surname="MARTIN")},
    )
    day = local_day(entry)
    assert date.fromisoformat(entry["stay_allowed_until"]) == day + timedelta(days=89)
    post_node.node.stay_rules_override = StayRules.from_mapping(
        {"default": {"max_days": 30, "window_days": 60}}
    ).for_country("MRT")
    later = day + timedelta(days=35)
    open_ = {o["id"]: o for o in await stays(post_node, "open", later)}
    assert open_[entry["id"]]["allowed_until"] == (day + timedelta(days=29)).isoformat()
    assert open_[entry["id"]]["stay_allowed_until"] == entry["stay_allowed_until"]  # as recorded
    overstays = {o["id"]: o["days_overstayed"] for o in await stays(post_node, "overstays", later)}
    assert overstays[entry["id"]] == 6
    post_node.node.stay_rules_override = StayRules.from_mapping(
        {"default": {"max_days": None}}
    ).for_country("MRT")
    assert entry["id"] not in {o["id"] for o in await stays(post_node, "overstays", later)}


async def test_an_exit_is_judged_by_the_rules_in_force(post_node: NodeUnderTest) -> None:
    mrz = td3(unique_number(), nationality="FRA", surname="MARTIN")
    six_days_ago = (datetime.now(UTC) - timedelta(days=6)).isoformat()
    entry = await register(
        post_node, {"direction": "entry", "mrz": mrz, "occurred_at": six_days_ago}
    )
    assert date.fromisoformat(entry["stay_allowed_until"]) == local_day(entry) + timedelta(days=89)
    post_node.node.stay_rules_override = StayRules.from_mapping(
        {"default": {"max_days": 2, "window_days": 10}}
    ).for_country("MRT")
    exit_ = await register(post_node, {"direction": "exit", "mrz": mrz})
    assert exit_["closes_crossing_id"] == entry["id"]
    late = (local_day(exit_) - (local_day(entry) + timedelta(days=1))).days
    assert exit_["overstay_days"] == late == 5
    assert [c["code"] for c in exit_["checks"]] == ["overstay"]
