"""Allowed-stay rules ("90 days within any 180") and the stay a traveller may make on entry.

A node's own nationals (``StayRules.citizens``, the node's country) have no limit unless the
rules name their nationality. A stay's limit is computed when it is read, from the rules in
force then (``stay_limit``), never taken from what was recorded at entry.

Days are counted Schengen-style: the entry day and the exit day both count as days present, and
a day is counted once even if the traveller crossed several times on it. A rule is respected on
day ``d`` when the days present in the rolling window ``[d - window_days + 1, d]`` number at
most ``max_days``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_STAY_RULE",
    "PARTNER_STAY_RULE",
    "StayAllowance",
    "StayRule",
    "StayRules",
    "allowed_stay_until",
    "default_stay_rules",
    "overstay_days",
    "pair_stays",
    "stay_limit",
    "stored_nationality_forms",
]

_NATIONALITY = re.compile(r"[A-Z]{1,3}")
_RULE_KEYS = frozenset({"max_days", "window_days"})
_DEFAULT_KEY = "default"


@dataclass(frozen=True)
class StayRule:
    """At most ``max_days`` days present within any ``window_days`` consecutive days.

    ``1 <= max_days < window_days``, so a single stay can never exceed ``max_days`` days.

    ``max_days=None`` means unlimited (e.g. free movement); ``window_days`` is then ignored.
    """

    max_days: int | None
    window_days: int

    def __post_init__(self) -> None:
        if self.max_days is None:
            return
        if _is_not_int(self.max_days) or _is_not_int(self.window_days):
            raise ValueError("max_days and window_days must be whole numbers")
        if self.window_days < 1:
            raise ValueError("window_days must be at least 1")
        if not 1 <= self.max_days < self.window_days:
            raise ValueError(
                f"max_days must be at least 1 and less than window_days ({self.window_days}); "
                "N days within N days limits nothing: use null for an unlimited stay"
            )

    @classmethod
    def unlimited(cls) -> StayRule:
        return cls(max_days=None, window_days=0)

    @property
    def is_unlimited(self) -> bool:
        return self.max_days is None

    def to_mapping(self) -> dict[str, int | None]:
        return {"max_days": self.max_days, "window_days": self.window_days}


def _is_not_int(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


DEFAULT_STAY_RULE = StayRule(max_days=90, window_days=180)
# Citizens of the partner country (e.g. Mali at a Mauritanian post) by default; configurable
# through BORDERPOST_STAY_RULES_JSON / StayRules.from_mapping.
PARTNER_STAY_RULE = StayRule(max_days=180, window_days=365)


def _nationality_code(nationality: str) -> str:
    """ICAO nationality code: uppercase, MRZ filler '<' and spaces removed ("D<<" -> "D")."""
    return nationality.replace("<", "").strip().upper()


def stored_nationality_forms(code: str) -> tuple[str, ...]:
    """The ways a nationality is stored on a traveller: the ICAO code as is and padded with
    the MRZ filler to three characters ("D" -> ("D", "D<<"))."""
    key = _nationality_code(code)
    return tuple(dict.fromkeys((key, key.ljust(3, "<"))))


@dataclass(frozen=True)
class StayRules:
    """The rule for each nationality (ICAO codes), with a default for everyone else.

    ``citizens`` is the node's own nationality: its citizens have no stay limit and need no
    recorded entry to leave, unless ``by_nationality`` names that nationality explicitly.
    """

    default: StayRule
    by_nationality: Mapping[str, StayRule] = field(default_factory=dict)
    citizens: str | None = None

    def __post_init__(self) -> None:
        normalised: dict[str, StayRule] = {}
        for code, rule in self.by_nationality.items():
            key = _nationality_code(code)
            if not _NATIONALITY.fullmatch(key):
                raise ValueError(f"{code!r} is not an ICAO nationality code (e.g. MLI)")
            if key in normalised:
                raise ValueError(f"nationality {key} is configured twice")
            normalised[key] = rule
        object.__setattr__(self, "by_nationality", MappingProxyType(normalised))
        if self.citizens is not None:
            citizens = _nationality_code(self.citizens)
            if not _NATIONALITY.fullmatch(citizens):
                raise ValueError(f"{self.citizens!r} is not an ICAO nationality code (e.g. MRT)")
            object.__setattr__(self, "citizens", citizens)

    def rule_for(self, nationality: str) -> StayRule:
        code = _nationality_code(nationality)
        rule = self.by_nationality.get(code)
        if rule is not None:
            return rule
        if code == self.citizens:
            return StayRule.unlimited()
        return self.default

    def is_citizen(self, nationality: str) -> bool:
        """The traveller is one of the node's own nationals."""
        return self.citizens is not None and _nationality_code(nationality) == self.citizens

    def for_country(self, country: str | None) -> StayRules:
        """These rules at a node of ``country``: its citizens become ``citizens``."""
        return replace(self, citizens=country)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> StayRules:
        """Parse ``{"default": {"max_days": 90, "window_days": 180}, "MLI": {...}}``.

        ``"max_days": null`` (``window_days`` then optional) means unlimited. Raises ValueError
        naming the offending entry on any problem.
        """
        if not isinstance(config, Mapping):
            raise ValueError("stay rules must be a mapping of nationality -> rule")
        if _DEFAULT_KEY not in config:
            raise ValueError('stay rules need a "default" rule')
        default = _rule_from_mapping(_DEFAULT_KEY, config[_DEFAULT_KEY])
        others = {
            str(code): _rule_from_mapping(str(code), value)
            for code, value in config.items()
            if code != _DEFAULT_KEY
        }
        return cls(default=default, by_nationality=others)

    def to_mapping(self) -> dict[str, dict[str, int | None]]:
        return {
            _DEFAULT_KEY: self.default.to_mapping(),
            **{code: rule.to_mapping() for code, rule in self.by_nationality.items()},
        }


