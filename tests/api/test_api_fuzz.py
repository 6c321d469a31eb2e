"""Fuzzing the whole API with schemathesis, as every role and as nobody, against a real post
(`borderpost serve` on SQLite) and a real national node (PostgreSQL, with its sync, peer and
HQ operations): no operation may answer a server error, none may answer a status code its
OpenAPI document does not name, and every answer must fit the schema the document gives it
(the typed responses of issue 15).

The number of examples per operation is bounded so that the run takes a few minutes; the
seed is fixed so that a failure can be replayed (`st replay` with the printed test case id).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.nodes import create_pg_database, drop_pg_database, pg_url
from tests.support.servers import ServerProcess, cli, node_env

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
PASSWORD = "fuzz-password-123"
ROLES = ("officer", "supervisor", "protection", "hq_analyst", "liaison", "admin")
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
EXAMPLES = "12"
SEED = "20261204"


@pytest.fixture(scope="module", params=["post", "national"])
def fuzzed_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """A post (SQLite) or a national node (PostgreSQL) with one account of every role, each
    logged in before any fuzzing starts (fuzzing the login throttles this address)."""
    data_dir = tmp_path_factory.mktemp(f"fuzzed-{request.param}")
    database = ""
    if request.param == "post":
        env = node_env(data_dir, node_code="MR-GOGUI")
    else:
        database = f"bp_fuzz_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        asyncio.run(create_pg_database(database))
        env = node_env(
            data_dir,
            role="national",
            node_code="MR-NATIONAL",
            database_url=pg_url(database),
            secret_key="fuzz-secret-" + "x" * 40,
        )
    cli(env, "db", "upgrade")
    for role in ROLES:
        cli(
            {**env, "BORDERPOST_NEW_PASSWORD": PASSWORD},
            *("officer", "add", "--username", f"fuzz.{role}", "--full-name", f"Fuzz {role}"),
            *("--role", role),
        )
    server = ServerProcess(env).start()
    try:
        tokens = {}
        for role in ROLES:
            answer = httpx.post(
                f"{server.url}/api/auth/login",
                json={"username": f"fuzz.{role}", "password": PASSWORD},
            )
            assert answer.status_code == 200, answer.text
            tokens[role] = answer.json()["token"]
        yield server.url, tokens
    finally:
        server.stop()
        if database:
            asyncio.run(drop_pg_database(database))


def schemathesis(url: str, *headers: str) -> subprocess.CompletedProcess[str]:
    command = [SCHEMATHESIS, "run", f"{url}/schema/openapi.json", "--checks", CHECKS]
    command += ["--max-examples", EXAMPLES, "--seed", SEED, "--no-color", "--workers", "1"]
    command += ["--phases", "examples,coverage,fuzzing", "--request-timeout", "30"]
    # Logging out would end the very login the run uses; it is tested elsewhere.
    command += ["--exclude-path", "/api/auth/logout"]
    for header in headers:
        command += ["--header", header]
    # Run outside the repository: schemathesis keeps its state in .schemathesis/ there.
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=tempfile.gettempdir()
    )


@pytest.mark.slow
@pytest.mark.parametrize("role", [*ROLES, None])
def test_no_server_error_and_no_undocumented_status(
    fuzzed_node: tuple[str, dict[str, str]], role: str | None
) -> None:
    url, tokens = fuzzed_node
    headers = [f"Authorization: Bearer {tokens[role]}"] if role else []
    run = schemathesis(url, *headers)
    summary = run.stdout[-12000:]
    assert "Test cases:" in run.stdout, run.stdout + run.stderr  # it really ran
    assert run.returncode == 0, summary
    health = httpx.get(f"{url}/api/health")
    assert health.status_code == 200  # the server survived the run


def test_junk_partner_batch_without_agreement_is_refused_not_a_crash(
    fuzzed_node: tuple[str, dict[str, str]],
) -> None:
    """Found by the fuzzing: an unsigned batch to /api/exchange/batches on a national node
    with no agreement answered 500 (the refusal path read the absent agreement's partner)."""
    url, _ = fuzzed_node
    answer = httpx.post(
        f"{url}/api/exchange/batches",
        content=b"not a batch",
        headers={"content-type": "application/octet-stream"},
    )
    assert 400 <= answer.status_code < 500, answer.text
