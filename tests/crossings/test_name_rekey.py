"""``borderpost db rekey-names`` (subprocess, real SQLite database): a traveller stored with the
key an earlier release gave a name holding a Cyrillic look-alike gets today's key, so name
search finds it; ASCII names are not touched; the change is audited; a second run changes
nothing. A traveller rekeyed in place is then found by name search (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from registry.db import Database
from registry.models import AuditEvent, Traveller
from registry.names import name_key
from registry.services.name_keys import rekey_travellers
from registry.settings import load_settings
from tests.support.nodes import NodeUnderTest
from tests.support.servers import cli, node_env

CYRILLIC_SURNAME = "OUEDR\u0410OGO"
OLD_KEY = "ibrahim ogo uedr"  # what the key was before the look-alike folding


async def test_rekey_names_updates_the_keys_of_look_alike_names(tmp_path: Path) -> None:
    env = node_env(tmp_path / "var", node_code="MR-GOGUI")
    cli(env, "db", "upgrade")
    database = Database(load_settings(env))
    try:
        async with database.write_transaction() as session:
            for surname, key in ((CYRILLIC_SURNAME, OLD_KEY), ("DIALLO", "kept as stored")):
                session.add(
                    Traveller(
                        origin="MR-GOGUI",
                        surname=surname,
                        given_names="IBRAHIM",
                        name_key=key,
                        date_of_birth=date(1975, 5, 5),
                        sex="M",
                        nationality="BFA",
                    )
                )
        first = json.loads(cli(env, "db", "rekey-names").stdout)
        assert first == {"read": 2, "checked": 1, "changed": 1}
        async with database.session() as session:
            keys = dict(
                (await session.execute(select(Traveller.surname, Traveller.name_key))).all()
            )
            audited = await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.purpose == "rekey_names")
            )
        assert keys == {
            CYRILLIC_SURNAME: name_key("OUEDRAOGO", "IBRAHIM"),
            "DIALLO": "kept as stored",
        }
        assert audited == 1
        again = json.loads(cli(env, "db", "rekey-names").stdout)
        assert again == {"read": 2, "checked": 1, "changed": 0}
    finally:
        await database.dispose()


async def test_rekeyed_traveller_is_found_by_name_search(post_node: NodeUnderTest) -> None:
    """On SQLite and PostgreSQL: before the rekey the stale key hides the traveller from a
    search without date of birth; after it, the plain spelling finds it."""
    async with post_node.db.write_transaction() as session:
        session.add(
            Traveller(
                origin=post_node.node.settings.node_code,
                surname=CYRILLIC_SURNAME,
                given_names="IBRAHIM",
                name_key=OLD_KEY,
                date_of_birth=date(1975, 5, 5),
                sex="M",
                nationality="BFA",
            )
        )

    async def found() -> list[str]:
        response = await post_node.client.get(
            "/api/search/name",
            params={"name": "OUEDRAOGO IBRAHIM"},
            headers=post_node.auth("supervisor"),
        )
        assert response.status_code == 200, response.text
        return [hit["traveller"]["surname"] for hit in response.json()]

    assert await found() == []
    async with post_node.db.write_transaction() as session:
        report = await rekey_travellers(session, origin=post_node.node.settings.node_code)
    assert report.changed == 1
    assert await found() == [CYRILLIC_SURNAME]