def _rule_from_mapping(name: str, value: object) -> StayRule:
    if not isinstance(value, Mapping):
        raise ValueError(f"stay rule {name!r} must be a mapping with max_days and window_days")
    unknown = set(value) - _RULE_KEYS
    if unknown:
        raise ValueError(f"stay rule {name!r} has unknown keys: {', '.join(sorted(unknown))}")
    if "max_days" not in value:
        raise ValueError(f"stay rule {name!r} needs max_days (null for unlimited)")
    max_days = value["max_days"]
    if max_days is None:
        return StayRule.unlimited()
    if "window_days" not in value:
        raise ValueError(f"stay rule {name!r} needs window_days")
    try:
        return StayRule(max_days=max_days, window_days=value["window_days"])
    except ValueError as exc:
        raise ValueError(f"stay rule {name!r}: {exc}") from None


def default_stay_rules(
    partner_country: str | None,
    partner_rule: StayRule = PARTNER_STAY_RULE,
    *,
    country: str | None = None,
) -> StayRules:
    """90 days within 180 for everyone; ``partner_rule`` (180 within 365) for the partner's
    citizens; no limit for the citizens of ``country`` (the node's own). Posts override the
    rules with their own configuration (``StayRules.from_mapping``)."""
    partner = partner_country if partner_country != country else None  # never one's own
    by_nationality = {partner: partner_rule} if partner else {}
    return StayRules(default=DEFAULT_STAY_RULE, by_nationality=by_nationality, citizens=country)


@dataclass(frozen=True)
class StayAllowance:
    """The stay allowed from an entry day.

    ``allowed_until``: last day the traveller may be present; ``None`` when the rule is
    unlimited. When nothing is left it is the day BEFORE entry, so that
    ``overstay_days(allowed_until, entry_date) == 1`` (being there on entry day already exceeds).
    ``days_remaining``: days of presence allowed from the entry day inclusive
    (``allowed_until - entry_date + 1``; 0 = allowance used up; ``None`` when unlimited). It can
    exceed ``max_days - already_used`` because old days leave the rolling window during the stay.
    ``already_used``: days present in the window before the entry day (0 when unlimited).
    """

    allowed_until: date | None
    days_remaining: int | None
    already_used: int

    @property
    def exhausted(self) -> bool:
        return self.days_remaining == 0


