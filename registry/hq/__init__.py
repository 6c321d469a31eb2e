"""Headquarters, the national node's view across every post (roles hq_analyst and admin).

- ``search``: by document, by name and date of birth, by crossing filters;
- ``timeline``: a person's crossings over the traveller records linked to it;
- ``statistics``: flows, net flow, demographics and alerts as tables (JSON or CSV);
- ``stays``: open stays and overstayers, closed across posts by the document;
- ``partitions``: the monthly crossing partitions, kept ahead at national start-up;
- ``shared``: the local-day range, page and choice checks every query uses;
- ``controller``: /api/hq (national only); ``pages``: /web/hq.

Every read of personal data is audited, statistics included. The services' public API is
re-exported here; the controller and pages are imported from their own modules.
"""

from __future__ import annotations

from registry.hq.partitions import ensure_month_partitions, partition_name
from registry.hq.search import (
    CrossingFilter,
    hq_search_by_document,
    hq_search_by_name,
    hq_search_crossings,
    name_matches,
)
from registry.hq.statistics import (
    StatTable,
    age_band,
    alert_statistics,
    demographic_statistics,
    flow_statistics,
    period_start,
)
from registry.hq.stays import cross_post_stays
from registry.hq.timeline import Link, linked_records, person_timeline

__all__ = [
    "CrossingFilter",
    "Link",
    "StatTable",
    "age_band",
    "alert_statistics",
    "cross_post_stays",
    "demographic_statistics",
    "ensure_month_partitions",
    "flow_statistics",
    "hq_search_by_document",
    "hq_search_by_name",
    "hq_search_crossings",
    "linked_records",
    "name_matches",
    "partition_name",
    "period_start",
    "person_timeline",
]
