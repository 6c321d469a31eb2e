"""A real `borderpost serve` process: an acknowledged registration survives kill -9, the
CLI commands work as an operator runs them, and an unmigrated database is refused."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.factories import passport_mrz
from tests.support.servers import (
    PASSWORD,
    ServerProcess,
    bearer,
    cli,
    node_env,
)


def _mrz(number: str) -> str:
    return passport_mrz(
        number,
        surname="KEITA",
        given="AMADOU",
        date_of_birth=date(1980, 1, 1),
        expiry=date.today() + timedelta(days=400),
    )


def test_acknowledged_registration_survives_kill_9(migrated_env: dict[str, str]) -> None:
    server = ServerProcess(migrated_env).start()
    try:
        headers = bearer(server.url, "awa")
        ids = []
        for n in range(5):
            response = httpx.post(
                f"{server.url}/api/crossings",
                headers=headers,
                json={"direction": "entry", "mrz": _mrz(f"K{n:07d}")},
            )
            assert response.status_code == 201
            ids.append(response.json()["id"])
    finally:
        server.kill()  # SIGKILL right after the last 201: no shutdown hooks run
    database = Path(migrated_env["BORDERPOST_DATA_DIR"]) / "borderpost.db"
    with sqlite3.connect(database) as conn:
        stored = {row[0] for row in conn.execute("SELECT lower(id) FROM crossing")}
    assert {i.replace("-", "") for i in ids} <= {s.replace("-", "") for s in stored}
    restarted = ServerProcess(migrated_env).start()
    try:
        headers = bearer(restarted.url, "awa")
        for crossing_id in ids:
            again = httpx.get(f"{restarted.url}/api/crossings/{crossing_id}", headers=headers)
            assert again.status_code == 200
    finally:
        restarted.stop()


def test_sqlite_is_configured_for_durability(migrated_env: dict[str, str]) -> None:
    import asyncio

    from sqlalchemy import text

    from registry.db import Database
    from registry.settings import load_settings

    async def pragmas() -> tuple[str, int, int]:
        database = Database(load_settings(migrated_env))
        try:
            async with database.session() as session:
                mode = await session.scalar(text("PRAGMA journal_mode"))
                sync = await session.scalar(text("PRAGMA synchronous"))
                busy = await session.scalar(text("PRAGMA busy_timeout"))
                return mode, sync, busy
        finally:
            await database.dispose()

    mode, sync, busy = asyncio.run(pragmas())
    assert (mode, sync) == ("wal", 2)  # 2 = FULL: the WAL is fsynced at every commit
    assert busy >= 5000


def test_unmigrated_database_is_refused(tmp_path: Path) -> None:
    env = node_env(tmp_path / "empty")
    server = ServerProcess(env)
    with pytest.raises(RuntimeError, match="exited"):
        server.start(timeout=20)
    log = next((tmp_path / "empty").glob("server-*.log")).read_text()
    assert "borderpost db upgrade" in log


def test_mrz_check_cli_exit_codes(tmp_path: Path) -> None:
    env = node_env(tmp_path)
    good = cli(env, "mrz", "check", stdin=_mrz("L1234567") + "\r\n")
    assert json.loads(good.stdout)["document_number"] == "L1234567"
    lines = _mrz("L1234567").split("\n")
    broken = lines[0] + "\n" + lines[1][:9] + ("0" if lines[1][9] != "0" else "1") + lines[1][10:]
    bad = cli(env, "mrz", "check", stdin=broken, check=False)
    assert bad.returncode == 1
    problems = json.loads(bad.stdout)["problems"]
    assert {"code": "check_digit_failed", "field": "document_number"}.items() <= problems[0].items()


def test_receipt_verify_and_audit_verify_cli(migrated_env: dict[str, str]) -> None:
    server = ServerProcess(migrated_env).start()
    try:
        headers = bearer(server.url, "awa")
        created = httpx.post(
            f"{server.url}/api/crossings",
            headers=headers,
            json={"direction": "exit", "mrz": _mrz("R7654321")},
        ).json()
    finally:
        server.stop()
    ok = cli(migrated_env, "receipt", "verify", created["receipt"])
    assert json.loads(ok.stdout)["crossing_id"] == created["id"]
    tampered = created["receipt"][:-3] + ("AAA" if created["receipt"][-3:] != "AAA" else "BBB")
    bad = cli(migrated_env, "receipt", "verify", tampered, check=False)
    assert bad.returncode == 1 and json.loads(bad.stdout)["valid"] is False
    assert json.loads(cli(migrated_env, "audit", "verify").stdout)["ok"] is True
    database = Path(migrated_env["BORDERPOST_DATA_DIR"]) / "borderpost.db"
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE audit_event SET purpose='tampered' WHERE seq=2")
    broken = cli(migrated_env, "audit", "verify", check=False)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["first_broken_seq"] == 2


def test_bootstrap_creates_one_admin_and_is_idempotent(tmp_path: Path) -> None:
    env = node_env(tmp_path / "var")
    cli(env, "db", "upgrade")
    first = cli(env, "bootstrap").stdout
    secret = tmp_path / "var" / "bootstrap-admin.txt"
    assert secret.stat().st_mode & 0o077 == 0
    password = secret.read_text().split("password: ")[1].strip()
    second = cli(env, "bootstrap").stdout
    assert "admin" in first and "admin" in second
    assert secret.read_text().split("password: ")[1].strip() == password
    key = tmp_path / "var" / "keys" / "node_ed25519.pem"
    assert key.stat().st_mode & 0o077 == 0


def test_officer_passwd_and_deactivate(migrated_env: dict[str, str]) -> None:
    new_password = "a-brand-new-password"
    changed = cli(
        {**migrated_env, "BORDERPOST_NEW_PASSWORD": new_password}, "officer", "passwd", "awa"
    )
    assert json.loads(changed.stdout)["must_change_password"] is True  # as an admin's reset
    bad_name = cli(
        {**migrated_env, "BORDERPOST_NEW_PASSWORD": PASSWORD},
        "officer",
        "add",
        "--username",
        "Bad Name",
        "--full-name",
        "X",
        "--role",
        "officer",
        check=False,
    )
    assert bad_name.returncode != 0 and "username" in bad_name.stderr.lower()
    server = ServerProcess(migrated_env).start()
    try:
        old = httpx.post(
            f"{server.url}/api/auth/login", json={"username": "awa", "password": PASSWORD}
        )
        assert old.status_code == 401
        new = httpx.post(
            f"{server.url}/api/auth/login", json={"username": "awa", "password": new_password}
        )
        assert new.status_code == 200
    finally:
        server.stop()
    assert json.loads(cli(migrated_env, "officer", "deactivate", "awa").stdout)["active"] is False
    server = ServerProcess(migrated_env).start()
    try:
        refused = httpx.post(
            f"{server.url}/api/auth/login", json={"username": "awa", "password": new_password}
        )
        assert refused.status_code == 401
    finally:
        server.stop()
