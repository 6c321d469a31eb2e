"""Compact Ed25519-signed crossing receipts, carried as QR codes (``BP1:`` + Base45).

Binary layout of a version-1 receipt (big-endian)::

    version      1 byte   (1)
    crossing id 16 bytes  (UUID)
    node code    1 byte length + ASCII, 1..32 chars (e.g. "MR-GOGUI")
    direction    1 byte   b"N" entry / b"X" exit
    occurred at  4 bytes  uint32 Unix seconds, UTC
    document     8 bytes  document binding: first 8 bytes of
                          HMAC-SHA256(binding key, f"{issuing_state}:{document_number}")
    signature   64 bytes  Ed25519 over every byte above

The bytes are Base45-encoded (RFC 9285) and prefixed with ``BP1:``; every character is in the QR
alphanumeric set, so the QR code is small (about 160 characters for an 8-character node code).
The receipt proves that the node holding the key recorded this crossing; it carries no name.

The document binding is keyed. An unkeyed hash of a document number is reversed by trying
every number (a 9-character passport number space fell in under a second), so anyone who
scanned a QR would learn the document number. The binding key (:func:`receipt_binding_key`,
32 bytes) is derived from the node's private signing key, so it needs no storage and changes
with the key; it is not derivable from the public key. Whoever holds only the public keys
checks the signature (who recorded what, when, in which direction) but learns nothing about
the document. A verifier that must also check that a receipt belongs to the passport in front
of it holds the node's binding key, given out by ``borderpost keys show --binding-key``
(a secret: its holder can test document numbers against receipts), and checks offline with
``borderpost receipt verify --binding-key NODE=KEY --document STATE:NUMBER`` or
:func:`document_matches`. The node's own CLI and API use their own key.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import stat
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import qrcode
import qrcode.constants
import qrcode.image.svg
import qrcode.util
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.base64url import b64url, unb64url
from registry.names import normalise_document_number

__all__ = [
    "BASE45_ALPHABET",
    "RECEIPT_VERSION",
    "NodeKeyError",
    "ReceiptClaims",
    "ReceiptInvalid",
    "base45_decode",
    "base45_encode",
    "binding_key_from_text",
    "binding_key_to_text",
    "claims_view",
    "document_hash",
    "document_matches",
    "load_or_create_node_key",
    "public_key_from_text",
    "public_key_to_text",
    "qr_png",
    "qr_svg",
    "receipt_binding_key",
    "receipt_qr_code",
    "sign_receipt",
    "verify_receipt",
]

RECEIPT_VERSION: Final = 1
SUPPORTED_VERSIONS: Final = frozenset({RECEIPT_VERSION})
PREFIX: Final = "BP"
MAX_NODE_CODE_LENGTH: Final = 32
DOCUMENT_HASH_LENGTH: Final = 8
BINDING_KEY_LENGTH: Final = 32
_BINDING_LABEL: Final = b"borderpost receipt document binding v1\n"
SIGNATURE_LENGTH: Final = 64

_DIRECTION_TO_BYTE: Final = {"entry": b"N", "exit": b"X"}
_BYTE_TO_DIRECTION: Final = {value: key for key, value in _DIRECTION_TO_BYTE.items()}
_NODE_CODE = re.compile(rf"[\x21-\x7e]{{1,{MAX_NODE_CODE_LENGTH}}}")
_PAYLOAD = re.compile(r"BP([0-9]):(.*)", re.DOTALL)
_TIME = struct.Struct(">I")

# ------------------------------------------------------------------------------------------
# Base45 (RFC 9285)
# ------------------------------------------------------------------------------------------
BASE45_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BASE45_VALUES: Final = {char: value for value, char in enumerate(BASE45_ALPHABET)}


def base45_encode(data: bytes) -> str:
    """Encode bytes as RFC 9285 Base45: each 2 bytes -> 3 chars, a trailing byte -> 2 chars."""
    chars: list[str] = []
    for start in range(0, len(data), 2):
        chunk = data[start : start + 2]
        value = int.from_bytes(chunk, "big")
        width = 3 if len(chunk) == 2 else 2
        for _ in range(width):
            value, digit = divmod(value, 45)
            chars.append(BASE45_ALPHABET[digit])
    return "".join(chars)


def base45_decode(text: str) -> bytes:
    """Decode RFC 9285 Base45; raise ValueError on bad characters, length or group values."""
    if len(text) % 3 == 1:
        raise ValueError("invalid Base45 length")
    out = bytearray()
    for start in range(0, len(text), 3):
        group = text[start : start + 3]
        try:
            digits = [_BASE45_VALUES[char] for char in group]
        except KeyError as exc:
            raise ValueError(f"invalid Base45 character {exc.args[0]!r}") from None
        value = sum(digit * 45**power for power, digit in enumerate(digits))
        size = 2 if len(group) == 3 else 1
        if value >= 256**size:
            raise ValueError("invalid Base45 group value")
        out += value.to_bytes(size, "big")
    return bytes(out)


# ------------------------------------------------------------------------------------------
# Claims
# ------------------------------------------------------------------------------------------
class ReceiptInvalid(ValueError):
    """A receipt that must not be trusted; ``reason`` is a stable machine code.

    Reasons: ``malformed``, ``unknown_version``, ``unknown_node``, ``bad_signature``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ReceiptClaims:
    """What a receipt asserts. ``occurred_at`` is normalised to UTC, whole seconds."""

    version: int
    crossing_id: uuid.UUID
    node_code: str
    direction: str
    occurred_at: datetime
    document_hash: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.version <= 9:
            raise ValueError("receipt version must be a single digit")
        if not _NODE_CODE.fullmatch(self.node_code):
            raise ValueError(
                f"node code must be 1..{MAX_NODE_CODE_LENGTH} printable ASCII chars, no spaces"
            )
        if self.direction not in _DIRECTION_TO_BYTE:
            raise ValueError("direction must be 'entry' or 'exit'")
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")
        occurred_at = self.occurred_at.astimezone(UTC).replace(microsecond=0)
        if not 0 <= occurred_at.timestamp() < 2**32:
            raise ValueError("occurred_at outside the uint32 Unix-seconds range")
        object.__setattr__(self, "occurred_at", occurred_at)
        if len(self.document_hash) != DOCUMENT_HASH_LENGTH:
            raise ValueError(f"document_hash must be {DOCUMENT_HASH_LENGTH} bytes")
        object.__setattr__(self, "document_hash", bytes(self.document_hash))


