"""National stores a post's biometric templates only for photos that post originated (issue 15).

National on a real PostgreSQL database, in process; the batches are genuinely signed with the
post's key and go through the same receive and apply path as the HTTP endpoint, on the bulk
(COPY) path and on the row path (a retried record). A template is owned through its photo
(``sync.records.OWNED_THROUGH``): one of a photo another post holds is quarantined as
``not_owner``, as a row whose own key another post holds is; one claiming another origin is
``forged_origin``; the rest of the batch is stored.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import text

from registry.models import BiometricTemplate, Photo
from registry.node import Node
from sync.batches import RecordRow, sign_batch
from sync.ingest import controller as api  # holds _apply_in_order
from sync.ingest.validation import ReceivedBatch, receive_batch
from sync.records import POST_RECORD_TYPES
from tests.support.ingest import (
    GOGUI,
    NATIONAL,
    POST_KEY,
    Outbox,
    count_rows,
)

KOBENI = "MR-KOBENI"


def _photo(origin: str) -> Photo:
    sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    return Photo(sha256=sha, origin=origin, width=10, height=10, size_bytes=100, quality={})


def _template(photo: Photo, origin: str) -> BiometricTemplate:
    return BiometricTemplate(
        origin=origin,
        photo_sha256=photo.sha256,
        modality="iris",
        modality_type="IRIS",
        template=hashlib.sha256(photo.sha256.encode()).digest(),
        quality_score=100,
    )


def _batch(run: list[RecordRow], *, bulk: bool) -> ReceivedBatch:
    signed = sign_batch(
        run, kind="records", origin=GOGUI, destination=NATIONAL, after_seq=0, key=POST_KEY
    )
    return receive_batch(
        signed.header,
        signed.signature,
        signed.body,
        POST_KEY.public_key(),
        destination=NATIONAL,
        bulk=bulk,
    )


def test_templates_travel_after_their_photo() -> None:
    assert POST_RECORD_TYPES.index("biometric_template") == POST_RECORD_TYPES.index("photo") + 1


@pytest.mark.parametrize("bulk", [True, False], ids=["copy", "rows"])
async def test_a_post_sends_templates_only_of_its_own_photos(national: Node, bulk: bool) -> None:
    theirs = _photo(KOBENI)
    async with national.db.sessions() as session, session.begin():
        session.add(theirs)
    mine = _photo(GOGUI)
    own = _template(mine, GOGUI)
    of_theirs = _template(theirs, GOGUI)  # claims the sender, but the photo is KOBENI's
    forged = _template(mine, KOBENI)
    forged.modality = "other"
    outbox = Outbox([])
    run = outbox.add(mine, own, of_theirs, forged)
    result = await api._apply_in_order(national, _batch(run, bulk=bulk))
    assert result.ack == run[-1][0]
    taken = sorted((q.record_type, q.record_id, q.reason) for q in result.quarantined)
    assert taken == sorted(
        [
            ("biometric_template", str(of_theirs.id), "not_owner"),
            ("biometric_template", str(forged.id), "forged_origin"),
        ]
    )
    stored = await count_rows(
        national,
        f"SELECT count(*) FROM biometric_template WHERE photo_sha256 IN "
        f"('{mine.sha256}', '{theirs.sha256}')",
    )
    assert stored == 1
    async with national.db.sessions() as session:
        row = (
            await session.execute(
                text("SELECT origin, template FROM biometric_template WHERE id = :i"),
                {"i": own.id},
            )
        ).one()
    assert (row[0], bytes(row[1])) == (GOGUI, own.template)
