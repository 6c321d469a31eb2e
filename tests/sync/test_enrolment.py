"""Enrolment, junk and links, tried as an attacker would against a real national node on
PostgreSQL and real posts on SQLite (`borderpost serve` and the CLI as subprocesses):
an enrolment flood, a squatted post code, used and expired codes, a revoked post removed
and enrolled again with a new key, a lost key replaced, unsigned junk batches naming an
approved post, the per-address limits, plain http to another host, and national served
over https with a self-signed certificate that the post pins."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from registry.base64url import b64url
from registry.receipts import load_or_create_node_key, public_key_to_text
from sync.batches import SIGNATURE, OutboxRecord, sign_batch
from sync.peers import enrolment_message, new_enrolment_code
from tests.support.cluster import (
    NATIONAL,
    Cluster,
    Post,
    canonical,
    drop_cluster,
    enrol,
    invite,
    post_env,
    start_cluster,
)
from tests.support.nodes import missing, pg_reachable
from tests.support.servers import ServerProcess, cli

ROSSO, GOGUI = "MR-ROSSO", "MR-GOGUI"


@pytest.fixture
def national(tmp_path: Path) -> Iterator[Cluster]:
    """National alone; each test enrols the posts it needs."""
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    started = start_cluster(tmp_path, ())
    try:
        yield started
    finally:
        drop_cluster(started)


def _attempt(url: str, node_code: str, code: str, key: Ed25519PrivateKey) -> httpx.Response:
    """An enrolment request as anyone can make it: a key of their own, properly signed."""
    public_key = public_key_to_text(key.public_key())
    proof = b64url(key.sign(enrolment_message(node_code, public_key, code)))
    return httpx.post(
        f"{url}/api/sync/enrol",
        json={"node_code": node_code, "public_key": public_key, "code": code, "proof": proof},
    )


def _count(cluster: Cluster, sql: str, **params: Any) -> int:
    return int(cluster.national_rows(sql, **params)[0][0])


def _enrolment_events(cluster: Cluster) -> list[tuple[str, str, dict[str, Any]]]:
    rows = cluster.national_rows(
        "SELECT action, record_id, detail FROM audit_event WHERE record_type = 'sync_peer' "
        "ORDER BY seq"
    )
    return [(a, r, json.loads(d) if isinstance(d, str) else d) for a, r, d in rows]


def _key_sha256(env: dict[str, str]) -> str:
    key = load_or_create_node_key(Path(env["BORDERPOST_DATA_DIR"]) / "keys" / "node_ed25519.pem")
    return hashlib.sha256(key.public_key().public_bytes_raw()).hexdigest()


def _serve(env: dict[str, str]) -> Post:
    return Post(env["BORDERPOST_NODE_CODE"], env, ServerProcess(env).start())


# ---------------------------------------------------------------- enrolment
def test_an_enrolment_flood_stores_nothing(national: Cluster) -> None:
    """200 unauthenticated enrolments: each refused (403, then 429 with Retry-After once
    the address is over its limit); no peer, no audit event, no counter."""
    answers = [
        _attempt(national.national.url, f"MR-FLOOD{n:03d}", new_enrolment_code(), key)
        for n, key in enumerate(Ed25519PrivateKey.generate() for _ in range(200))
    ]
    statuses = {response.status_code for response in answers}
    assert statuses == {403, 429}, statuses
    for response in answers:
        assert response.headers["content-type"].startswith("application/problem+json")
    limited = next(r for r in answers if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["status"] == 429
    refused = next(r for r in answers if r.status_code == 403)
    assert refused.json()["invalid_params"][0]["name"] == "code"
    assert _count(national, "SELECT count(*) FROM sync_peer") == 0
    assert _enrolment_events(national) == []
    assert _count(national, "SELECT count(*) FROM ingest_state") == 0


def test_a_squatter_without_a_code_is_refused_and_the_real_post_enrols(
    national: Cluster,
) -> None:
    """Enrolling a post's code without a valid code, or with the code issued for another
    post, stores nothing; the real post enrols with its code (approved at once, no
    `node approve`) and syncs; the code cannot be used again; an expired code is refused."""
    squatter = Ed25519PrivateKey.generate()
    assert _attempt(national.national.url, ROSSO, new_enrolment_code(), squatter).status_code == 403
    other = invite(national.national_env, "MR-KOBENI")
    assert _attempt(national.national.url, ROSSO, other, squatter).status_code == 403
    assert _count(national, "SELECT count(*) FROM sync_peer") == 0

    code = invite(national.national_env, ROSSO)
    stored = national.national_rows("SELECT code_sha256, node_code FROM enrolment_invitation")
    assert code not in json.dumps(stored) and len(stored) == 2  # only hashes are kept
    env = post_env(national.root, ROSSO)
    answer = json.loads(
        cli(env, "node", "enrol", "--national-url", national.national.url, "--code", code).stdout
    )
    assert answer["status"] == "approved" and answer["national_code"] == NATIONAL
    assert national.national_rows("SELECT status, role FROM sync_peer") == [("approved", "post")]
    reused = _attempt(national.national.url, ROSSO, code, squatter)
    assert reused.status_code == 403 and reused.json()["invalid_params"][0]["name"] == "code"
    again = cli(
        env, "node", "enrol", "--national-url", national.national.url, "--code", code, check=False
    )
    assert again.returncode != 0 and "not valid for this post" in again.stderr
    post = _serve(env)
    try:
        crossing = post.register(1, "R")[0]
        cli(env, "sync", "now")
    finally:
        post.server.stop()
    assert national.national_rows("SELECT id::text FROM crossing") == [(canonical(crossing),)]

    short = invite(national.national_env, "MR-TIMBEDRA", "--hours", "0.0003")  # about 1 s
    time.sleep(1.5)
    expired = _attempt(national.national.url, "MR-TIMBEDRA", short, Ed25519PrivateKey.generate())
    assert expired.status_code == 403
    assert [peer for (peer,) in national.national_rows("SELECT node_code FROM sync_peer")] == [
        ROSSO
    ]
    actions = [(action, peer) for action, peer, _ in _enrolment_events(national)]
    assert ("enrol", ROSSO) in actions and ("enrol", "MR-TIMBEDRA") not in actions


def test_a_revoked_post_is_removed_and_enrols_again_with_a_new_key(national: Cluster) -> None:
    """An approved post cannot be removed; once revoked it is removed (audited), and it
    enrols again with a new code and a new key. A post whose key was lost re-enrols with
    a new code: its key is replaced and both fingerprints are audited."""
    env = post_env(national.root, ROSSO)
    enrol(env, national.national_env, national.national.url)
    first_key = _key_sha256(env)
    refused = cli(national.national_env, "node", "remove", ROSSO, check=False)
    assert refused.returncode != 0 and "revoke" in refused.stderr
    cli(national.national_env, "node", "revoke", ROSSO)
    removed = json.loads(cli(national.national_env, "node", "remove", ROSSO).stdout)
    assert removed["removed"] is True
    assert _count(national, "SELECT count(*) FROM sync_peer") == 0

    (Path(env["BORDERPOST_DATA_DIR"]) / "keys" / "node_ed25519.pem").unlink()
    second_key = _key_sha256(env)
    assert second_key != first_key
    assert enrol(env, national.national_env, national.national.url)["status"] == "approved"
    peers = national.national_rows("SELECT node_code, status FROM sync_peer")
    assert peers == [(ROSSO, "approved")]

    (Path(env["BORDERPOST_DATA_DIR"]) / "keys" / "node_ed25519.pem").unlink()  # lost again
    third_key = _key_sha256(env)
    enrol(env, national.national_env, national.national.url)
    events = _enrolment_events(national)
    assert [action for action, _, _ in events] == [
        "enrol_invite",
        "enrol",
        "revoked",
        "peer_removed",
        "enrol_invite",
        "enrol",
        "enrol_invite",
        "enrol_rekey",
    ]
    assert events[3][2]["key_sha256"] == first_key
    assert events[5][2]["key_sha256"] == second_key
    assert events[7][2]["key_sha256"] == third_key
    assert events[7][2]["previous_key_sha256"] == second_key
    post = _serve(env)
    try:
        crossing = post.register(1, "K")[0]
        cli(env, "sync", "now")
    finally:
        post.server.stop()
    assert national.national_rows("SELECT id::text FROM crossing") == [(canonical(crossing),)]


def test_a_reinstalled_post_enrols_again_and_loses_nothing(national: Cluster) -> None:
    """A post whose disk was replaced (new database, new key) enrols again with a new
    code: its new records are numbered after what national already holds from it, so
    none of them is taken for a replay."""
    import shutil

    env = post_env(national.root, ROSSO)
    enrol(env, national.national_env, national.national.url)
    post = _serve(env)
    try:
        before = post.register(3, "A")
        cli(env, "sync", "now")
    finally:
        post.server.stop()
    shutil.rmtree(env["BORDERPOST_DATA_DIR"])
    env = post_env(national.root, ROSSO)
    post = _serve(env)
    try:
        offline = post.register(1, "B")  # registered before the post is enrolled again
        assert enrol(env, national.national_env, national.national.url)["held_seq"] > 0
        after = post.register(1, "C")
        cli(env, "sync", "now")
    finally:
        post.server.stop()
    stored = {row[0] for row in national.national_rows("SELECT id::text FROM crossing")}
    assert stored == {canonical(c) for c in before + offline + after}
    actions = [action for action, _, _ in _enrolment_events(national)]
    assert actions[-1] == "enrol_rekey"


# ---------------------------------------------------------------- junk batches
def test_unsigned_junk_naming_an_approved_post_is_neither_audited_nor_counted(
    national: Cluster,
) -> None:
    env = post_env(national.root, GOGUI)
    enrol(env, national.national_env, national.national.url)
    post = _serve(env)
    try:
        post.register(2, "J")
    finally:
        post.server.stop()
    rows = post.rows("SELECT seq, record_type, record_id, payload FROM outbox ORDER BY seq")
    records = [OutboxRecord(s, t, i, json.loads(p)) for s, t, i, p in rows]
    url = f"{national.national.url}/api/sync/batches"
    genuine = sign_batch(
        records,
        kind="records",
        origin=GOGUI,
        destination=NATIONAL,
        after_seq=0,
        key=load_or_create_node_key(post.data_dir / "keys" / "node_ed25519.pem"),
    )
    forged = sign_batch(
        records,
        kind="records",
        origin=GOGUI,
        destination=NATIONAL,
        after_seq=0,
        key=Ed25519PrivateKey.generate(),
    )
    unsigned = {k: v for k, v in genuine.http_headers().items() if k != SIGNATURE}
    junk = [
        (forged.body, forged.http_headers()),
        (genuine.body, unsigned),
        (b"junk", {"x-borderpost-node": GOGUI, "content-type": "application/octet-stream"}),
    ]
    state_before = national.national_rows("SELECT batches_rejected FROM ingest_state")
    for body, headers in junk:
        response = httpx.post(url, content=body, headers=headers)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["invalid_params"]
    photo = httpx.post(
        f"{national.national.url}/api/sync/photos",
        content=b"<html>not a photo</html>",
        headers=forged.http_headers(),
    )
    assert 400 <= photo.status_code < 500
    assert _count(national, "SELECT count(*) FROM audit_event WHERE action = 'sync_rejected'") == 0
    assert national.national_rows("SELECT batches_rejected FROM ingest_state") == state_before

    # a batch the post really signed but altered on the way is its own: audited and counted
    altered = httpx.post(url, content=genuine.body[:-1] + b"\x00", headers=genuine.http_headers())
    assert altered.status_code == 400 and "altered" in altered.text
    assert _count(national, "SELECT count(*) FROM audit_event WHERE action = 'sync_rejected'") == 1
    assert national.national_rows(
        "SELECT batches_rejected FROM ingest_state WHERE origin = :o", o=GOGUI
    ) == [(1,)]
    assert httpx.post(url, content=genuine.body, headers=genuine.http_headers()).status_code == 200

    # a flood from one address is answered 429 with Retry-After, and still not audited
    limited = None
    with httpx.Client() as client:
        for _ in range(300):
            response = client.post(url, content=forged.body, headers=forged.http_headers())
            if response.status_code == 429:
                limited = response
                break
    assert limited is not None, "300 junk batches in a row were never rate-limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert _count(national, "SELECT count(*) FROM audit_event WHERE action = 'sync_rejected'") == 1


# ---------------------------------------------------------------- links
def test_plain_http_to_another_host_is_refused(tmp_path: Path) -> None:
    env = post_env(tmp_path, ROSSO)
    refused = cli(
        env,
        "node",
        "enrol",
        "--national-url",
        "http://192.0.2.10:8000",
        "--code",
        new_enrolment_code(),
        check=False,
    )
    assert refused.returncode != 0
    assert "must use https://" in refused.stderr and "192.0.2.10" in refused.stderr
    assert Post(ROSSO, env, ServerProcess(env)).rows("SELECT count(*) FROM sync_peer") == [(0,)]
    national_env = {
        **env,
        "BORDERPOST_ROLE": "national",
        "BORDERPOST_NODE_CODE": NATIONAL,
        "BORDERPOST_SECRET_KEY": "n" * 40,
        "BORDERPOST_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/none",
        "BORDERPOST_ALLOW_PLAIN_HTTP_LINKS": "1",
    }
    flagged = cli(national_env, "node", "list", check=False)
    assert flagged.returncode != 0 and "ALLOW_PLAIN_HTTP_LINKS" in flagged.stderr


def _self_signed(folder: Path) -> tuple[Path, Path, str]:
    """An ECDSA P-256 certificate for 127.0.0.1 (as deploy/TLS.md makes one), its key,
    and its SHA-256 fingerprint."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "national.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "national.crt", folder / "national.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    return cert_file, key_file, hashlib.sha256(der).hexdigest()


