"""An audit log that cannot be cut short, at national: a real national node on PostgreSQL
and a post on SQLite (`borderpost serve` processes). The post's signed checkpoints reach
national over HTTP at its sync; national checks the post's chain as received against them
(`borderpost audit verify --origin`, the CLI as a subprocess) and names a deleted tail, a
wiped chain, a chain rebuilt after a deletion and an altered checkpoint. Checkpoint
uploads that are unsigned, badly signed or not the sender's own are refused, nothing
stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.audit_checkpoints import checkpoint_message, checkpoint_upload
from registry.base64url import b64url
from registry.models import AuditCheckpoint, utcnow
from registry.receipts import load_or_create_node_key
from sync.peers import sign_request
from tests.support.audit_tamper import (
    REFERRAL_READ,
    count_events,
    delete_referral_reads_and_rechain,
    delete_tail,
    make_events,
    wipe,
)
from tests.support.cluster import PASSWORD, Cluster, add_account, drop_cluster, start_cluster
from tests.support.nodes import missing, pg_reachable, pg_url
from tests.support.servers import cli

GOGUI = "MR-GOGUI"
REFERRAL_READS = 40
SEARCHES = 120
UPLOAD = "/api/sync/audit-checkpoints"


@dataclass
class Received:
    """A cluster whose post has synced its chain and checkpoints to national."""

    cluster: Cluster
    events: int  # the post's events, all held by national
    checkpoint_count: int  # the post's longest checkpoint


@pytest.fixture(scope="module")
def received(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Received]:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    cluster = start_cluster(tmp_path_factory.mktemp("audit-national"), (GOGUI,))
    try:
        post = cluster.posts[GOGUI]
        add_account(post.env, "guard", "protection")
        make_events(post.server.url, PASSWORD, referral_reads=REFERRAL_READS, searches=SEARCHES)
        assert _sync_now(post.env)["audit_checkpoints"] >= 1
        events = post.rows(f"SELECT count(*) FROM audit_event WHERE origin = '{GOGUI}'")[0][0]
        longest = post.rows("SELECT max(event_count) FROM audit_checkpoint")[0][0]
        assert longest == events, "the sync checkpoints the whole chain"
        undelivered = post.rows("SELECT count(*) FROM audit_checkpoint WHERE delivered_at IS NULL")
        assert undelivered[0][0] == 0, "national stored every checkpoint"
        cluster.national_execute(
            "CREATE TABLE audit_event_kept AS SELECT * FROM audit_event WHERE origin = :o", o=GOGUI
        )
        cluster.national_execute(
            "CREATE TABLE audit_checkpoint_kept AS "
            "SELECT * FROM audit_checkpoint WHERE origin = :o",
            o=GOGUI,
        )
        yield Received(cluster, events, longest)
    finally:
        drop_cluster(cluster)


@pytest.fixture
def chain_as_received(received: Received) -> Iterator[Received]:
    """Each attack starts from national's copy of the post's chain as the sync left it."""
    yield received
    for table in ("audit_event", "audit_checkpoint"):
        received.cluster.national_execute(f"DELETE FROM {table} WHERE origin = :o", o=GOGUI)
        received.cluster.national_execute(f"INSERT INTO {table} SELECT * FROM {table}_kept")


def _sync_now(env: dict[str, str]) -> dict[str, Any]:
    """`borderpost sync now`'s report (printed after its progress bars)."""
    out = cli(env, "sync", "now").stdout
    return json.loads(out[out.rindex('{\n  "records"') :])  # type: ignore[no-any-return]


