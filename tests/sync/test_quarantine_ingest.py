"""A poison record never stops sync, and no post writes what it does not own (issue 12).

National on a real PostgreSQL database, in process; the batches are genuinely signed with
the post's key and go through the same receive and apply path as the HTTP endpoint. Each
poison record is quarantined with its reason and payload, the rest of its batch is stored,
and the acknowledgement moves past it. The admin's CLI (a subprocess) lists, retries and
discards the quarantine.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import text

from registry.models import Crossing, Officer, TravelDocument, Traveller
from registry.names import name_key
from registry.node import Node
from registry.security import hash_password, verify_password
from sync.batches import BatchHeader, RecordRow
from sync.ingest import controller as api  # holds _apply_in_order
from sync.ingest.photos import ingest_photo
from sync.ingest.quarantine import discard_entry, retry_entry
from sync.quarantine import list_quarantine
from tests.support.ingest import (
    GOGUI,
    NATIONAL,
    POST_KEY,
    Outbox,
    count_rows,
    new_crossing,
    received_batch,
    travellers_with_crossings,
)
from tests.support.servers import cli, node_env

KOBENI = "MR-KOBENI"


def _officer(home: str = GOGUI, username: str = "gogui1") -> Officer:
    return Officer(
        username=username, full_name="A", role="officer", home_post=home, password_hash="x"
    )


def _person(origin: str, n: int, surname: str = "DIALLO") -> tuple[Traveller, TravelDocument]:
    traveller = Traveller(
        origin=origin,
        surname=surname,
        given_names=f"AMADOU {n}",
        name_key=name_key("DIALLO", f"AMADOU {n}"),
        date_of_birth=date(1980, 1, 1),
        sex="M",
        nationality="MLI",
    )
    document = TravelDocument(
        origin=origin,
        traveller_id=traveller.id,
        issuing_state="MLI",
        document_type="P",
        number=f"Q{n:07d}",
        number_norm=f"Q{n:07d}",
    )
    return traveller, document


async def _apply(node: Node, run: list[RecordRow], after: int) -> Any:
    return await api._apply_in_order(node, received_batch(run, after))


async def _quarantine(node: Node) -> list[tuple[str, str, int, str]]:
    async with node.db.sessions() as session:
        entries = await list_quarantine(session, status=None)
    return sorted((e.record_type, e.reason, e.seq, e.origin) for e in entries)


async def test_poison_records_are_quarantined_and_the_rest_stored(national: Node) -> None:
    """A NUL in a surname, an over-long name key and a crossing claiming another post:
    each is quarantined (with the records that depend on it), the rest of the batch is
    stored, and the acknowledgement reaches the end of the batch."""
    outbox = Outbox([])
    officer = _officer()
    run = outbox.add(officer)
    run += travellers_with_crossings(outbox, officer, 0, 5)
    nul_traveller, nul_document = _person(GOGUI, 50, surname="DIA\x00LLO")
    run += outbox.add(
        nul_traveller, nul_document, new_crossing(officer, nul_traveller, nul_document)
    )
    long_traveller, long_document = _person(GOGUI, 51)
    long_traveller.name_key = "\ufdfa" * 30 + "x" * 400  # over the 400-character column
    run += outbox.add(long_traveller)
    good, document = _person(GOGUI, 52)
    forged = new_crossing(officer, good, document)
    forged.origin = KOBENI
    run += outbox.add(good, document, forged)
    result = await _apply(national, run, 0)
    assert result.ack == run[-1][0]  # past every quarantined record
    reasons = sorted((q.record_type, q.reason) for q in result.quarantined)
    assert reasons == [
        ("crossing", "forged_origin"),
        ("crossing", "quarantined_reference"),
        ("travel_document", "quarantined_reference"),
        ("traveller", "unstorable_text"),
        ("traveller", "unstorable_text"),
    ]
    assert await count_rows(national, "SELECT count(*) FROM crossing") == 5
    assert await count_rows(national, "SELECT count(*) FROM traveller") == 6
    async with national.db.sessions() as session:
        entries = await list_quarantine(session, origin=GOGUI)
    nul = next(e for e in entries if e.record_id == str(nul_traveller.id))
    assert "control character" in nul.detail and "\\u0000" in (nul.payload or "")
    assert json.loads(nul.payload or "")["surname"] == "DIA\x00LLO"  # as received
    dependent = next(e for e in entries if e.record_id == str(nul_document.id))
    assert str(nul_traveller.id) in dependent.detail


async def test_a_signed_batch_cannot_take_over_what_another_node_owns(national: Node) -> None:
    """A genuinely signed batch from one post carrying national admin's account, another
    post's account and another post's crossing (each claiming the sender as owner): all
    three are quarantined as not_owner, the batch's other records are stored, and
    national's admin keeps its password."""
    admin = Officer(
        username="admin",
        full_name="National admin",
        role="admin",
        home_post=NATIONAL,
        password_hash=hash_password("national-admin-password"),
    )
    theirs = _officer(KOBENI, "kobeni1")
    their_traveller, their_document = _person(KOBENI, 7)
    their_crossing = new_crossing(theirs, their_traveller, their_document)
    their_crossing.origin = their_crossing.post = KOBENI
    async with national.db.sessions() as session, session.begin():
        session.add_all([admin, theirs, their_traveller, their_document])
        await session.flush()
        session.add(their_crossing)
    outbox = Outbox([])
    mine = _officer()
    run = outbox.add(mine)
    stolen_admin = Officer.model_validate(admin.model_dump())
    stolen_admin.home_post = GOGUI
    stolen_admin.password_hash = hash_password("attacker-password")
    stolen_colleague = Officer.model_validate(theirs.model_dump())
    stolen_colleague.home_post, stolen_colleague.full_name = GOGUI, "taken over"
    stolen_crossing = Crossing.model_validate(their_crossing.model_dump())
    stolen_crossing.origin, stolen_crossing.decision = GOGUI, "refused"
    stolen_crossing.officer_id = mine.id  # else refused with the stolen account it names
    run += outbox.add(stolen_admin, stolen_colleague, stolen_crossing)
    run += travellers_with_crossings(outbox, mine, 0, 3)
    result = await _apply(national, run, 0)
    assert result.ack == run[-1][0]
    taken = sorted((q.record_type, q.record_id, q.reason) for q in result.quarantined)
    assert taken == sorted(
        [
            ("officer", str(admin.id), "not_owner"),
            ("officer", str(theirs.id), "not_owner"),
            ("crossing", str(their_crossing.id), "not_owner"),
        ]
    )
    async with national.db.sessions() as session:
        stored_admin = await session.get(Officer, admin.id)
        stored_colleague = await session.get(Officer, theirs.id)
        assert stored_admin is not None and stored_admin.home_post == NATIONAL
        assert verify_password(stored_admin.password_hash, "national-admin-password")
        assert stored_colleague is not None and stored_colleague.full_name == "A"
        decisions = (
            await session.execute(
                text("SELECT origin, decision FROM crossing WHERE id = :i"),
                {"i": their_crossing.id},
            )
        ).all()
    assert decisions == [(KOBENI, "cleared")]  # not replaced, not doubled
    assert (
        await count_rows(national, "SELECT count(*) FROM crossing WHERE origin = 'MR-GOGUI'") == 3
    )
    assert (
        await count_rows(national, "SELECT count(*) FROM officer WHERE home_post = 'MR-GOGUI'") == 1
    )


