"""An audit log that cannot be cut short, on a post (SQLite): the node signs checkpoints
of its chain, and `borderpost audit verify` (the CLI, as a subprocess) names a deleted
tail, a wiped table, a chain rebuilt after a deletion and a forged checkpoint. Reads of
referrals, photos and receipts each append an audit event."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from sqlalchemy import func, select

from registry.audit_checkpoints import (
    CheckpointRefused,
    checkpoint_if_due,
    checkpoint_message,
    checkpoints_for_sync,
    make_checkpoint,
)
from registry.audit_verification import verify_chain
from registry.base64url import b64url
from registry.models import AuditCheckpoint, AuditEvent
from registry.node import Node
from tests.support.audit_tamper import (
    REFERRAL_READ,
    count_events,
    delete_referral_reads_and_rechain,
    delete_tail,
    make_events,
    wipe,
)
from tests.support.cluster import mrz
from tests.support.nodes import PASSWORD as CONFTEST_PASSWORD
from tests.support.nodes import NodeUnderTest
from tests.support.servers import ServerProcess, add_account, cli, node_env
from tests.support.web_client import Web

POST = "MR-GOGUI"
PASSWORD = "a-strong-password-1"
REFERRAL_READS = 40
SEARCHES = 120


def verify(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    result = cli(env, "audit", "verify", *args, check=False)
    return result.returncode, json.loads(result.stdout)


@dataclass
class CheckpointedPost:
    env: dict[str, str]
    events: int
    checkpoint: dict[str, Any]

    def copy(self, root: Path, name: str) -> tuple[dict[str, str], str]:
        """A copy of the post's data directory (database and key), to attack on its own."""
        target = root / name
        shutil.copytree(self.env["BORDERPOST_DATA_DIR"], target)
        env = {**self.env, "BORDERPOST_DATA_DIR": str(target)}
        return env, f"sqlite+aiosqlite:///{target / 'borderpost.db'}"


@pytest.fixture(scope="module")
def checkpointed_post(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CheckpointedPost]:
    root = tmp_path_factory.mktemp("audit-post")
    env = node_env(root / "post", node_code=POST, sync_interval_seconds="3600")
    cli(env, "db", "upgrade")
    add_account(env, "desk", "officer")
    add_account(env, "guard", "protection")
    server = ServerProcess(env).start()
    try:
        make_events(server.url, PASSWORD, referral_reads=REFERRAL_READS, searches=SEARCHES)
    finally:
        server.stop()
    made = json.loads(cli(env, "audit", "checkpoint").stdout)["checkpoint"]
    url = f"sqlite+aiosqlite:///{root / 'post' / 'borderpost.db'}"
    events = count_events(url, POST)
    assert made["event_count"] == events > SEARCHES + REFERRAL_READS
    yield CheckpointedPost(env, events, made)


def test_untouched_chain_verifies_against_its_checkpoint(
    checkpointed_post: CheckpointedPost,
) -> None:
    code, verdict = verify(checkpointed_post.env)
    assert code == 0, verdict
    assert verdict["ok"] is True and verdict["reason"] is None
    assert verdict["events_checked"] == checkpointed_post.events
    assert verdict["checkpoint"]["id"] == checkpointed_post.checkpoint["id"]
    assert verdict["checkpoint"]["event_count"] == checkpointed_post.events


def test_deleting_the_last_100_events_is_named_truncated(
    checkpointed_post: CheckpointedPost, tmp_path: Path
) -> None:
    env, url = checkpointed_post.copy(tmp_path, "tail")
    assert delete_tail(url, POST, 100) == 100
    code, verdict = verify(env)
    assert code == 1 and verdict["ok"] is False, verdict
    assert verdict["reason"] == "truncated" and "cut from its end" in verdict["problem"]
    assert verdict["events_checked"] == checkpointed_post.events - 100
    assert verdict["checkpoint"]["event_count"] == checkpointed_post.events
    # the node refuses to sign a checkpoint over the shortened chain
    refused = cli(env, "audit", "checkpoint", check=False)
    assert refused.returncode == 1 and json.loads(refused.stdout)["reason"] == "truncated"
    assert verify(env)[1]["reason"] == "truncated"


def test_wiping_the_table_is_named_missing(
    checkpointed_post: CheckpointedPost, tmp_path: Path
) -> None:
    env, url = checkpointed_post.copy(tmp_path, "wiped")
    assert wipe(url, POST) == checkpointed_post.events
    code, verdict = verify(env)
    assert code == 1 and verdict["ok"] is False, verdict
    assert verdict["reason"] == "missing" and verdict["events_checked"] == 0
    assert verdict["checkpoint"]["event_count"] == checkpointed_post.events


