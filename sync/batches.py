"""Signed, compressed batches of outbox records: how records travel between nodes.

A batch is a contiguous seq range from one origin. Its header (origin, destination, range,
count, content hash) is signed with the origin's Ed25519 key. The body is zstd-compressed
JSON, one array per table: ``{"crossing": [[seq, record_id, row], ...], ...}``, each array in
seq order, so a receiver can decode a whole table's rows with one typed decoder in one pass.
The receiver checks the signature, the hash, the size and the range before it trusts a
single record. Pure functions: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import msgspec
import zstandard
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.base64url import b64url, unb64url
from registry.json_text import compact_json

BATCH_FORMAT = 2  # 1 was one zlib-compressed array of [seq, record_type, record_id, row]
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
ZSTD_LEVEL = 1  # five times zlib's speed at level 1, and a smaller body
HEADER = "x-borderpost-batch"
SIGNATURE = "x-borderpost-signature"


class BatchRejected(ValueError):
    """A batch that must not be ingested; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class OutboxRecord(NamedTuple):
    """One outbox row on the wire: its seq, the table it belongs to, its id and its row.

    A named tuple: batches hold hundreds of thousands, and a frozen dataclass took a quarter
    of the post's push time just to construct them. The sender's hot path passes the plain
    ``(seq, record_type, record_id, payload)`` tuples its database returns instead."""

    seq: int
    record_type: str
    record_id: str
    # the row; its JSON text straight from the outbox (sender); or undecoded JSON (receiver)
    payload: dict[str, Any] | str | msgspec.Raw


# An outbox row as the database returns it, in OutboxRecord's field order.
RecordRow = tuple[int, str, str, dict[str, Any] | str | msgspec.Raw]


@dataclass(frozen=True)
class BatchHeader:
    """What the signature covers."""

    format: int
    kind: str
    origin: str
    destination: str
    after_seq: int  # the sender's last record before this batch: the receiver must have it
    seq_from: int
    seq_to: int
    count: int
    content_sha256: str

    def canonical(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignedBatch:
    header: BatchHeader
    signature: bytes
    body: bytes

    def http_headers(self) -> dict[str, str]:
        return {
            HEADER: b64url(self.header.canonical()),
            SIGNATURE: b64url(self.signature),
            "content-type": "application/octet-stream",
        }


def encode_body(records: Sequence[RecordRow]) -> bytes:
    """The uncompressed body: one JSON array per table, records in seq order within it,
    ``[seq, record_id, row]`` each, stored JSON text spliced in without re-encoding."""
    tables: dict[str, list[str]] = {}
    for seq, record_type, record_id, payload in records:
        if not isinstance(payload, str):
            payload = compact_json(payload)
        rows = tables.get(record_type)
        if rows is None:
            rows = tables[record_type] = []
        rows.append(f"[{seq},{compact_json(record_id)},{payload}]")
    parts = (f"{compact_json(name)}:[{','.join(rows)}]" for name, rows in tables.items())
    return ("{" + ",".join(parts) + "}").encode()


def compress(data: bytes) -> bytes:
    """zstd, with the content size in the frame header (the receiver requires it)."""
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True).compress(data)