@pytest.fixture
def national_over_https(tmp_path: Path) -> Iterator[tuple[Cluster, Path, str]]:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    cert_file, key_file, fingerprint = _self_signed(tmp_path / "tls")
    started = start_cluster(tmp_path, (), tls=(cert_file, key_file))
    try:
        yield started, cert_file, fingerprint
    finally:
        drop_cluster(started)


def test_a_post_enrols_and_syncs_over_https_only_with_a_verified_certificate(
    national_over_https: tuple[Cluster, Path, str],
) -> None:
    """National serves https with a self-signed certificate. Unverified (no pin, no CA
    file) or wrongly pinned, the post refuses the link before sending anything (the code
    stays unused); pinned, it enrols and syncs; another post trusts it through a CA file."""
    national, cert_file, fingerprint = national_over_https
    assert national.national.url.startswith("https://127.0.0.1:")
    env = post_env(national.root, ROSSO)
    code = invite(national.national_env, ROSSO)
    base = ("node", "enrol", "--national-url", national.national.url, "--code", code)
    unverified = cli(env, *base, check=False)
    assert unverified.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in unverified.stderr
    wrong = cli(env, *base, "--national-cert-sha256", "ab" * 32, check=False)
    assert wrong.returncode != 0 and fingerprint in wrong.stderr
    assert _count(national, "SELECT count(*) FROM enrolment_invitation WHERE used_at IS NULL") == 1
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()  # as openssl
    answer = json.loads(cli(env, *base, "--national-cert-sha256", colons).stdout)
    assert answer["status"] == "approved"
    post = _serve(env)
    try:
        crossing = post.register(1, "T")[0]
        cli(env, "sync", "now")
        pinned = post.rows("SELECT url, tls_cert_sha256 FROM sync_peer WHERE role = 'national'")
    finally:
        post.server.stop()
    assert pinned == [(national.national.url, fingerprint)]
    assert national.national_rows("SELECT id::text FROM crossing") == [(canonical(crossing),)]

    trusting = post_env(national.root, GOGUI, link_ca_file=str(cert_file))
    assert enrol(trusting, national.national_env, national.national.url)["status"] == "approved"
    cli(trusting, "sync", "now")
    synced = Post(GOGUI, trusting, ServerProcess(trusting)).rows(
        "SELECT last_success_at IS NOT NULL FROM sync_checkpoint WHERE channel = 'reference'"
    )
    assert synced == [(1,)]