def test_rechaining_after_deleting_referral_reads_is_named_rechained(
    checkpointed_post: CheckpointedPost, tmp_path: Path
) -> None:
    env, url = checkpointed_post.copy(tmp_path, "rechained")
    assert count_events(url, POST, *REFERRAL_READ) >= REFERRAL_READS
    removed = delete_referral_reads_and_rechain(url, POST)
    assert removed >= REFERRAL_READS and count_events(url, POST, *REFERRAL_READ) == 0
    with sqlite3.connect(Path(env["BORDERPOST_DATA_DIR"]) / "borderpost.db") as conn:
        checkpoints_before = conn.execute("SELECT count(*) FROM audit_checkpoint").fetchone()[0]
    code, verdict = verify(env)
    assert code == 1 and verdict["ok"] is False, verdict
    assert verdict["reason"] == "rechained" and "rebuilt" in verdict["problem"]
    assert verdict["events_checked"] == checkpointed_post.events - removed
    # The rebuilt chain keeps growing (the server appends to it) until it is longer than
    # the checkpoint: the event at the checkpoint's count is then not the one it signed.
    # The server's own checkpointing refuses to sign over the rebuilt chain.
    server = ServerProcess(env).start()
    try:
        make_events(server.url, PASSWORD, referral_reads=0, searches=removed + 5)
    finally:
        server.stop()
    code, verdict = verify(env)
    assert code == 1 and verdict["reason"] == "rechained", verdict
    assert verdict["events_checked"] == checkpointed_post.checkpoint["event_count"]
    assert verdict["first_broken_seq"] is not None
    with sqlite3.connect(Path(env["BORDERPOST_DATA_DIR"]) / "borderpost.db") as conn:
        assert conn.execute("SELECT count(*) FROM audit_checkpoint").fetchone()[0] == (
            checkpoints_before
        )


def test_a_checkpoint_altered_to_fit_the_cut_chain_is_named_bad_signature(
    checkpointed_post: CheckpointedPost, tmp_path: Path
) -> None:
    env, url = checkpointed_post.copy(tmp_path, "forged")
    delete_tail(url, POST, 100)
    with sqlite3.connect(Path(env["BORDERPOST_DATA_DIR"]) / "borderpost.db") as conn:
        head = conn.execute(
            "SELECT seq, id, hash FROM audit_event ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE audit_checkpoint SET event_count = event_count - 100, head_seq = ?, "
            "head_id = ?, head_hash = ?",
            head,
        )
    code, verdict = verify(env)
    assert code == 1 and verdict["reason"] == "bad_checkpoint_signature", verdict
    assert verdict["checkpoint"] is not None and verdict["checkpoints_checked"] >= 1


# ---------------------------------------------------------------- checkpoints in-process
async def test_checkpoints_are_made_when_the_chain_moves_or_daily(post_node: NodeUnderTest) -> None:
    """At every sync a checkpoint is made only if the chain moved; the daily one is made
    even when nothing moved; an empty chain needs none."""
    node = _in_test_loop(post_node)
    code = node.settings.node_code
    read = await post_node.client.get("/api/referrals/", headers=post_node.auth("protection"))
    assert read.status_code == 200
    assert await checkpoint_if_due(node, force=True) is not None
    assert await checkpoint_if_due(node) is None  # nothing moved, not a day old
    assert await checkpoint_if_due(node, max_age=timedelta(0)) is not None  # a day passed
    response = await post_node.client.get("/api/referrals/", headers=post_node.auth("protection"))
    assert response.status_code == 200
    moved = await checkpoint_if_due(node)
    assert moved is not None
    async with post_node.db.session() as session:
        events = await session.scalar(select(func.count()).where(AuditEvent.origin == code))
        assert moved.event_count == events
        verdict = await verify_chain(session, code, public_key=node.signing_key.public_key())
        assert verdict.ok and verdict.checkpoint is not None
        assert verdict.checkpoint.id == moved.id
    async with post_node.db.write_transaction() as session:
        assert await make_checkpoint(session, origin="MR-EMPTY", key=node.signing_key) is None
    over_http = await post_node.client.get("/api/audit/verify", headers=post_node.auth("admin"))
    assert over_http.status_code == 200, over_http.text
    assert over_http.json()["ok"] is True
    assert over_http.json()["checkpoint"]["event_count"] >= moved.event_count


async def test_checkpointing_refuses_a_chain_cut_short(post_node: NodeUnderTest) -> None:
    node = _in_test_loop(post_node)
    for _ in range(2):
        read = await post_node.client.get("/api/referrals/", headers=post_node.auth("protection"))
        assert read.status_code == 200
    assert await checkpoint_if_due(node, force=True) is not None
    async with post_node.db.write_transaction() as session:
        last = await session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        await session.delete(last)
    with pytest.raises(CheckpointRefused) as refused:
        await checkpoint_if_due(node, force=True)
    assert refused.value.reason == "truncated"


