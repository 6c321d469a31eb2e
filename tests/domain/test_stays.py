"""Allowed-stay rules and the rolling-window stay computation."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.stays import (
    DEFAULT_STAY_RULE,
    PARTNER_STAY_RULE,
    StayAllowance,
    StayRule,
    StayRules,
    allowed_stay_until,
    default_stay_rules,
    overstay_days,
    pair_stays,
    stay_limit,
    stored_nationality_forms,
)

RULE_90_180 = StayRule(max_days=90, window_days=180)
ENTRY = date(2025, 6, 1)


def days(n: int) -> timedelta:
    return timedelta(days=n)


# --- allowed_stay_until ---------------------------------------------------------------------


def test_first_entry_gets_exactly_max_days() -> None:
    allowance = allowed_stay_until(date(2025, 1, 1), [], RULE_90_180)
    assert allowance == StayAllowance(date(2025, 3, 31), days_remaining=90, already_used=0)
    assert (allowance.allowed_until - date(2025, 1, 1)).days + 1 == 90


def test_first_entry_in_a_leap_year() -> None:
    assert allowed_stay_until(date(2024, 1, 1), [], RULE_90_180).allowed_until == date(2024, 3, 30)


def test_recent_thirty_day_stay_reduces_the_allowance() -> None:
    past = [(ENTRY - days(40), ENTRY - days(11))]  # 30 days, both ends inclusive
    allowance = allowed_stay_until(ENTRY, past, RULE_90_180)
    assert allowance.already_used == 30
    assert allowance.days_remaining == 60
    assert allowance.allowed_until == ENTRY + days(59)


def test_stays_older_than_the_window_do_not_count() -> None:
    past = [(ENTRY - days(400), ENTRY - days(311)), (ENTRY - days(250), ENTRY - days(180))]
    allowance = allowed_stay_until(ENTRY, past, RULE_90_180)
    assert allowance.already_used == 0
    assert allowance.allowed_until == ENTRY + days(89)


def test_stay_partly_inside_the_window_counts_only_inside_days() -> None:
    past = [(ENTRY - days(200), ENTRY - days(170))]  # 10 days fall inside [ENTRY-179, ENTRY-1]
    assert allowed_stay_until(ENTRY, past, RULE_90_180).already_used == 10


def test_days_leaving_the_rolling_window_extend_the_stay() -> None:
    # 10 days at the very start of the window leave it during the new stay; 60 recent days stay.
    past = [(ENTRY - days(179), ENTRY - days(170)), (ENTRY - days(60), ENTRY - days(1))]
    allowance = allowed_stay_until(ENTRY, past, RULE_90_180)
    assert allowance.already_used == 70
    assert allowance.days_remaining == 30  # not 90 - 70 = 20
    assert allowance.allowed_until == ENTRY + days(29)


def test_old_days_leaving_as_fast_as_new_days_arrive_give_the_full_stay() -> None:
    past = [(ENTRY - days(179), ENTRY - days(100))]  # 80 days, the oldest first to leave
    allowance = allowed_stay_until(ENTRY, past, RULE_90_180)
    assert allowance.already_used == 80
    assert allowance.days_remaining == 90


def test_used_up_allowance_ends_the_day_before_entry() -> None:
    past = [(ENTRY - days(90), ENTRY - days(1))]
    allowance = allowed_stay_until(ENTRY, past, RULE_90_180)
    assert allowance == StayAllowance(ENTRY - days(1), days_remaining=0, already_used=90)
    assert allowance.exhausted
    assert overstay_days(allowance.allowed_until, ENTRY) == 1


def test_same_day_exit_and_reentry_counts_that_day_once() -> None:
    past = [(ENTRY - days(9), ENTRY)]  # left on ENTRY, came back the same day
    allowance = allowed_stay_until(ENTRY, past, RULE_90_180)
    assert allowance.already_used == 9
    assert allowance.days_remaining == 81


def test_overlapping_past_stays_count_days_once() -> None:
    past = [(ENTRY - days(30), ENTRY - days(11)), (ENTRY - days(20), ENTRY - days(11))]
    assert allowed_stay_until(ENTRY, past, RULE_90_180).already_used == 20


def test_open_past_stay_counts_until_the_day_before_entry() -> None:
    past: list[tuple[date, date | None]] = [(ENTRY - days(20), None)]
    allowance = allowed_stay_until(ENTRY, past, RULE_90_180)
    assert allowance.already_used == 20
    assert allowed_stay_until(ENTRY, [(ENTRY - days(20), ENTRY - days(20))], RULE_90_180) == (
        StayAllowance(ENTRY + days(88), days_remaining=89, already_used=1)
    )


def test_past_stays_are_clipped_at_the_new_entry() -> None:
    past = [(ENTRY - days(5), ENTRY + days(30))]
    assert allowed_stay_until(ENTRY, past, RULE_90_180).already_used == 5


def test_exit_before_entry_is_rejected() -> None:
    with pytest.raises(ValueError):
        allowed_stay_until(ENTRY, [(ENTRY - days(5), ENTRY - days(6))], RULE_90_180)


def test_unlimited_rule() -> None:
    past = [(ENTRY - days(170), ENTRY - days(1))]
    allowance = allowed_stay_until(ENTRY, past, StayRule.unlimited())
    assert allowance == StayAllowance(None, days_remaining=None, already_used=0)
    assert not allowance.exhausted
    assert overstay_days(allowance.allowed_until, ENTRY + days(1000)) == 0


def test_partner_country_override() -> None:
    rules = default_stay_rules("MLI")
    assert rules.rule_for("MLI") == PARTNER_STAY_RULE == StayRule(180, 365)
    assert rules.rule_for("mli") == PARTNER_STAY_RULE
    assert rules.rule_for("SEN") == DEFAULT_STAY_RULE == RULE_90_180
    past = [(ENTRY - days(120), ENTRY - days(1))]
    assert allowed_stay_until(ENTRY, past, rules.rule_for("MLI")).days_remaining == 60
    assert allowed_stay_until(ENTRY, past, rules.rule_for("SEN")).days_remaining == 0


def test_no_partner_country_means_one_rule_for_all() -> None:
    rules = default_stay_rules(None)
    assert rules.by_nationality == {}
    assert rules.rule_for("MLI") == DEFAULT_STAY_RULE


def test_custom_partner_rule() -> None:
    rules = default_stay_rules("MLI", partner_rule=StayRule.unlimited())
    assert rules.rule_for("MLI").is_unlimited


@pytest.mark.parametrize(
    ("allowed_until", "day", "expected"),
    [
        (date(2025, 3, 31), date(2025, 3, 31), 0),
        (date(2025, 3, 31), date(2025, 3, 1), 0),
        (date(2025, 3, 31), date(2025, 4, 1), 1),
        (date(2025, 3, 31), date(2025, 4, 10), 10),
        (None, date(2030, 1, 1), 0),
    ],
)
def test_overstay_days(allowed_until: date | None, day: date, expected: int) -> None:
    assert overstay_days(allowed_until, day) == expected


# --- configuration --------------------------------------------------------------------------


def test_rules_from_mapping() -> None:
    rules = StayRules.from_mapping(
        {
            "default": {"max_days": 90, "window_days": 180},
            "MLI": {"max_days": 180, "window_days": 365},
            "sen": {"max_days": None},
            "D<<": {"max_days": 30, "window_days": 60},
        }
    )
    assert rules.default == RULE_90_180
    assert rules.rule_for("MLI") == StayRule(180, 365)
    assert rules.rule_for("SEN").is_unlimited
    assert rules.rule_for("D") == StayRule(30, 60)
    assert rules.rule_for("FRA") == RULE_90_180
    assert StayRules.from_mapping(json.loads(json.dumps(rules.to_mapping()))) == rules


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "mapping"),
        ("90/180", "mapping"),
        ({}, "default"),
        ({"MLI": {"max_days": 90, "window_days": 180}}, "default"),
        ({"default": 90}, "'default' must be a mapping"),
        ({"default": {"window_days": 180}}, "needs max_days"),
        ({"default": {"max_days": 90}}, "needs window_days"),
        ({"default": {"max_days": 90, "window_days": 180, "days": 1}}, "unknown keys: days"),
        ({"default": {"max_days": 0, "window_days": 180}}, "at least 1"),
        ({"default": {"max_days": -5, "window_days": 180}}, "at least 1"),
        ({"default": {"max_days": 180, "window_days": 90}}, "less than window_days"),
        ({"default": {"max_days": 90, "window_days": 90}}, "use null"),
        ({"default": {"max_days": 90, "window_days": 0}}, "window_days must be at least 1"),
        ({"default": {"max_days": "90", "window_days": 180}}, "whole numbers"),
        ({"default": {"max_days": 90.5, "window_days": 180}}, "whole numbers"),
        ({"default": {"max_days": True, "window_days": 180}}, "whole numbers"),
        ({"default": RULE_90_180.to_mapping(), "MALI": RULE_90_180.to_mapping()}, "ICAO"),
        ({"default": RULE_90_180.to_mapping(), "M1": RULE_90_180.to_mapping()}, "ICAO"),
        ({"default": RULE_90_180.to_mapping(), "": RULE_90_180.to_mapping()}, "ICAO"),
        (
            {"default": RULE_90_180.to_mapping(), "mli": {}, "MLI": RULE_90_180.to_mapping()},
            "needs max_days",
        ),
        (
            {
                "default": RULE_90_180.to_mapping(),
                "mli": RULE_90_180.to_mapping(),
                "MLI": RULE_90_180.to_mapping(),
            },
            "twice",
        ),
        ({"default": {"max_days": 90, "window_days": 180}, "MLI": None}, "'MLI' must be"),
    ],
)
def test_bad_configuration_is_a_clear_value_error(config: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StayRules.from_mapping(config)  # type: ignore[arg-type]


def test_stay_rule_validation() -> None:
    with pytest.raises(ValueError):
        StayRule(max_days=91, window_days=90)
    with pytest.raises(ValueError):
        StayRule(max_days=0, window_days=90)
    assert StayRule(max_days=1, window_days=2).max_days == 1


def test_rules_mapping_is_read_only() -> None:
    rules = default_stay_rules("MLI")
    with pytest.raises(TypeError):
        rules.by_nationality["SEN"] = RULE_90_180  # type: ignore[index]


# --- property: agrees with a brute-force checker ---------------------------------------------


def present_on(day: date, stays: list[tuple[date, date]]) -> bool:
    return any(start <= day <= end for start, end in stays)


def days_in_window(day: date, stays: list[tuple[date, date]], window: int) -> int:
    return sum(present_on(day - days(back), stays) for back in range(window))


def rule_holds_until(
    entry: date, until: date, past: list[tuple[date, date]], rule: StayRule
) -> bool:
    """O(n^2): every day of the stay [entry, until] respects the rule, recounting each window."""
    assert rule.max_days is not None
    stays = [*past, (entry, until)]
    day = entry
    while day <= until:
        if days_in_window(day, stays, rule.window_days) > rule.max_days:
            return False
        day += days(1)
    return True


@st.composite
def stay_histories(draw: st.DrawFn) -> tuple[StayRule, list[tuple[date, date | None]]]:
    window = draw(st.integers(min_value=2, max_value=60))
    max_days = draw(st.integers(min_value=1, max_value=window - 1))
    stays: list[tuple[date, date | None]] = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        start = ENTRY - days(draw(st.integers(min_value=1, max_value=3 * window)))
        length = draw(st.integers(min_value=0, max_value=window))
        end = min(start + days(length), ENTRY)
        stays.append((start, draw(st.sampled_from([end, end, end, None]))))
    return StayRule(max_days, window), stays


@settings(max_examples=300, deadline=None)
@given(stay_histories())
def test_allowance_matches_brute_force(
    case: tuple[StayRule, list[tuple[date, date | None]]],
) -> None:
    rule, past = case
    allowance = allowed_stay_until(ENTRY, past, rule)
    closed = [(start, end if end is not None else ENTRY - days(1)) for start, end in past]
    closed = [(start, min(end, ENTRY - days(1))) for start, end in closed if start < ENTRY]
    assert allowance.allowed_until is not None and allowance.days_remaining is not None
    until = allowance.allowed_until
    assert allowance.days_remaining == (until - ENTRY).days + 1 >= 0
    assert rule.max_days is not None
    assert allowance.days_remaining <= rule.max_days
    assert rule_holds_until(ENTRY, until, closed, rule)
    assert not rule_holds_until(ENTRY, until + days(1), closed, rule)
    assert allowance.already_used == days_in_window(ENTRY - days(1), closed, rule.window_days - 1)
    assert allowance.days_remaining >= rule.max_days - allowance.already_used


# --- own citizens, pairing, and limits computed when read -----------------------------------


def test_own_citizens_have_no_limit_by_default() -> None:
    rules = default_stay_rules("MLI", country="MRT")
    assert rules.rule_for("MRT").is_unlimited
    assert rules.rule_for("MRT").is_unlimited and rules.is_citizen("mrt")
    assert rules.rule_for("MLI") == PARTNER_STAY_RULE and not rules.is_citizen("MLI")
    assert rules.rule_for("SEN") == DEFAULT_STAY_RULE
    assert stay_limit(rules, "MRT", ENTRY, [(ENTRY - days(170), None)]) is None
    assert default_stay_rules("MLI").rule_for("MRT") == DEFAULT_STAY_RULE  # no country: no one
    assert default_stay_rules("MLI", country="MLI").rule_for("MLI").is_unlimited  # Mali's posts


def test_citizens_follow_rules_that_name_them() -> None:
    limited = StayRule(max_days=30, window_days=60)
    rules = StayRules.from_mapping(
        {"default": RULE_90_180.to_mapping(), "MRT": limited.to_mapping()}
    ).for_country("MRT")
    assert rules.is_citizen("MRT") and rules.rule_for("MRT") == limited


def test_published_rules_apply_to_the_node_country() -> None:
    published = StayRules.from_mapping({"default": {"max_days": 30, "window_days": 60}})
    assert published.rule_for("MRT") == StayRule(30, 60)  # no country known yet
    at_a_mauritanian_post = published.for_country("MRT")
    assert at_a_mauritanian_post.rule_for("MRT").is_unlimited
    assert at_a_mauritanian_post.rule_for("MLI") == StayRule(30, 60)
    assert published.for_country("MRT").to_mapping() == published.to_mapping()


def test_citizens_must_be_a_nationality_code() -> None:
    with pytest.raises(ValueError, match="ICAO"):
        default_stay_rules("MLI", country="M1")
    assert StayRules(DEFAULT_STAY_RULE, citizens="d<<").citizens == "D"


@pytest.mark.parametrize(
    ("movements", "expected"),
    [
        ([], []),
        ([(ENTRY, "exit")], []),  # an exit with no entry opens nothing
        ([(ENTRY, "entry")], [(ENTRY, None)]),
        ([(ENTRY, "entry"), (ENTRY + days(3), "exit")], [(ENTRY, ENTRY + days(3))]),
        (
            [(ENTRY, "entry"), (ENTRY + days(2), "entry"), (ENTRY + days(5), "exit")],
            [(ENTRY, ENTRY + days(2)), (ENTRY + days(2), ENTRY + days(5))],
        ),
        (
            [(ENTRY, "exit"), (ENTRY + days(1), "entry"), (ENTRY + days(2), "exit")],
            [(ENTRY + days(1), ENTRY + days(2))],
        ),
    ],
)
def test_pair_stays(
    movements: list[tuple[date, str]], expected: list[tuple[date, date | None]]
) -> None:
    assert pair_stays(movements) == expected


def test_stay_limit_follows_the_rules_it_is_given() -> None:
    earlier = [(ENTRY - days(40), ENTRY - days(11))]  # 30 days used
    before = default_stay_rules("MLI", country="MRT")
    after = StayRules.from_mapping({"default": {"max_days": 45, "window_days": 90}})
    assert stay_limit(before, "SEN", ENTRY, earlier) == ENTRY + days(59)
    assert stay_limit(after, "SEN", ENTRY, earlier) == ENTRY + days(14)
    assert stay_limit(before, "MLI", ENTRY, []) == ENTRY + days(179)
    assert stay_limit(after, "MLI", ENTRY, []) == ENTRY + days(44)


@pytest.mark.parametrize(
    ("code", "forms"), [("MRT", ("MRT",)), ("D", ("D", "D<<")), ("d<<", ("D", "D<<"))]
)
def test_stored_nationality_forms(code: str, forms: tuple[str, ...]) -> None:
    assert stored_nationality_forms(code) == forms
