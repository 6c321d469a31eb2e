"""National headquarters (role=national): the role matrix of every HQ route, and the audit of
every read (one event for an allowed role, none for a refused one).

The national node and its hand-made dataset are tests/hq_node.py and tests/hq_dataset.py, on
PostgreSQL and on SQLite. Migrations and schema drift are in test_hq_schema.py, EXPLAIN plans
in test_hq_plans.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from registry.app import create_app
from registry.models import AuditEvent
from tests.support.hq_dataset import NATIONAL
from tests.support.hq_node import OCTOBER, Hq, with_hq_routes
from tests.support.nodes import ROLES, national_settings

HQ_ROLES = {"hq_analyst", "admin"}


ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/api/hq/search/document", {"issuing_state": "MLI", "number": "P1000001"}),
    ("/api/hq/search/name", {"name": "Mohamed Ould Ahmed"}),
    ("/api/hq/crossings", OCTOBER),
    ("/api/hq/travellers/{T1}/timeline", {}),
    ("/api/hq/stats/flows", OCTOBER),
    ("/api/hq/stats/flows.csv", OCTOBER),
    ("/api/hq/stats/net-flow", OCTOBER),
    ("/api/hq/stats/net-flow.csv", OCTOBER),
    ("/api/hq/stats/demographics", OCTOBER),
    ("/api/hq/stats/demographics.csv", OCTOBER),
    ("/api/hq/stats/alerts", OCTOBER),
    ("/api/hq/stats/alerts.csv", OCTOBER),
    ("/api/hq/stays/open", {"as_of": "2026-11-01"}),
    ("/api/hq/stays/overstays", {"as_of": "2026-11-01"}),
]


def test_every_hq_route_is_in_the_role_matrix(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'routes.db'}"
    app = with_hq_routes(create_app(national_settings(tmp_path, url)))
    routes = {route.path for route in app.routes if route.path.startswith("/api/hq")}
    covered = {path.replace("{T1}", "{traveller_id:uuid}") for path, _ in ENDPOINTS}
    assert routes == covered


async def test_role_matrix_and_audit(national_node: Hq) -> None:
    node = national_node
    failures = []
    for template, params in ENDPOINTS:
        path = template.replace("{T1}", node.world["T1"])
        anonymous = await node.client.get(path, params=params)
        if anonymous.status_code != 401:
            failures.append(f"{path} without token -> {anonymous.status_code}")
        for role in ROLES:
            before = await node.audit_count()
            response = await node.client.get(path, params=params, headers=node.auth(role))
            expected = 200 if role in HQ_ROLES else 403
            if response.status_code != expected:
                failures.append(f"{path} as {role} -> {response.status_code}, not {expected}")
            audited = await node.audit_count() - before
            if audited != (1 if role in HQ_ROLES else 0):
                failures.append(f"{path} as {role} wrote {audited} audit events")
    assert failures == []
    async with node.db.session() as session:
        last = await session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    admin = await node.officer("admin")
    assert last is not None and last.officer_id == admin.id and last.origin == NATIONAL
