"""Sync end to end: one national node on PostgreSQL and two posts on SQLite, all real
servers on 127.0.0.1. Offline weeks, cut links, a killed national, reference data coming
down, and forged, revoked and replayed batches."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.node import Node
from registry.settings import load_settings
from sync.batches import OutboxRecord, sign_batch
from sync.client import NationalLink, SyncClient, SyncError
from tests.support.cluster import (
    NATIONAL,
    Cluster,
    Post,
    canonical,
    drop_cluster,
    mrz,
    start_cluster,
)
from tests.support.nodes import missing, pg_reachable
from tests.support.servers import cli

GOGUI, KOBENI = "MR-GOGUI", "MR-KOBENI"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not pg_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432")
    started = start_cluster(tmp_path, (GOGUI, KOBENI))
    try:
        yield started
    finally:
        drop_cluster(started)


def national_crossings(cluster: Cluster, origin: str) -> list[str]:
    rows = cluster.national_rows("SELECT id FROM crossing WHERE origin = :o", o=origin)
    return [canonical(r[0]) for r in rows]


def post_max_seq(cluster: Cluster, code: str) -> int:
    return cluster.posts[code].rows("SELECT max(seq) FROM outbox")[0][0]


def _status(cluster: Cluster, code: str) -> dict:
    return json.loads(cli(cluster.posts[code].env, "sync", "status", check=False).stdout)


def test_offline_registrations_arrive_exactly_once(cluster: Cluster) -> None:
    cluster.national.kill()
    acknowledged = _status(cluster, GOGUI)["acknowledged_seq"]  # the start-up sync's share
    gogui = cluster.posts[GOGUI].register(24, "G")
    kobeni = cluster.posts[KOBENI].register(11, "K")
    portrait = _register_with_photo(cluster.posts[KOBENI])
    kobeni.append(portrait["id"])
    offline = cli(cluster.posts[GOGUI].env, "sync", "now", check=False)
    assert offline.returncode != 0
    status = _status(cluster, GOGUI)
    assert status["acknowledged_seq"] == acknowledged and status["backlog_records"] >= 24 * 4
    assert status["last_error"]
    cluster.national.start()
    for code in (GOGUI, KOBENI):
        cli(cluster.posts[code].env, "sync", "now")
    assert sorted(national_crossings(cluster, GOGUI)) == sorted(gogui)
    assert sorted(national_crossings(cluster, KOBENI)) == sorted(kobeni)
    cli(cluster.posts[GOGUI].env, "sync", "now")  # again: nothing new, nothing doubled
    assert len(national_crossings(cluster, GOGUI)) == 24
    status = json.loads(cli(cluster.posts[GOGUI].env, "sync", "status").stdout)
    assert status["backlog_records"] == 0 and status["warning"] is None
    assert status["acknowledged_seq"] == post_max_seq(cluster, GOGUI)
    chain = cli(cluster.national_env, "audit", "verify", "--origin", GOGUI)
    assert json.loads(chain.stdout)["ok"] is True
    digest = json.loads(cli(cluster.posts[KOBENI].env, "sync", "verify").stdout)
    assert digest["days_differing"] == [] and digest["missing_at_national"] == []
    sha = portrait["photo_sha256"]
    stored = cluster.root / "national" / "photos" / sha[:2] / sha[2:4] / f"{sha}.jpg"
    assert stored.read_bytes()[:2] == b"\xff\xd8"
    encoding = cluster.national_rows("SELECT face_encoding FROM photo WHERE sha256 = :s", s=sha)
    assert len(encoding[0][0]) == 128 * 4  # the face template travelled with the photo row


def _register_with_photo(post: Post) -> dict:
    import skimage.data

    photo = (Path(skimage.data.__file__).parent / "astronaut.png").read_bytes()
    body = {
        "direction": "entry",
        "mrz": mrz("P0000077", surname="COLLINS", given="EILEEN"),
        "photo_quality_override": "astronaut portrait used as a test photo",
    }
    response = httpx.post(
        f"{post.server.url}/api/crossings",
        headers=post.headers(),
        data={"crossing": json.dumps(body)},
        files={"photo": ("astronaut.png", photo, "image/png")},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_digest_finds_and_resends_what_national_lost(cluster: Cluster) -> None:
    ids = cluster.posts[GOGUI].register(12, "D")
    cli(cluster.posts[GOGUI].env, "sync", "now")
    lost = sorted(ids[2:5])
    cluster.national_execute("DELETE FROM crossing WHERE id::text = ANY(:ids)", ids=lost)
    assert len(national_crossings(cluster, GOGUI)) == 9
    report = json.loads(cli(cluster.posts[GOGUI].env, "sync", "verify").stdout)
    assert sorted(report["missing_at_national"]) == lost
    assert len(report["days_differing"]) == 1
    cli(cluster.posts[GOGUI].env, "sync", "now")
    assert sorted(national_crossings(cluster, GOGUI)) == sorted(ids)
    again = json.loads(cli(cluster.posts[GOGUI].env, "sync", "verify").stdout)
    assert again["missing_at_national"] == [] and again["days_differing"] == []


class CuttingProxy:
    """A TCP proxy that drops connections at random byte offsets, both directions."""

    def __init__(self, upstream_port: int, seed: int = 7) -> None:
        self.upstream_port = upstream_port
        self.random = random.Random(seed)
        self.cuts = 0
        self.cutting = True
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        budget = [
            self.random.randint(50, 4000) if self.cutting and self.random.random() < 0.6 else None
        ]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(512):
                    if budget[0] is not None:
                        if len(data) >= budget[0]:
                            dst.write(data[: budget[0]])
                            self.cuts += 1
                            budget[0] = None
                            raise ConnectionResetError("cut")
                        budget[0] -= len(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                for stream in (writer, up_writer):
                    stream.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def _sync_until_done(node: Node, link: NationalLink, *, attempts: int) -> int:
    failures = 0
    for _ in range(attempts):
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                await SyncClient(node, link, http, max_records=3).sync_once()
            return failures
        except (SyncError, httpx.HTTPError):
            failures += 1
    raise AssertionError(f"sync never completed in {attempts} attempts")


def _node_of(cluster: Cluster, code: str) -> Node:
    return Node.build(load_settings(cluster.posts[code].env))


def test_cut_connections_lose_and_duplicate_nothing(cluster: Cluster) -> None:
    ids = cluster.posts[GOGUI].register(40, "C")

    async def scenario() -> tuple[int, int]:
        proxy = CuttingProxy(cluster.national.port)
        await proxy.start()
        node = _node_of(cluster, GOGUI)
        link = NationalLink(
            NATIONAL,
            f"http://127.0.0.1:{proxy.port}",
            node.trusted_keys.get(NATIONAL) or _national_key(cluster),
        )
        try:
            failures = 0
            while proxy.cuts < 50:
                failures += await _sync_until_done(node, link, attempts=400)
                if proxy.cuts < 50:  # everything arrived before 50 cuts: add more and go on
                    await asyncio.to_thread(
                        cluster.posts[GOGUI].register, 10, f"R{proxy.cuts:02d}x"
                    )
            proxy.cutting = False
            failures += await _sync_until_done(node, link, attempts=5)
            return proxy.cuts, failures
        finally:
            await proxy.stop()
            await node.db.dispose()

    cuts, failures = asyncio.run(scenario())
    assert cuts >= 50 and failures >= 1
    stored = national_crossings(cluster, GOGUI)
    assert len(stored) == len(set(stored))
    local = [canonical(r[0]) for r in cluster.posts[GOGUI].rows("SELECT id FROM crossing")]
    assert sorted(stored) == sorted(local) and set(ids) <= set(stored)
    contiguous = cluster.national_rows(
        "SELECT contiguous_seq FROM ingest_state WHERE origin = :o", o=GOGUI
    )[0][0]
    assert contiguous == post_max_seq(cluster, GOGUI)
    for table in ("traveller", "travel_document", "audit_event"):
        national = cluster.national_rows(
            f"SELECT count(*) FROM {table} WHERE origin = :o", o=GOGUI
        )[0][0]
        post = cluster.posts[GOGUI].rows(f"SELECT count(*) FROM {table} WHERE origin = '{GOGUI}'")[
            0
        ][0]
        assert national == post, table


def _national_key(cluster: Cluster) -> object:
    from registry.receipts import public_key_from_text

    key = json.loads(cli(cluster.national_env, "keys", "show").stdout)["public_key"]
    return public_key_from_text(key)


def test_national_killed_mid_ingest_stays_consistent(cluster: Cluster) -> None:
    cluster.posts[KOBENI].register(60, "M")

    async def scenario() -> None:
        node = _node_of(cluster, KOBENI)
        link = NationalLink(NATIONAL, cluster.national.url, _national_key(cluster))
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                client = SyncClient(node, link, http, max_records=2)
                push = asyncio.create_task(client.push_records())
                while await client.position("records") < 20:
                    await asyncio.sleep(0.01)
                cluster.national.kill()
                with pytest.raises((SyncError, httpx.HTTPError)):
                    await push
            await asyncio.to_thread(cluster.national.start)
            async with httpx.AsyncClient(timeout=10) as http:
                await SyncClient(node, link, http, max_records=50).sync_once()
        finally:
            await node.db.dispose()

    asyncio.run(scenario())
    stored = national_crossings(cluster, KOBENI)
    assert len(stored) == len(set(stored)) == 60
    contiguous = cluster.national_rows(
        "SELECT contiguous_seq FROM ingest_state WHERE origin = :o", o=KOBENI
    )[0][0]
    assert contiguous == post_max_seq(cluster, KOBENI)
    chain = cli(cluster.national_env, "audit", "verify", "--origin", KOBENI)
    assert json.loads(chain.stdout)["ok"] is True


def test_watchlist_reaches_posts_and_hits_reach_national(
    cluster: Cluster, tmp_path: Path, astronaut_path: Path
) -> None:
    headers = cluster.national_token("hq.supervisor")
    photos = tmp_path / "listed-photos"
    photos.mkdir()
    (photos / "listed.png").write_bytes(astronaut_path.read_bytes())
    listing = tmp_path / "faces.csv"
    listing.write_text(
        "external_id,kind,surname,given_names,date_of_birth,nationality,issuing_state,"
        "document_number,reason,action,source,valid_from,valid_to,photo\n"
        "F1,person,LISTED,FACE,,,,,wanted for questioning,refer_secondary,interpol,,,"
        "listed.png\n",
        encoding="utf-8",
    )
    cli(cluster.national_env, "watchlist", "import", str(listing), "--photos", str(photos))
    faces = [
        tuple(row)
        for row in cluster.national_rows(
            "SELECT face_template, listed_portrait FROM watchlist_entry WHERE external_id = 'F1'"
        )
    ]
    assert len(faces) == 1 and faces[0][0] and faces[0][1].startswith(b"\xff\xd8\xff")
    entry = httpx.post(
        f"{cluster.national.url}/api/watchlist/entries",
        headers=headers,
        json={
            "kind": "document",
            "issuing_state": "MLI",
            "document_number": "W0000001",
            "reason": "reported stolen",
            "action": "refer_secondary",
        },
    )
    assert entry.status_code == 201, entry.text
    for code in (GOGUI, KOBENI):
        cli(cluster.posts[code].env, "sync", "now")
        rows = cluster.posts[code].rows("SELECT number_norm FROM watchlist_entry")
        assert ("W0000001",) in rows
        pulled = cluster.posts[code].rows(
            "SELECT face_template, listed_portrait FROM watchlist_entry WHERE external_id = 'F1'"
        )
        assert pulled == faces, "the face entry came down without its listed portrait"
    post = cluster.posts[GOGUI]
    hit = None
    for _ in range(40):  # the running server picks the entry up within its refresh period
        response = httpx.post(
            f"{post.server.url}/api/crossings",
            headers=post.headers(),
            json={"direction": "entry", "mrz": mrz("W0000001")},
        )
        assert response.status_code == 201
        if response.json()["alerts"]:
            hit = response.json()
            break
        asyncio.run(asyncio.sleep(0.25))
    assert hit is not None, "the post never matched the watchlist pulled from national"
    assert hit["alerts"][0]["instruction"] == "refer to secondary inspection"
    cli(post.env, "sync", "now")
    alerts = cluster.national_rows("SELECT crossing_id, origin, evidence FROM alert")
    assert (hit["id"], GOGUI, "document") in [(canonical(c), o, e) for c, o, e in alerts]


def _records(cluster: Cluster, code: str, limit: int) -> list[OutboxRecord]:
    rows = cluster.posts[code].rows(
        f"SELECT seq, record_type, record_id, payload FROM outbox ORDER BY seq LIMIT {limit}"
    )
    return [OutboxRecord(s, t, i, json.loads(p)) for s, t, i, p in rows]


def _post(cluster: Cluster, batch: object) -> httpx.Response:
    return httpx.post(
        f"{cluster.national.url}/api/sync/batches", content=batch.body, headers=batch.http_headers()
    )


def test_forged_revoked_and_replayed_batches_are_refused(cluster: Cluster) -> None:
    from registry.receipts import load_or_create_node_key

    cluster.posts[GOGUI].register(3, "F")
    records = _records(cluster, GOGUI, 5)
    before = national_crossings(cluster, GOGUI)
    forged = sign_batch(
        records,
        kind="records",
        origin=GOGUI,
        destination=NATIONAL,
        after_seq=0,
        key=Ed25519PrivateKey.generate(),
    )
    response = _post(cluster, forged)
    assert response.status_code == 403 and "bad_signature" in response.text
    key = load_or_create_node_key(cluster.posts[GOGUI].data_dir / "keys" / "node_ed25519.pem")
    genuine = sign_batch(
        records, kind="records", origin=GOGUI, destination=NATIONAL, after_seq=0, key=key
    )
    altered = type(genuine)(genuine.header, genuine.signature, genuine.body[:-1] + b"\x00")
    response = _post(cluster, altered)
    assert response.status_code == 400 and "altered" in response.text
    assert national_crossings(cluster, GOGUI) == before == []
    assert _post(cluster, genuine).status_code == 200
    replay = _post(cluster, genuine)
    assert replay.status_code == 409 and replay.json()["reason"] == "replay"
    cli(cluster.national_env, "node", "revoke", KOBENI)
    cluster.posts[KOBENI].register(2, "V")
    refused = cli(cluster.posts[KOBENI].env, "sync", "now", check=False)
    assert refused.returncode != 0 and "revoked" in refused.stderr + refused.stdout
    assert national_crossings(cluster, KOBENI) == []
    rejected = cluster.national_rows(
        "SELECT detail FROM audit_event WHERE action = 'sync_rejected'"
    )
    reasons = {json.loads(d)["reason"] if isinstance(d, str) else d["reason"] for (d,) in rejected}
    # audited against the post only when its header is signed by the post it names
    assert {"altered", "sender_not_approved"} <= reasons and "bad_signature" not in reasons


def test_signed_batches_with_bad_rows_quarantine_only_those_rows(cluster: Cluster) -> None:
    """A genuinely signed batch with wrong rows (a dangling reference, a row claiming
    another post, a table posts may not push, a value that is not a time) is no longer
    refused whole (issue 12): those rows are quarantined with their reasons, the rest of
    the batch is stored, the acknowledgement moves past them, nothing is logged as a
    refused batch, and the post's later records still arrive."""
    from registry.receipts import load_or_create_node_key

    registered = cluster.posts[GOGUI].register(4, "B")
    key = load_or_create_node_key(cluster.posts[GOGUI].data_dir / "keys" / "node_ed25519.pem")
    records = _records(cluster, GOGUI, 1000)
    crossings = [i for i, r in enumerate(records) if r.record_type == "crossing"]
    assert len(crossings) == 4

    def bad(i: int, **changes: object) -> OutboxRecord:
        return records[i]._replace(payload={**records[i].payload, **changes})

    dangling, forged, listed, untimed = crossings
    records[dangling] = bad(dangling, traveller_id=str(uuid.uuid4()))
    records[forged] = bad(forged, origin=KOBENI)
    records[listed] = records[listed]._replace(record_type="watchlist_entry")
    records[untimed] = bad(untimed, occurred_at="yesterday")
    batch = sign_batch(
        records, kind="records", origin=GOGUI, destination=NATIONAL, after_seq=0, key=key
    )
    response = _post(cluster, batch)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ack"] == records[-1].seq
    assert sorted(q["reason"] for q in answer["quarantined"]) == [
        "dangling_reference",
        "forbidden_record",
        "forged_origin",
        "malformed",
    ]
    assert national_crossings(cluster, GOGUI) == []
    stored = cluster.national_rows("SELECT count(*) FROM traveller WHERE origin = :o", o=GOGUI)
    assert stored == [(4,)]  # the rest of the batch
    rejected = cluster.national_rows(
        "SELECT count(*) FROM audit_event WHERE action = 'sync_rejected'"
    )
    assert rejected == [(0,)]
    cli(cluster.posts[GOGUI].env, "sync", "now")  # national already holds that range
    later = cluster.posts[GOGUI].register(1, "C")
    cli(cluster.posts[GOGUI].env, "sync", "now")
    assert national_crossings(cluster, GOGUI) == later
    assert set(registered).isdisjoint(national_crossings(cluster, GOGUI))


def test_a_batch_ahead_of_its_predecessor_waits_for_it(cluster: Cluster) -> None:
    """Posts keep two batches in flight: when the second overtakes the first on the way,
    national holds it until the first is stored instead of refusing it as a gap."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from registry.receipts import load_or_create_node_key

    registered = cluster.posts[GOGUI].register(4, "W")
    key = load_or_create_node_key(cluster.posts[GOGUI].data_dir / "keys" / "node_ed25519.pem")
    records = _records(cluster, GOGUI, 1000)
    half = len(records) // 2
    batches = [
        sign_batch(part, kind="records", origin=GOGUI, destination=NATIONAL, after_seq=after,
                   key=key)
        for part, after in ((records[:half], 0), (records[half:], records[half - 1].seq))
    ]  # fmt: skip
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(_post, cluster, batches[1])
        time.sleep(0.5)  # the second batch is now waiting at national
        assert not ahead.done()
        behind = _post(cluster, batches[0])
        assert behind.status_code == 200 and behind.json()["ack"] == records[half - 1].seq
        assert ahead.result().status_code == 200, ahead.result().text
    assert ahead.result().json()["ack"] == records[-1].seq
    assert sorted(national_crossings(cluster, GOGUI)) == sorted(registered)
