"""Fuzzing the whole API with schemathesis, as every role and as nobody, against a real post
(`borderpost serve` on SQLite): no operation may answer a server error, and none may answer
a status code its OpenAPI document does not name.

The number of examples per operation is bounded so that the run takes a few minutes; the
seed is fixed so that a failure can be replayed (`st replay` with the printed test case id).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import ServerProcess, cli, node_env

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
PASSWORD = "fuzz-password-123"
ROLES = ("officer", "supervisor", "protection", "hq_analyst", "liaison", "admin")
CHECKS = "not_a_server_error,status_code_conformance"
EXAMPLES = "12"
SEED = "20261204"


@pytest.fixture(scope="module")
def fuzzed_post(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A post with one account of every role, each logged in before any fuzzing starts
    (fuzzing the login throttles this address)."""
    env = node_env(tmp_path_factory.mktemp("fuzzed-post"), node_code="MR-GOGUI")
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


def schemathesis(url: str, *headers: str) -> subprocess.CompletedProcess[str]:
    command = [SCHEMATHESIS, "run", f"{url}/schema/openapi.json", "--checks", CHECKS]
    command += ["--max-examples", EXAMPLES, "--seed", SEED, "--no-color", "--workers", "1"]
    command += ["--phases", "examples,coverage,fuzzing", "--request-timeout", "30"]
    # Logging out would end the very login the run uses; it is tested elsewhere.
    command += ["--exclude-path", "/api/auth/logout"]
    for header in headers:
        command += ["--header", header]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("role", [*ROLES, None])
def test_no_server_error_and_no_undocumented_status(
    fuzzed_post: tuple[str, dict[str, str]], role: str | None
) -> None:
    url, tokens = fuzzed_post
    headers = [f"Authorization: Bearer {tokens[role]}"] if role else []
    run = schemathesis(url, *headers)
    summary = run.stdout[-12000:]
    assert "Test cases:" in run.stdout, run.stdout + run.stderr  # it really ran
    assert run.returncode == 0, summary
    health = httpx.get(f"{url}/api/health")
    assert health.status_code == 200  # the server survived the run
