"""No poison record stops sync (issue 12), end to end: a national node on PostgreSQL and two
posts on SQLite, all real servers, operated through the CLI as subprocesses.

The poison reaches the GOGUI post's outbox as an older or altered post would push it (the
post's own input checks refuse it today): a NUL in a crossing's remarks, a surname of 30 ×
U+FDFA (its NFKC name key is 510 characters, over the 400-character column), an account
homed at another post, a takeover of national's admin account, of KOBENI's account and of
KOBENI's crossing, and an HTML body pushed as a photo. The post pushes them, genuinely
signed, with its ordinary records. National quarantines exactly those (and the records
that depend on them), stores the rest, and acknowledges past them; the post names them in
`sync status` (exit 1), /api/sync/status and the pages' banner; national's admin sees them
on the sync page and in `sync quarantine list`, and discarding them clears the post.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.security import hash_password
from tests.support.cluster import PASSWORD, Cluster, Post, canonical, drop_cluster, start_cluster
from tests.support.nodes import missing, pg_reachable
from tests.support.servers import cli

GOGUI, KOBENI = "MR-GOGUI", "MR-KOBENI"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    started = start_cluster(tmp_path, (GOGUI, KOBENI))
    try:
        yield started
    finally:
        drop_cluster(started)


def _outbox_payload(post: Post, record_type: str, record_id: str) -> dict[str, Any]:
    import sqlite3

    with sqlite3.connect(post.data_dir / "borderpost.db") as conn:
        rows = conn.execute(
            "SELECT payload FROM outbox WHERE record_type = ? AND record_id = ? ORDER BY seq DESC",
            (record_type, record_id),
        ).fetchall()
    return json.loads(rows[0][0])


def _alter(post: Post, record_type: str, record_id: str, **changes: Any) -> None:
    import sqlite3

    payload = {**_outbox_payload(post, record_type, record_id), **changes}
    with sqlite3.connect(post.data_dir / "borderpost.db") as conn:
        conn.execute(
            "UPDATE outbox SET payload = ? WHERE record_type = ? AND record_id = ?",
            (json.dumps(payload), record_type, record_id),
        )


def _append(post: Post, record_type: str, record_id: str, payload: dict[str, Any]) -> None:
    import sqlite3

    with sqlite3.connect(post.data_dir / "borderpost.db") as conn:
        conn.execute(
            "INSERT INTO outbox (record_type, record_id, payload, created_at) VALUES (?, ?, ?, ?)",
            (record_type, record_id, json.dumps(payload), datetime.now(UTC).isoformat()),
        )


def _web_login(url: str, username: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=30)
    form = client.get("/web/login?lang=en")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post(
        "/web/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/web/account")
    meta = CSRF_META.search(page.text)
    assert meta is not None
    return client, meta.group(1)


def _status(post: Post) -> tuple[int, dict[str, Any], str]:
    result = cli(post.env, "sync", "status", check=False)
    return result.returncode, json.loads(result.stdout), result.stderr


def test_poison_records_are_quarantined_and_sync_goes_on(cluster: Cluster) -> None:
    gogui, kobeni = cluster.posts[GOGUI], cluster.posts[KOBENI]
    theirs = kobeni.register(1, "K")
    cli(kobeni.env, "sync", "now")
    their_crossing = _outbox_payload(kobeni, "crossing", theirs[0])
    their_desk = _outbox_payload(kobeni, "officer", their_crossing["officer_id"])
    (admin,) = cluster.national_rows(
        "SELECT id, username, full_name, role, home_post, password_hash, language, created_at, "
        "active FROM officer WHERE username = 'hq.admin'"
    )
    registered = gogui.register(3, "G")
    nul_crossing, long_crossing, _ordinary = registered
    _alter(gogui, "crossing", nul_crossing, remarks="seen\x00twice")
    long_traveller = _outbox_payload(gogui, "crossing", long_crossing)["traveller_id"]
    surname = "\ufdfa" * 30
    _alter(
        gogui,
        "traveller",
        long_traveller,
        surname=surname,
        name_key=unicodedata.normalize("NFKC", surname).lower(),
    )
    own_desk = _outbox_payload(gogui, "crossing", nul_crossing)["officer_id"]
    elsewhere = {**_outbox_payload(gogui, "officer", own_desk), "id": str(uuid.uuid4())}
    elsewhere.update(username="planted", home_post=KOBENI)
    _append(gogui, "officer", elsewhere["id"], elsewhere)
    stolen_admin = dict(
        zip(
            ("id", "username", "full_name", "role", "home_post", "password_hash", "language"),
            (str(admin[0]), *admin[1:7]),
            strict=True,
        ),
        created_at=admin[7].isoformat(),
        active=True,
    )
    stolen_admin.update(home_post=GOGUI, password_hash=hash_password("attacker-password"))
    _append(gogui, "officer", stolen_admin["id"], stolen_admin)
    stolen_desk = {**their_desk, "home_post": GOGUI, "full_name": "taken over"}
    _append(gogui, "officer", stolen_desk["id"], stolen_desk)
    stolen_crossing = {
        **their_crossing,
        "origin": GOGUI,
        "decision": "refused",
        "officer_id": own_desk,
    }
    _append(gogui, "crossing", stolen_crossing["id"], stolen_crossing)
    html = b"<html><body><script>alert('stored as a jpg')</script></body></html>"
    sha = hashlib.sha256(html).hexdigest()
    (gogui.data_dir / "photos" / sha[:2] / sha[2:4]).mkdir(parents=True, exist_ok=True)
    (gogui.data_dir / "photos" / sha[:2] / sha[2:4] / f"{sha}.jpg").write_bytes(html)
    photo_row = {
        "sha256": sha,
        "origin": GOGUI,
        "width": 1,
        "height": 1,
        "size_bytes": len(html),
        "face_encoding": None,
        "quality_score": None,
        "quality": {},
        "created_at": datetime.now(UTC).isoformat(),
    }
    _append(gogui, "photo", sha, photo_row)

    cli(gogui.env, "sync", "now")  # nothing in it stops the push

    expected = {
        ("crossing", nul_crossing, "unstorable_text"),
        ("traveller", long_traveller, "unstorable_text"),
        ("crossing", long_crossing, "quarantined_reference"),
        ("officer", elsewhere["id"], "forged_origin"),
        ("officer", stolen_admin["id"], "not_owner"),
        ("officer", stolen_desk["id"], "not_owner"),
        ("crossing", stolen_crossing["id"], "not_owner"),
        ("photo_file", sha, "not_an_image"),
    }
    listed = json.loads(cli(cluster.national_env, "sync", "quarantine", "list").stdout)
    held = {(e["record_type"], e["record_id"], e["reason"]) for e in listed}
    assert expected <= held
    others = held - expected  # only the long name's document, refused with its traveller
    assert {(t, r) for t, _, r in others} == {("travel_document", "quarantined_reference")}
    assert {e["origin"] for e in listed} == {GOGUI}

    # the acknowledgement moved past every quarantined record
    code, status, stderr = _status(gogui)
    assert code == 1 and status["backlog_records"] == 0 and status["warning"] is None
    assert {(q["record_type"], q["record_id"]) for q in status["quarantined"]} >= {
        (t, i) for t, i, _ in expected
    }
    assert "QUARANTINED" in stderr and nul_crossing in stderr and sha in stderr
    api_status = httpx.get(f"{gogui.server.url}/api/sync/status", headers=gogui.headers()).json()
    assert len(api_status["quarantined"]) == len(listed)
    web, _ = _web_login(gogui.server.url, "desk")
    page = web.get("/web/account")
    banner = re.search(
        r'<div class="banner" role="alert" id="sync-banner">([^<]*)</div>', page.text
    )
    assert banner is not None, page.text
    assert f"{len(listed)} enregistrements" in banner.group(1)  # the desk officer reads French
    assert "quarantaine" in banner.group(1) and "not_owner" in banner.group(1)
    web.close()

    # nothing was taken over; national's admin still logs in with its own password
    cluster.national_token("hq.admin")
    desk_name = cluster.national_rows(
        "SELECT full_name, home_post FROM officer WHERE id = :i", i=uuid.UUID(stolen_desk["id"])
    )
    assert desk_name == [(their_desk["full_name"], KOBENI)]
    decisions = cluster.national_rows(
        "SELECT origin, decision FROM crossing WHERE id = :i", i=uuid.UUID(theirs[0])
    )
    assert decisions == [(KOBENI, their_crossing["decision"])]
    assert not list((cluster.root / "national" / "photos").glob(f"**/{sha}.jpg"))

    # ordinary crossings registered afterwards reach national; counts match at both ends
    later = {GOGUI: gogui.register(1, "L"), KOBENI: kobeni.register(1, "M")}
    for post in (gogui, kobeni):
        cli(post.env, "sync", "now")
    refused = {nul_crossing, long_crossing}
    for code_, post in ((GOGUI, gogui), (KOBENI, kobeni)):
        at_post = {canonical(r[0]) for r in post.rows("SELECT id FROM crossing")}
        at_national = {
            canonical(r[0])
            for r in cluster.national_rows("SELECT id FROM crossing WHERE origin = :o", o=code_)
        }
        assert set(later[code_]) <= at_national
        assert at_national == at_post - refused

    # national's admin sees the quarantine on the sync page and discards from it
    admin_web, token = _web_login(cluster.national.url, "hq.admin")
    page = admin_web.get("/web/admin/sync")
    assert 'id="quarantine"' in page.text and nul_crossing in page.text
    first = listed[0]["id"]
    answer = admin_web.post(
        f"/web/admin/sync/quarantine/{first}/discard", data={"csrf_token": token}
    )
    assert answer.status_code == 303 and "quarantine_discarded" in answer.headers["location"]
    admin_web.close()
    for entry in listed[1:]:
        cli(cluster.national_env, "sync", "quarantine", "discard", str(entry["id"]))
    assert json.loads(cli(cluster.national_env, "sync", "quarantine", "list").stdout) == []
    cli(gogui.env, "sync", "now")  # the post learns national's decisions
    code, status, _ = _status(gogui)
    assert code == 0 and status["quarantined"] == []
