"""Hostile input's tools: row counts before and after a refused request, and a
decompression bomb."""

from __future__ import annotations

import struct
import zlib

from sqlalchemy import func, select

from registry.models import AuditEvent, Crossing, OutboxEntry, Photo, TravelDocument, Traveller
from tests.support.nodes import NodeUnderTest

TABLES = (Crossing, Traveller, TravelDocument, Photo, OutboxEntry, AuditEvent)


async def snapshot(node: NodeUnderTest) -> dict[str, int]:
    async with node.db.session() as session:
        return {
            m.__tablename__: await session.scalar(select(func.count()).select_from(m))
            for m in TABLES
        }


def huge_png(width: int, height: int) -> bytes:
    """A tiny file that declares a huge image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(min(height, 2000)))
    body += compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