# ---------------------------------------------------------------- the Posts page
def test_the_posts_page_issues_a_code_once_and_removes_a_revoked_post(national: Cluster) -> None:
    """National's admin issues a code on the Posts page (shown once, listed afterwards
    without the code), the post enrols with it, and the admin revokes and removes it."""
    from tests.support.cluster import PASSWORD

    with httpx.Client(base_url=national.national.url, timeout=30) as web:
        login = web.get("/web/login?lang=en")
        token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        logged = web.post(
            "/web/login",
            data={"username": "hq.admin", "password": PASSWORD, "csrf_token": token},
        )
        assert logged.status_code == 303
        page = web.get("/web/admin/posts")
        csrf = page.text.split('<meta name="csrf-token" content="', 1)[1].split('"', 1)[0]
        issued = web.post(
            "/web/admin/posts/invite", data={"node_code": "mr-rosso", "csrf_token": csrf}
        )
        assert issued.status_code == 200 and 'id="issued-code"' in issued.text
        code = issued.text.split('<code class="enrolment-code">', 1)[1].split("<", 1)[0]
        listed = web.get("/web/admin/posts").text
        assert ROSSO in listed.split('id="invitations"', 1)[1] and code not in listed

        env = post_env(national.root, ROSSO)
        cli(env, "node", "enrol", "--national-url", national.national.url, "--code", code)
        peers = web.get("/web/admin/posts").text.split('id="peers"', 1)[1]
        assert ROSSO in peers and _key_sha256(env)[:16] in peers
        assert 'id="invitations"' not in web.get("/web/admin/posts").text

        refused = web.post(f"/web/admin/posts/{ROSSO}/remove", data={"csrf_token": csrf})
        assert refused.status_code == 409
        revoked = web.post(f"/web/admin/posts/{ROSSO}/revoke", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        removed = web.post(f"/web/admin/posts/{ROSSO}/remove", data={"csrf_token": csrf})
        assert removed.status_code == 303 and "done=peer_removed" in removed.headers["location"]
        assert "Le poste a été supprimé." in web.get(removed.headers["location"]).text  # in French
    assert _count(national, "SELECT count(*) FROM sync_peer") == 0
    removals = national.national_rows(
        "SELECT officer_id IS NOT NULL FROM audit_event WHERE action = 'peer_removed'"
    )
    assert removals == [(True,)]


def test_the_admin_api_invites_and_removes(national: Cluster) -> None:
    admin = national.national_token("hq.admin")
    peers = f"{national.national.url}/api/sync/peers"
    issued = httpx.post(f"{peers}/{ROSSO}/invite", headers=admin, json={"hours": 1})
    assert issued.status_code == 200, issued.text
    assert issued.json()["node_code"] == ROSSO and len(issued.json()["code"]) == 24
    for body, field in (({"hours": 0}, "hours"), ({"hours": 10_000}, "hours")):
        refused = httpx.post(f"{peers}/{ROSSO}/invite", headers=admin, json=body)
        assert refused.status_code == 422 and refused.json()["invalid_params"][0]["name"] == field
    bad = httpx.post(f"{peers}/national/invite", headers=admin, json={})
    assert bad.status_code == 422 and bad.json()["invalid_params"][0]["name"] == "node_code"
    assert httpx.post(f"{peers}/{ROSSO}/invite", json={}).status_code == 401
    env = post_env(national.root, ROSSO)
    code = issued.json()["code"]
    cli(env, "node", "enrol", "--national-url", national.national.url, "--code", code)
    listed = httpx.get(f"{peers}/", headers=admin).json()
    assert [(p["node_code"], p["status"], p["key_sha256"]) for p in listed] == [
        (ROSSO, "approved", _key_sha256(env))
    ]
    assert httpx.post(f"{peers}/{ROSSO}/remove", headers=admin).status_code == 409
    assert httpx.post(f"{peers}/{ROSSO}/revoke", headers=admin).status_code == 200
    removed = httpx.post(f"{peers}/{ROSSO}/remove", headers=admin)
    assert removed.status_code == 200 and removed.json()["removed"] is True
    assert httpx.post(f"{peers}/{ROSSO}/remove", headers=admin).status_code == 404