def _verify(cluster: Cluster, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli(cluster.national_env, "audit", "verify", *args, check=False)
    return result.returncode, json.loads(result.stdout)


def _url(cluster: Cluster) -> str:
    return pg_url(cluster.database)


def test_the_posts_chain_as_received_verifies_against_its_checkpoints(
    chain_as_received: Received,
) -> None:
    cluster = chain_as_received.cluster
    held = cluster.national_rows("SELECT count(*) FROM audit_event WHERE origin = :o", o=GOGUI)[0][
        0
    ]
    assert held == chain_as_received.events
    code, verdict = _verify(cluster, "--origin", GOGUI)
    assert code == 0 and verdict["ok"] is True, verdict
    assert verdict["events_checked"] == chain_as_received.events
    assert verdict["checkpoint"]["origin"] == GOGUI
    assert verdict["checkpoint"]["event_count"] == chain_as_received.checkpoint_count
    assert verdict["checkpoint"]["delivered_at"] is not None
    # national checkpoints its own chain too (at start-up, then when it moves or daily)
    made = json.loads(cli(cluster.national_env, "audit", "checkpoint").stdout)["checkpoint"]
    assert made["origin"] == "MR-NATIONAL"
    code, own = _verify(cluster)
    assert code == 0 and own["checkpoint"]["id"] == made["id"], own


def test_a_deleted_tail_at_national_is_named_truncated(chain_as_received: Received) -> None:
    cluster = chain_as_received.cluster
    assert delete_tail(_url(cluster), GOGUI, 100) == 100
    code, verdict = _verify(cluster, "--origin", GOGUI)
    assert code == 1 and verdict["ok"] is False, verdict
    assert verdict["reason"] == "truncated"
    assert verdict["events_checked"] == chain_as_received.events - 100


def test_a_wiped_chain_at_national_is_named_missing(chain_as_received: Received) -> None:
    cluster = chain_as_received.cluster
    assert wipe(_url(cluster), GOGUI) == chain_as_received.events
    code, verdict = _verify(cluster, "--origin", GOGUI)
    assert code == 1 and verdict["reason"] == "missing", verdict


def test_a_chain_rebuilt_at_national_after_deleting_referral_reads_is_named_rechained(
    chain_as_received: Received,
) -> None:
    cluster = chain_as_received.cluster
    assert count_events(_url(cluster), GOGUI, *REFERRAL_READ) >= REFERRAL_READS
    removed = delete_referral_reads_and_rechain(_url(cluster), GOGUI)
    assert removed >= REFERRAL_READS
    code, verdict = _verify(cluster, "--origin", GOGUI)
    assert code == 1 and verdict["reason"] == "rechained", verdict
    assert verdict["events_checked"] == chain_as_received.events - removed


def test_an_altered_checkpoint_at_national_is_named_bad_signature(
    chain_as_received: Received,
) -> None:
    cluster = chain_as_received.cluster
    delete_tail(_url(cluster), GOGUI, 100)
    cluster.national_execute(
        "UPDATE audit_checkpoint SET event_count = event_count - 100 WHERE origin = :o", o=GOGUI
    )
    code, verdict = _verify(cluster, "--origin", GOGUI)
    assert code == 1 and verdict["reason"] == "bad_checkpoint_signature", verdict


def _checkpoint(key: Ed25519PrivateKey, origin: str = GOGUI, **fields: Any) -> AuditCheckpoint:
    import uuid

    values: dict[str, Any] = {
        "origin": origin,
        "event_count": 7,
        "head_seq": 7,
        "head_id": uuid.uuid4(),
        "head_hash": "ab" * 32,
        "made_at": utcnow(),
        "signature": "",
    }
    values.update(fields)
    checkpoint = AuditCheckpoint(**values)
    checkpoint.signature = b64url(key.sign(checkpoint_message(checkpoint)))
    return checkpoint


def _upload(
    cluster: Cluster, body: bytes, *, signer: Ed25519PrivateKey | None, sender: str = GOGUI
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signer is not None:
        headers.update(sign_request(signer, sender, "POST", UPLOAD, body))
    return httpx.post(f"{cluster.national.url}{UPLOAD}", content=body, headers=headers)


def test_checkpoint_uploads_not_signed_by_the_post_are_refused_and_nothing_stored(
    chain_as_received: Received,
) -> None:
    cluster = chain_as_received.cluster
    post_key = load_or_create_node_key(cluster.posts[GOGUI].data_dir / "keys" / "node_ed25519.pem")
    stranger = Ed25519PrivateKey.generate()

    def stored() -> int:
        return cluster.national_rows("SELECT count(*) FROM audit_checkpoint")[0][0]

    before = stored()
    genuine = checkpoint_upload([_checkpoint(post_key)])
    unsigned = _upload(cluster, genuine, signer=None)
    assert unsigned.status_code == 401, unsigned.text
    wrong_signer = _upload(cluster, genuine, signer=stranger)
    assert wrong_signer.status_code == 401, wrong_signer.text
    forged = _upload(cluster, checkpoint_upload([_checkpoint(stranger)]), signer=post_key)
    assert forged.status_code == 422, forged.text
    assert forged.json()["invalid_params"][0]["name"] == "checkpoints[0].signature"
    others = _upload(
        cluster, checkpoint_upload([_checkpoint(post_key, origin="MR-KOBENI")]), signer=post_key
    )
    assert others.status_code == 403, others.text
    assert others.json()["invalid_params"][0]["name"] == "checkpoints[0].origin"
    mixed = checkpoint_upload([_checkpoint(post_key), _checkpoint(stranger)])
    assert _upload(cluster, mixed, signer=post_key).status_code == 422
    malformed = json.loads(genuine)
    malformed["checkpoints"][0]["head_hash"] = "not a hash"
    bad_field = _upload(cluster, json.dumps(malformed).encode(), signer=post_key)
    assert bad_field.status_code == 400, bad_field.text
    assert "head_hash" in bad_field.json()["invalid_params"][0]["name"]
    assert stored() == before
    accepted = _upload(cluster, genuine, signer=post_key)
    assert accepted.status_code == 200 and accepted.json()["stored"] == 1, accepted.text
    replayed = _upload(cluster, genuine, signer=post_key)
    assert replayed.status_code == 200 and replayed.json()["stored"] == 0
    assert stored() == before + 1


def test_sync_report_counts_checkpoints(received: Received) -> None:
    """A sync with nothing new sends no checkpoint; one after new events sends one."""
    post = received.cluster.posts[GOGUI]
    held = received.cluster.national_rows(
        "SELECT count(*) FROM audit_checkpoint WHERE origin = :o", o=GOGUI
    )[0][0]
    assert _sync_now(post.env)["audit_checkpoints"] == 0
    make_events(post.server.url, PASSWORD, referral_reads=0, searches=3)
    assert _sync_now(post.env)["audit_checkpoints"] == 1
    after = received.cluster.national_rows(
        "SELECT count(*) FROM audit_checkpoint WHERE origin = :o", o=GOGUI
    )[0][0]
    assert after == held + 1
    code, verdict = _verify(received.cluster, "--origin", GOGUI)
    assert code == 0 and verdict["checkpoint"]["event_count"] > received.checkpoint_count