def receipt_binding_key(private_key: Ed25519PrivateKey) -> bytes:
    """The node's 32-byte document-binding key, derived from its private signing key."""
    raw = private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hmac.new(raw, _BINDING_LABEL, hashlib.sha256).digest()


def binding_key_to_text(key: bytes) -> str:
    """A binding key as unpadded base64url (43 characters)."""
    return b64url(key)


def binding_key_from_text(text: str) -> bytes:
    """Parse ``binding_key_to_text`` output; ValueError if it is not a 32-byte key."""
    cleaned = text.strip().rstrip("=")
    try:
        raw = unb64url(cleaned)
    except ValueError as exc:
        raise ValueError("binding key is not base64url") from exc
    if len(raw) != BINDING_KEY_LENGTH:
        raise ValueError(f"a receipt binding key is {BINDING_KEY_LENGTH} bytes")
    return raw


def document_hash(issuing_state: str, document_number: str, *, key: bytes) -> bytes:
    """The document binding: first 8 bytes of HMAC-SHA256 under the node's binding ``key``
    over ``"{STATE}:{NUMBER}"``, both normalised to A-Z0-9.

    The state is normalised like the number, so the MRZ filler in ``"D<<"`` is dropped.
    """
    if len(key) != BINDING_KEY_LENGTH:
        raise ValueError(f"a receipt binding key is {BINDING_KEY_LENGTH} bytes")
    state = normalise_document_number(issuing_state)
    number = normalise_document_number(document_number)
    if not state or not number:
        raise ValueError("issuing state and document number are required")
    message = f"{state}:{number}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).digest()[:DOCUMENT_HASH_LENGTH]


def document_matches(
    claims: ReceiptClaims, issuing_state: str, document_number: str, *, key: bytes
) -> bool:
    """Whether a verified receipt was issued for this document (needs the node's binding key)."""
    try:
        expected = document_hash(issuing_state, document_number, key=key)
    except ValueError:
        return False
    return hmac.compare_digest(expected, claims.document_hash)


# ------------------------------------------------------------------------------------------
# Signing and verification
# ------------------------------------------------------------------------------------------
def _claims_to_bytes(claims: ReceiptClaims) -> bytes:
    node = claims.node_code.encode("ascii")
    return b"".join(
        (
            bytes((claims.version,)),
            claims.crossing_id.bytes,
            bytes((len(node),)),
            node,
            _DIRECTION_TO_BYTE[claims.direction],
            _TIME.pack(int(claims.occurred_at.timestamp())),
            claims.document_hash,
        )
    )