def inflate(body: bytes, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress one zstd frame, refusing a frame that declares no size or more than
    ``limit`` bytes (a decompression bomb), a damaged frame and anything after it."""
    try:
        declared = zstandard.frame_content_size(body)
    except zstandard.ZstdError as exc:
        raise BatchRejected("malformed", f"the batch body is not zstd: {exc}") from exc
    if declared < 0:
        raise BatchRejected("malformed", "the batch body does not declare its size")
    if declared > limit:
        raise BatchRejected("too_large", f"the batch inflates to {declared} bytes")
    try:
        return zstandard.ZstdDecompressor().decompress(body, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise BatchRejected("malformed", f"the batch body is unreadable: {exc}") from exc


def sign_batch(
    records: Sequence[RecordRow],
    *,
    kind: str,
    origin: str,
    destination: str,
    after_seq: int,
    key: Ed25519PrivateKey,
) -> SignedBatch:
    """Compress and sign a non-empty run of records that follows ``after_seq``."""
    body = compress(encode_body(records))
    header = BatchHeader(
        BATCH_FORMAT,
        kind,
        origin,
        destination,
        after_seq,
        records[0][0],
        records[-1][0],
        len(records),
        hashlib.sha256(body).hexdigest(),
    )
    return SignedBatch(header, key.sign(header.canonical()), body)


def split_into_batches(
    records: Iterable[RecordRow], *, max_records: int, max_bytes: int
) -> Iterator[list[RecordRow]]:
    """Cut records into runs bounded by count and by uncompressed JSON bytes."""
    current: list[RecordRow] = []
    size = 0
    for record in records:
        payload = record[3]
        text = payload if isinstance(payload, str) else compact_json(payload)
        record_size = len(text) + 64
        if current and (len(current) >= max_records or size + record_size > max_bytes):
            yield current
            current, size = [], 0
        current.append(record)
        size += record_size
    if current:
        yield current


def read_header(headers: Mapping[str, str]) -> tuple[BatchHeader, bytes]:
    """Parse the header and signature from HTTP headers (not yet verified)."""
    try:
        raw = unb64url(headers[HEADER])
        signature = unb64url(headers[SIGNATURE])
        header = BatchHeader(**json.loads(raw))
    except (KeyError, ValueError, TypeError) as exc:
        raise BatchRejected("malformed", f"batch header unreadable: {exc}") from exc
    if header.canonical() != raw:
        raise BatchRejected("malformed", "batch header is not canonical")
    return header, signature


def verified_body(
    header: BatchHeader,
    signature: bytes,
    body: bytes,
    public_key: Ed25519PublicKey,
    *,
    destination: str,
) -> bytes:
    """Check signature, format, destination, hash and size; return the inflated JSON."""
    try:
        public_key.verify(signature, header.canonical())
    except InvalidSignature as exc:
        raise BatchRejected("bad_signature", "the batch signature does not verify") from exc
    if header.format != BATCH_FORMAT:
        raise BatchRejected("unknown_format", f"batch format {header.format} is unknown")
    if header.destination != destination:
        raise BatchRejected("wrong_destination", f"batch is for {header.destination}")
    if hashlib.sha256(body).hexdigest() != header.content_sha256:
        raise BatchRejected("altered", "the body does not match the signed hash")
    return inflate(body)


def verify_batch(
    header: BatchHeader,
    signature: bytes,
    body: bytes,
    public_key: Ed25519PublicKey,
    *,
    destination: str,
) -> list[OutboxRecord]:
    """Check signature, destination, hash, size and range; return the records in seq
    order, each row undecoded (``msgspec.Raw``)."""
    raw = verified_body(header, signature, body, public_key, destination=destination)
    try:
        tables = msgspec.json.decode(raw, type=dict[str, list[tuple[int, str, msgspec.Raw]]])
    except (ValueError, TypeError, msgspec.DecodeError) as exc:
        raise BatchRejected("malformed", f"the batch body is unreadable: {exc}") from exc
    check_range(header, ([seq for seq, _, _ in rows] for rows in tables.values()))
    records = [
        OutboxRecord(seq, record_type, record_id, row)
        for record_type, rows in tables.items()
        for seq, record_id, row in rows
    ]
    records.sort(key=lambda r: r.seq)
    return records


def check_range(header: BatchHeader, seqs_by_table: Iterable[list[int]]) -> None:
    """Each table's seqs increase, no seq appears twice, and together they are exactly
    ``count`` records spanning the signed ``seq_from``..``seq_to``."""
    seen: set[int] = set()
    total = 0
    for seqs in seqs_by_table:
        if seqs != sorted(seqs):  # strictly: a seq seen twice is refused below
            raise BatchRejected("malformed", "record seqs are not increasing")
        seen.update(seqs)
        total += len(seqs)
    if len(seen) != total:
        raise BatchRejected("malformed", "a seq appears twice in the batch")
    if not total or total != header.count:
        raise BatchRejected("truncated", "the record count does not match the header")
    if min(seen) != header.seq_from or max(seen) != header.seq_to:
        raise BatchRejected("truncated", "the records do not span the signed range")
    if header.seq_from <= header.after_seq:
        raise BatchRejected("malformed", "the batch starts before its own predecessor")