def _presence(
    entry_date: date, past_stays: Sequence[tuple[date, date | None]], window: int
) -> bytearray:
    """Presence on the ``window - 1`` days before ``entry_date``: item ``i`` is 1 when the
    traveller was present on day ``entry_date - window + 1 + i``. An open stay counts until
    ``entry_date - 1``."""
    since = entry_date.toordinal() - window + 1
    last_day = entry_date.toordinal() - 1
    present = bytearray(max(0, window - 1))
    for arrived, left in past_stays:
        if left is not None and left < arrived:
            raise ValueError(f"stay exit {left} is before its entry {arrived}")
        first = max(arrived.toordinal(), since)
        last = min(left.toordinal() if left is not None else last_day, last_day)
        if first <= last:
            present[first - since : last - since + 1] = b"\x01" * (last - first + 1)
    return present


def allowed_stay_until(
    entry_date: date, past_stays: Sequence[tuple[date, date | None]], rule: StayRule
) -> StayAllowance:
    """How long a traveller entering on ``entry_date`` may stay under ``rule``.

    ``past_stays`` are (entry day, exit day) pairs, both inclusive. An exit of ``None`` (no exit
    recorded) counts as present up to the day before ``entry_date``; pass the entry day as exit
    instead to count only that day. Days on or after ``entry_date`` belong to the new stay, so
    past stays are clipped there (a same-day exit and re-entry counts that day once).

    Returns the longest stay such that on every day ``d`` of it the days present in
    ``[d - window_days + 1, d]`` are at most ``max_days``. The count of such a window can only
    grow by one a day (the new day) and lose at most one (the day leaving the window), so the
    first day it exceeds the limit ends the stay: one pass over at most ``max_days`` days,
    over the past presence of one window held as a byte per day.
    """
    if rule.max_days is None:
        return StayAllowance(allowed_until=None, days_remaining=None, already_used=0)
    present = _presence(entry_date, past_stays, rule.window_days)
    already_used = present.count(1)
    if not already_used:  # the usual case: nothing in the window, the whole allowance
        return StayAllowance(
            allowed_until=entry_date + timedelta(days=rule.max_days - 1),
            days_remaining=rule.max_days,
            already_used=0,
        )
    past_in_window = already_used
    days_allowed = 0
    # on stay day j (j >= 1) the day leaving the window is present[j - 1]
    while days_allowed < rule.max_days:
        if days_allowed:
            past_in_window -= present[days_allowed - 1]
        if past_in_window + days_allowed + 1 > rule.max_days:
            break
        days_allowed += 1
    return StayAllowance(
        allowed_until=entry_date + timedelta(days=days_allowed - 1),
        days_remaining=days_allowed,
        already_used=already_used,
    )


def overstay_days(allowed_until: date | None, exit_or_today: date) -> int:
    """Days present after ``allowed_until`` (0 if none, or if the stay is unlimited)."""
    if allowed_until is None:
        return 0
    return max(0, (exit_or_today - allowed_until).days)


def pair_stays(movements: Iterable[tuple[date, str]]) -> list[tuple[date, date | None]]:
    """Stays from movements in time order, as (day, ``"entry"`` or ``"exit"``): each entry
    is paired with the exit that follows it (an entry after an entry closes the first on
    the second's day; an exit without an entry opens nothing); the last entry may be open."""
    stays: list[tuple[date, date | None]] = []
    open_entry: date | None = None
    for day, direction in movements:
        if direction == "entry":
            if open_entry is not None:
                stays.append((open_entry, day))
            open_entry = day
        elif open_entry is not None:
            stays.append((open_entry, day))
            open_entry = None
    if open_entry is not None:
        stays.append((open_entry, None))
    return stays


def stay_limit(
    rules: StayRules,
    nationality: str,
    entry_date: date,
    earlier_stays: Sequence[tuple[date, date | None]],
) -> date | None:
    """The last day a traveller who entered on ``entry_date`` may stay under ``rules`` (the
    rules in force when the stay is read); ``None`` when the stay is unlimited.
    ``earlier_stays`` are the traveller's stays before this entry (see ``pair_stays``)."""
    rule = rules.rule_for(nationality)
    return allowed_stay_until(entry_date, earlier_stays, rule).allowed_until