def _claims_from_bytes(body: bytes) -> ReceiptClaims:
    """Parse the signed part of a receipt; raise ReceiptInvalid('malformed') on any defect."""
    fixed_after_node = 1 + _TIME.size + DOCUMENT_HASH_LENGTH
    if len(body) < 1 + 16 + 1 + 1 + fixed_after_node:
        raise ReceiptInvalid("malformed", "too short")
    node_length = body[17]
    node_end = 18 + node_length
    if len(body) != node_end + fixed_after_node:
        raise ReceiptInvalid("malformed", "length does not match node code length")
    direction = _BYTE_TO_DIRECTION.get(body[node_end : node_end + 1])
    if direction is None:
        raise ReceiptInvalid("malformed", "unknown direction")
    (seconds,) = _TIME.unpack_from(body, node_end + 1)
    try:
        return ReceiptClaims(
            version=body[0],
            crossing_id=uuid.UUID(bytes=body[1:17]),
            node_code=body[18:node_end].decode("ascii"),
            direction=direction,
            occurred_at=datetime.fromtimestamp(seconds, UTC),
            document_hash=body[node_end + 1 + _TIME.size :],
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReceiptInvalid("malformed", str(exc)) from None


def sign_receipt(claims: ReceiptClaims, private_key: Ed25519PrivateKey) -> str:
    """Sign ``claims`` and return the QR text, e.g. ``"BP1:..."`` (under 200 characters)."""
    if claims.version not in SUPPORTED_VERSIONS:
        raise ValueError(f"cannot sign receipt version {claims.version}")
    body = _claims_to_bytes(claims)
    return f"{PREFIX}{claims.version}:{base45_encode(body + private_key.sign(body))}"


def verify_receipt(payload: str, public_keys: Mapping[str, Ed25519PublicKey]) -> ReceiptClaims:
    """Return the claims of an authentic receipt, else raise ``ReceiptInvalid``.

    ``public_keys`` maps node codes to their public keys; the node code inside the receipt
    selects the key. Surrounding whitespace (scanner noise) is ignored: Base45 text can contain
    spaces but never ends with one (a last group is at most "5" or "W").
    """
    match = _PAYLOAD.fullmatch(payload.strip())
    if match is None:
        raise ReceiptInvalid("malformed", "not a Borderpost receipt")
    version = int(match.group(1))
    if version not in SUPPORTED_VERSIONS:
        raise ReceiptInvalid("unknown_version", f"version {version}")
    try:
        raw = base45_decode(match.group(2))
    except ValueError as exc:
        raise ReceiptInvalid("malformed", str(exc)) from None
    body, signature = raw[:-SIGNATURE_LENGTH], raw[-SIGNATURE_LENGTH:]
    claims = _claims_from_bytes(body)
    if claims.version != version:
        raise ReceiptInvalid("malformed", "version byte does not match prefix")
    public_key = public_keys.get(claims.node_code)
    if public_key is None:
        raise ReceiptInvalid("unknown_node", claims.node_code)
    try:
        public_key.verify(signature, body)
    except InvalidSignature:
        raise ReceiptInvalid("bad_signature") from None
    return claims


def claims_view(claims: ReceiptClaims) -> dict[str, object]:
    """The verified claims as the API and ``borderpost receipt verify`` show them."""
    return {
        "valid": True,
        "version": claims.version,
        "crossing_id": str(claims.crossing_id),
        "node_code": claims.node_code,
        "direction": claims.direction,
        "occurred_at": claims.occurred_at.isoformat(),
        "document_hash": claims.document_hash.hex(),
    }


# ------------------------------------------------------------------------------------------
# QR rendering
# ------------------------------------------------------------------------------------------
def receipt_qr_code(payload: str, box_size: int = 6) -> qrcode.QRCode:
    """A QR code (error correction Q) holding ``payload`` as one alphanumeric-mode segment."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=box_size)
    code.add_data(qrcode.util.QRData(payload, mode=qrcode.util.MODE_ALPHA_NUM))
    code.make(fit=True)
    return code


def qr_png(payload: str, box_size: int = 6) -> bytes:
    """PNG bytes of the receipt QR code."""
    buffer = io.BytesIO()
    receipt_qr_code(payload, box_size).make_image().save(buffer)
    return buffer.getvalue()


def qr_svg(payload: str) -> str:
    """Standalone SVG (single path) of the receipt QR code."""
    image = receipt_qr_code(payload).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")


# ------------------------------------------------------------------------------------------
# Node signing keys
# ------------------------------------------------------------------------------------------
class NodeKeyError(RuntimeError):
    """The node key file is unusable (loose permissions, wrong type or corrupt)."""


def _read_node_key(path: Path) -> Ed25519PrivateKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise NodeKeyError(
            f"node key {path} has permissions {mode:04o}; it must be readable by its owner "
            f"only (chmod 600 {path})"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise NodeKeyError(f"node key {path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise NodeKeyError(f"node key {path} is not an Ed25519 key")
    return key


def load_or_create_node_key(path: Path) -> Ed25519PrivateKey:
    """Load this node's Ed25519 signing key, generating it (PEM PKCS8, mode 0600) if absent.

    The file is created with ``O_EXCL`` and mode 0600 so it is never readable by others, not
    even briefly. An existing file with looser permissions is refused (``NodeKeyError``)
    rather than silently fixed: it may already have leaked.
    """
    path = Path(path)
    if path.exists():
        return _read_node_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it meanwhile: use theirs
        return _read_node_key(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def public_key_to_text(public_key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key as unpadded base64url (43 characters)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64url(raw)


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Parse ``public_key_to_text`` output (padding optional); ValueError if it is not a key."""
    cleaned = text.strip().rstrip("=")
    try:
        raw = unb64url(cleaned)
    except ValueError as exc:
        raise ValueError("public key is not base64url") from exc
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)