async def test_a_checkpoint_signed_with_a_lost_key_is_kept_back(post_node: NodeUnderTest) -> None:
    """A post whose key was replaced keeps checkpoints its new key did not sign: sending
    them would have national refuse the whole upload, sync after sync."""
    node = _in_test_loop(post_node)
    for _ in range(2):
        read = await post_node.client.get("/api/referrals/", headers=post_node.auth("protection"))
        assert read.status_code == 200
        made = await checkpoint_if_due(node, force=True)
        assert made is not None
    lost_key = Ed25519PrivateKey.generate()
    async with post_node.db.write_transaction() as session:
        stored = await session.get(AuditCheckpoint, made.id)
        assert stored is not None
        stored.signature = b64url(lost_key.sign(checkpoint_message(stored)))
    pending = {c.id for c in await checkpoints_for_sync(node)}
    assert made.id not in pending and pending, pending


def _in_test_loop(post_node: NodeUnderTest) -> Node:
    """The app's node with the test's own connection pool (the app's lives on its loop)."""
    app_node = post_node.node
    return Node(settings=app_node.settings, db=post_node.db, signing_key=app_node.signing_key)


# ---------------------------------------------------------------- reads stay audited
async def _events(post_node: NodeUnderTest, **where: Any) -> int:
    query = select(func.count()).select_from(AuditEvent)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    async with post_node.db.session() as session:
        return int(await session.scalar(query) or 0)


async def test_every_read_of_a_referral_photo_or_receipt_is_audited(
    post_node: NodeUnderTest,
) -> None:
    client, desk = post_node.client, post_node.auth("officer")
    portrait = io.BytesIO()
    Image.new("RGB", (320, 400), (120, 90, 60)).save(portrait, format="JPEG")
    registration = {
        "direction": "entry",
        "mrz": mrz("R" + uuid.uuid4().hex[:7].upper()),
        "photo_quality_override": "test pattern, no face",
    }
    saved = await client.post(
        "/api/crossings",
        headers=desk,
        data={"crossing": json.dumps(registration)},
        files={"photo": ("face.jpg", portrait.getvalue(), "image/jpeg")},
    )
    assert saved.status_code == 201, saved.text
    crossing = saved.json()
    referral = await client.post(
        f"/api/crossings/{crossing['id']}/referrals",
        headers=desk,
        json={"category": "unaccompanied_minor", "note": "alone"},
    )
    assert referral.status_code == 201, referral.text
    referral_id = referral.json()["referral_id"]
    reads: list[tuple[str, dict[str, str], dict[str, Any]]] = [
        ("/api/referrals/", post_node.auth("protection"), {"record_type": "protection_referral"}),
        (
            f"/api/referrals/{referral_id}",
            post_node.auth("protection"),
            {"record_type": "protection_referral", "record_id": referral_id},
        ),
        (
            f"/api/photos/{crossing['photo_sha256']}",
            desk,
            {"record_type": "photo", "record_id": crossing["photo_sha256"]},
        ),
    ]
    for form in ("", ".png", ".svg", ".html"):
        purpose = "receipt_" + ({"": "payload"}.get(form) or form[1:])
        reads.append(
            (
                f"/api/crossings/{crossing['id']}/receipt{form}",
                desk,
                {"record_id": crossing["id"], "purpose": purpose},
            )
        )
    for path, headers, where in reads:
        before = await _events(post_node, action="read", **where)
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        assert await _events(post_node, action="read", **where) == before + 1, path


async def test_every_page_read_of_a_referral_or_receipt_is_audited(
    web: Web,  # noqa: F811 - the fixture imported above
) -> None:
    """The pages read through the same audited services: the printable receipt slip, the
    referral list and one referral."""
    await web.login("officer")
    saved = await web.client.post(
        "/web/desk/register",
        files={"crossing": (None, json.dumps({"direction": "entry", "mrz": mrz("W1234567")}))},
        headers=web.headers(),
    )
    assert saved.status_code == 201, saved.text
    crossing_id = saved.json()["id"]
    desk = await web.client.post(
        "/api/auth/login", json={"username": "officer", "password": CONFTEST_PASSWORD}
    )
    referral = await web.client.post(
        f"/api/crossings/{crossing_id}/referrals",
        json={"category": "unaccompanied_minor", "note": "alone"},
        headers={"Authorization": f"Bearer {desk.json()['token']}"},
    )
    assert referral.status_code == 201, referral.text
    referral_id = referral.json()["referral_id"]
    await web.login("officer")
    slip = {"record_id": crossing_id, "purpose": "receipt_html", "action": "read"}
    before = await web.audit_count(**slip)
    assert (await web.client.get(f"/web/receipts/{crossing_id}")).status_code == 200
    assert await web.audit_count(**slip) == before + 1
    await web.login("protection")
    for path, where in (
        ("/web/referrals", {"record_type": "protection_referral", "record_id": "list"}),
        (f"/web/referrals/{referral_id}", {"record_id": referral_id, "action": "read"}),
    ):
        before = await web.audit_count(**where)
        assert (await web.client.get(path)).status_code == 200, path
        assert await web.audit_count(**where) == before + 1, path