async def test_a_dangling_reference_is_retried_once_its_record_arrives(
    national: Node, tmp_path: Path
) -> None:
    """A crossing of a traveller national lacks is quarantined; the traveller arrives
    later (e.g. after the post resends it); a retry stores the crossing through the normal
    path. Another entry is discarded. Both through the CLI, as a subprocess; audited."""
    outbox = Outbox([])
    officer = _officer()
    officer_run = outbox.add(officer)
    await _apply(national, officer_run, 0)
    late_traveller, late_document = _person(GOGUI, 60)
    orphan = new_crossing(officer, late_traveller, late_document)
    poison, _ = _person(GOGUI, 61, surname="NUL\x00")
    run = outbox.add(orphan, poison)
    result = await _apply(national, run, officer_run[-1][0])
    assert result.ack == run[-1][0]
    assert sorted(q.reason for q in result.quarantined) == [
        "dangling_reference",
        "unstorable_text",
    ]
    env = node_env(
        tmp_path / "national",
        role="national",
        node_code=NATIONAL,
        database_url=national.settings.database_url,
        secret_key="x" * 40,
    )
    listed = json.loads(cli(env, "sync", "quarantine", "list").stdout)
    by_reason = {e["reason"]: e for e in listed}
    assert set(by_reason) == {"dangling_reference", "unstorable_text"}
    assert all("payload" not in e for e in listed)
    dangling = by_reason["dangling_reference"]["id"]
    still = cli(env, "sync", "quarantine", "retry", str(dangling), check=False)
    assert still.returncode == 1 and "still refused" in still.stderr
    assert await count_rows(national, "SELECT count(*) FROM crossing") == 0
    fix = outbox.add(late_traveller, late_document)  # the referenced records arrive
    await _apply(national, fix, run[-1][0])
    retried = json.loads(cli(env, "sync", "quarantine", "retry", str(dangling)).stdout)
    assert retried["status"] == "retried" and retried["resolved_by"] == "cli"
    assert await count_rows(national, "SELECT count(*) FROM crossing") == 1
    again = cli(env, "sync", "quarantine", "retry", str(dangling), check=False)
    assert again.returncode == 1 and "retried" in again.stderr
    poisoned = by_reason["unstorable_text"]["id"]
    discarded = json.loads(cli(env, "sync", "quarantine", "discard", str(poisoned)).stdout)
    assert discarded["status"] == "discarded"
    assert json.loads(cli(env, "sync", "quarantine", "list").stdout) == []
    everything = json.loads(cli(env, "sync", "quarantine", "list", "--status", "all").stdout)
    assert {e["status"] for e in everything} == {"retried", "discarded"}
    actions = await count_rows(
        national,
        "SELECT count(*) FROM audit_event WHERE action IN "
        "('quarantine_retry', 'quarantine_discard')",
    )
    assert actions == 3  # the retry still refused, the retry that stored, the discard


