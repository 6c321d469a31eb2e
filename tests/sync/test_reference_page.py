"""A reference page stops at a size, not only at a count: face entries carry their listed
portrait, and a post's link is thin."""

from __future__ import annotations

from typing import Any, NamedTuple

from sync import api


class Row(NamedTuple):
    seq: int
    record_type: str
    payload: dict[str, Any]


def test_a_page_stops_once_its_payloads_pass_the_byte_budget() -> None:
    portrait = "ab" * 7_000  # a listed portrait as hex, about 14 KB
    rows = [Row(n, "watchlist_entry", {"listed_portrait": portrait}) for n in range(1, 401)]
    page = api._within_page_bytes(rows)
    size = sum(len(r.payload["listed_portrait"]) + 22 for r in page)
    assert 0 < len(page) < len(rows) and size <= api.REFERENCE_PAGE_BYTES
    assert page == rows[: len(page)]  # the first ones, in order: the next page starts after


def test_one_change_larger_than_the_budget_still_travels_alone() -> None:
    huge = [Row(1, "watchlist_entry", {"x": "y" * (api.REFERENCE_PAGE_BYTES + 1)}), Row(2, "t", {})]
    assert api._within_page_bytes(huge) == huge[:1]
    small = [Row(n, "officer", {"id": n}) for n in range(5)]
    assert api._within_page_bytes(small) == small
