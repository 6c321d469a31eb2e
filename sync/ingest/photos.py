"""Photo files a post pushes to national: the signature and hash checked, the file
decoded with the post's own safe decoder and stored by its sha256, or quarantined when it
is not the JPEG image a post stores."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from biometrics.imaging import ImageRejected, decode_image
from registry.node import Node
from registry.photos import SanitisedPhoto, write_photo
from registry.receipts import public_key_from_text
from sync.batches import BatchHeader, BatchRejected
from sync.ingest.validation import approved_sender
from sync.quarantine import PHOTO_FILE, Quarantined, keep, quarantined


@dataclass(frozen=True)
class PhotoOutcome:
    """A pushed photo file: stored (its sha256), or quarantined."""

    sha256: str
    quarantined: list[Quarantined] = field(default_factory=list)


async def ingest_photo(
    session: AsyncSession, *, node: Node, header: BatchHeader, signature: bytes, body: bytes
) -> PhotoOutcome:
    """Store a photo file pushed by a post after checking its signature and hash, and
    decoding it with the post's own safe decoder. A file that is not an image the decoder
    accepts is quarantined (never stored as a photo); the post's push moves past it."""
    peer = await approved_sender(session, header.origin)
    try:
        public_key_from_text(peer.public_key).verify(signature, header.canonical())
    except Exception as exc:  # noqa: BLE001 - any failure is a bad signature
        raise BatchRejected("bad_signature", "the photo signature does not verify") from exc
    sha = hashlib.sha256(body).hexdigest()
    if header.kind != "photo" or sha != header.content_sha256:
        raise BatchRejected("altered", "the photo does not match the signed hash")
    if header.destination != node.settings.node_code:
        raise BatchRejected("wrong_destination", f"photo is for {header.destination}")
    refusal = store_photo_file(node, sha, body)
    if refusal is None:
        return PhotoOutcome(sha)
    entry = quarantined(
        header.seq_to,
        PHOTO_FILE,
        sha,
        "not_an_image",
        refusal,
        base64.b64encode(body).decode(),
    )
    await keep(session, header.origin, [entry])
    return PhotoOutcome(sha, [entry])


def store_photo_file(node: Node, sha: str, body: bytes) -> str | None:
    """Decode a received photo file with the post's safe decoder and store it as received
    (its sha256 is its address); return why it was refused, or None once stored."""
    settings = node.settings
    try:
        decode_image(body, max_bytes=settings.max_photo_bytes, max_pixels=settings.max_photo_pixels)
    except ImageRejected as exc:
        return exc.message
    if not body.startswith(JPEG_MAGIC):  # posts store and push their photos as JPEG
        return "the photo is not the JPEG a post stores"
    write_photo(settings.photo_dir, SanitisedPhoto(sha, body, 0, 0))
    return None


JPEG_MAGIC = b"\xff\xd8\xff"