async def test_a_pushed_photo_that_is_not_an_image_is_quarantined(
    national: Node, tmp_path: Path
) -> None:
    """An HTML body pushed as a photo is decoded with the post's safe decoder, refused, and
    quarantined: never stored as a .jpg. A retry still refuses it; a real JPEG is stored."""
    import hashlib

    import skimage.data

    from biometrics.imaging import decode_image, to_jpeg

    national = Node.build(replace(national.settings, data_dir=tmp_path))

    async def push(body: bytes, seq: int) -> Any:
        sha = hashlib.sha256(body).hexdigest()
        header = BatchHeader(1, "photo", GOGUI, NATIONAL, seq - 1, seq, seq, 1, sha)
        async with national.db.sessions() as session, session.begin():
            return await ingest_photo(
                session,
                node=national,
                header=header,
                signature=POST_KEY.sign(header.canonical()),
                body=body,
            )

    try:
        html = b"<html><body><script>alert(1)</script></body></html>"
        outcome = await push(html, 7)
        assert [q.reason for q in outcome.quarantined] == ["not_an_image"]
        assert not list(tmp_path.glob("photos/**/*.jpg"))
        astronaut = Path(skimage.data.__file__).parent / "astronaut.png"
        jpeg = to_jpeg(decode_image(astronaut.read_bytes()))
        stored = await push(jpeg, 8)
        assert stored.quarantined == [] and len(list(tmp_path.glob("photos/**/*.jpg"))) == 1
        async with national.db.sessions() as session, session.begin():
            (entry,) = await list_quarantine(session, origin=GOGUI)
            assert (entry.record_type, entry.seq) == ("photo_file", 7)
            entry = await retry_entry(session, node=national, entry_id=entry.id, officer=None)
            assert entry.status == "pending" and entry.reason == "not_an_image"
            entry = await discard_entry(session, node=national, entry_id=entry.id, officer=None)
            assert entry.status == "discarded"
    finally:
        await national.db.dispose()
