"""Two countries under one signed agreement: a national node on PostgreSQL and a post on
SQLite each, the officers, crossings and liaison logins the bilateral tests use."""

from __future__ import annotations

import asyncio
import tomllib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from registry.receipts import load_or_create_node_key
from sync.exchange.pseudonyms import write_blinding_key
from sync.exchange.signing import sign_agreement
from tests.support.cluster import Cluster, Post, add_account, enrol
from tests.support.factories import passport_lines
from tests.support.nodes import create_pg_database, drop_pg_database, missing, pg_reachable, pg_url
from tests.support.servers import ServerProcess, cli, node_env

AGREEMENT = Path(__file__).resolve().parents[2] / "deploy" / "agreements" / "mr-ml-2026.toml"


BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


@dataclass
class Country:
    code: str  # MRT | MLI
    cluster: Cluster
    post: Post


def agreement_text(root: Path, nationals: dict[str, ServerProcess]) -> str:
    text = AGREEMENT.read_text()
    data = tomllib.loads(text)
    for party in data["parties"]:
        node = "MR-NATIONAL" if party["country"] == "MRT" else "ML-NATIONAL"
        env_dir = root / node
        public = load_or_create_node_key(env_dir / "keys" / "node_ed25519.pem").public_key()
        from registry.receipts import public_key_to_text

        text = text.replace(party["public_key"], public_key_to_text(public))
        text = text.replace(party["url"], nationals[node].url)
    return text


def key_file(root: Path, node: str) -> Path:
    """A national node's own blinding key for the agreement (never shared)."""
    return root / node / "agreement.key"


def start_countries(root: Path, edit: Callable[[str], str] | None = None) -> dict[str, Country]:
    """Two national nodes and a post each; ``edit`` may change the agreement before signing."""
    databases = {
        n: f"bp_e2e_{n[:2].lower()}_{uuid.uuid4().hex[:6]}" for n in ("MR-NATIONAL", "ML-NATIONAL")
    }
    envs, servers = {}, {}
    for node, database in databases.items():
        asyncio.run(create_pg_database(database))
        (root / node).mkdir(parents=True, exist_ok=True)
        write_blinding_key(key_file(root, node))
        envs[node] = node_env(
            root / node,
            role="national",
            node_code=node,
            country=node[:2] + ("T" if node.startswith("MR") else "I"),
            database_url=pg_url(database),
            secret_key="k" * 40,
            agreement_file=str(root / "agreement.toml"),
            agreement_key_file=str(key_file(root, node)),
            sync_interval_seconds="3600",
            agreement_development_urls="true",  # two nodes over http on 127.0.0.1
        )
        envs[node]["BORDERPOST_COUNTRY"] = "MRT" if node.startswith("MR") else "MLI"
        cli(envs[node], "db", "upgrade")
        cli(envs[node], "keys", "show")
        add_account(envs[node], "liaison", "liaison")
        servers[node] = ServerProcess(envs[node])
    text = agreement_text(root, servers)
    if edit is not None:
        text = edit(text)
    for node in databases:
        private = load_or_create_node_key(root / node / "keys" / "node_ed25519.pem")
        text = sign_agreement(text, node, private)
    (root / "agreement.toml").write_text(text)
    countries = {}
    for node, database in databases.items():
        national = servers[node].start()
        cluster = Cluster(root, database, envs[node], national)
        post_code = node[:2] + "-GOGUI"
        post_env = node_env(
            root / post_code,
            node_code=post_code,
            sync_interval_seconds="3600",
            country=envs[node]["BORDERPOST_COUNTRY"],
        )
        cli(post_env, "db", "upgrade")
        add_account(post_env, "desk", "officer")
        enrol(post_env, envs[node], national.url)
        post = Post(post_code, post_env, ServerProcess(post_env).start())
        cluster.posts[post_code] = post
        countries[envs[node]["BORDERPOST_COUNTRY"]] = Country(
            envs[node]["BORDERPOST_COUNTRY"], cluster, post
        )
    return countries


@contextmanager
def running_countries(
    root: Path, edit: Callable[[str], str] | None = None
) -> Iterator[dict[str, Country]]:
    """``start_countries`` (``edit`` changes the agreement's text before it is signed),
    stopped and their databases dropped afterwards."""
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    started = start_countries(root, edit)
    try:
        yield started
    finally:
        for country in started.values():
            country.cluster.stop()
            asyncio.run(drop_pg_database(country.cluster.database))


@pytest.fixture
def countries(tmp_path: Path) -> Iterator[dict[str, Country]]:
    """Two national nodes under one signed agreement, a post each."""
    with running_countries(tmp_path) as started:
        yield started


def cross(
    post: Post,
    direction: str,
    number: str,
    when: datetime,
    *,
    dob: date = date(1980, 1, 1),
    state: str = "MLI",
) -> str:
    lines = passport_lines(
        number,
        surname="KONATE",
        given="SEYDOU",
        nationality=state,
        date_of_birth=dob,
        expiry=date(2030, 1, 1),
    )
    response = httpx.post(
        f"{post.server.url}/api/crossings",
        headers=post.headers(),
        json={"direction": direction, "mrz": "\n".join(lines), "occurred_at": when.isoformat()},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def liaison_headers(country: Country) -> dict[str, str]:
    return country.cluster.national_token("liaison")
