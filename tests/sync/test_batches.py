"""The signed batch format: what a receiver accepts and refuses before it trusts a record."""

from __future__ import annotations

import hashlib
import json
import zlib

import msgspec
import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.batches import (
    MAX_DECOMPRESSED_BYTES,
    BatchHeader,
    BatchRejected,
    OutboxRecord,
    SignedBatch,
    encode_body,
    sign_batch,
    verify_batch,
)

KEY = Ed25519PrivateKey.generate()
RECORDS = [
    OutboxRecord(3, "traveller", "t-1", {"id": "t-1", "surname": 'O"NEIL'}),
    OutboxRecord(4, "travel_document", "d-1", '{"id": "d-1", "traveller_id": "t-1"}'),
    OutboxRecord(5, "crossing", "c-1", {"id": "c-1", "traveller_id": "t-1"}),
    OutboxRecord(7, "traveller", "t-2", {"id": "t-2", "surname": "BA"}),
]


def _sign(records: list[OutboxRecord], after: int = 2) -> SignedBatch:
    return sign_batch(
        records, kind="records", origin="MR-GOGUI", destination="MR-NAT", after_seq=after, key=KEY
    )


def _verify(batch: SignedBatch) -> list[OutboxRecord]:
    return verify_batch(
        batch.header, batch.signature, batch.body, KEY.public_key(), destination="MR-NAT"
    )


def _resigned(
    body: bytes, *, seq_from: int = 3, seq_to: int = 7, count: int = 4, fmt: int = 2
) -> SignedBatch:
    """A batch signed by the genuine key around a body built by hand."""
    header = BatchHeader(
        fmt, "records", "MR-GOGUI", "MR-NAT", 2, seq_from, seq_to, count,
        hashlib.sha256(body).hexdigest(),
    )  # fmt: skip
    return SignedBatch(header, KEY.sign(header.canonical()), body)


def _reason(batch: SignedBatch) -> str:
    with pytest.raises(BatchRejected) as refused:
        _verify(batch)
    return refused.value.reason


def test_a_batch_groups_rows_by_table_and_comes_back_in_seq_order() -> None:
    body = json.loads(encode_body(RECORDS))
    assert list(body) == ["traveller", "travel_document", "crossing"]
    assert [row[0] for row in body["traveller"]] == [3, 7]
    assert body["traveller"][0] == [3, "t-1", {"id": "t-1", "surname": 'O"NEIL'}]
    records = _verify(_sign(RECORDS))
    assert [(r.seq, r.record_type, r.record_id) for r in records] == [
        (r.seq, r.record_type, r.record_id) for r in RECORDS
    ]
    assert msgspec.json.decode(records[1].payload) == {"id": "d-1", "traveller_id": "t-1"}


def test_an_altered_or_forged_batch_is_refused() -> None:
    genuine = _sign(RECORDS)
    assert _reason(SignedBatch(genuine.header, genuine.signature, genuine.body + b"x")) == "altered"
    forged = sign_batch(
        RECORDS, kind="records", origin="MR-GOGUI", destination="MR-NAT", after_seq=2,
        key=Ed25519PrivateKey.generate(),
    )  # fmt: skip
    assert _reason(forged) == "bad_signature"
    elsewhere = sign_batch(
        RECORDS, kind="records", origin="MR-GOGUI", destination="ML-NAT", after_seq=2, key=KEY
    )
    assert _reason(elsewhere) == "wrong_destination"


def test_a_decompression_bomb_is_refused_before_it_inflates() -> None:
    bomb = zstandard.ZstdCompressor(level=3).compress(b" " * (MAX_DECOMPRESSED_BYTES + 1))
    assert len(bomb) < 100_000
    assert _reason(_resigned(bomb)) == "too_large"


def test_a_frame_without_its_size_or_with_trailing_bytes_is_refused() -> None:
    text = encode_body(RECORDS)
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(text)
    assert _reason(_resigned(unsized)) == "malformed"
    sized = zstandard.ZstdCompressor().compress(text)
    assert len(_verify(_resigned(sized))) == 4
    assert _reason(_resigned(sized + sized)) == "malformed"
    assert _reason(_resigned(b"not zstd at all")) == "malformed"


@pytest.mark.parametrize(
    ("tables", "reason"),
    [
        ({"traveller": [[3, "a", {}], [7, "b", {}]], "crossing": [[5, "c", {}], [4, "d", {}]]},
         "malformed"),  # a table's seqs go backwards
        ({"traveller": [[3, "a", {}], [7, "b", {}]], "crossing": [[3, "c", {}], [5, "d", {}]]},
         "malformed"),  # one seq twice
        ({"traveller": [[3, "a", {}], [7, "b", {}]], "crossing": [[5, "c", {}]]},
         "truncated"),  # three records, four signed
        ({"traveller": [[3, "a", {}], [6, "b", {}]], "crossing": [[4, "c", {}], [5, "d", {}]]},
         "truncated"),  # does not reach the signed seq_to
        ({"traveller": "nonsense"}, "malformed"),
    ],
)  # fmt: skip
def test_a_body_that_breaks_the_signed_range_is_refused(
    tables: dict[str, object], reason: str
) -> None:
    body = zstandard.ZstdCompressor().compress(json.dumps(tables).encode())
    assert _reason(_resigned(body)) == reason


def test_a_batch_that_starts_before_its_predecessor_is_refused() -> None:
    assert _reason(_sign(RECORDS, after=3)) == "malformed"


def test_a_batch_of_the_old_format_is_refused_as_unknown() -> None:
    """Format 1 (one zlib-compressed array) is refused whole: an old post's records wait in
    its outbox until it is upgraded."""
    old = zlib.compress(json.dumps([[3, "traveller", "t-1", {"id": "t-1"}]]).encode())
    assert _reason(_resigned(old, seq_from=3, seq_to=3, count=1, fmt=1)) == "unknown_format"
