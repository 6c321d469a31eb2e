"""Signed QR crossing receipts: Base45, signing/verification, QR rendering and node keys."""

from __future__ import annotations

import io
import os
import stat
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import qrcode.util
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from registry.receipts import (
    BASE45_ALPHABET,
    NodeKeyError,
    ReceiptClaims,
    ReceiptInvalid,
    base45_decode,
    base45_encode,
    binding_key_from_text,
    binding_key_to_text,
    document_hash,
    document_matches,
    load_or_create_node_key,
    public_key_from_text,
    public_key_to_text,
    qr_png,
    qr_svg,
    receipt_binding_key,
    receipt_qr_code,
    sign_receipt,
    verify_receipt,
)

NODE = "MR-GOGUI"
KEY = Ed25519PrivateKey.generate()
KEYS = {NODE: KEY.public_key()}
BINDING = receipt_binding_key(KEY)


def make_claims(**overrides: object) -> ReceiptClaims:
    fields: dict[str, object] = {
        "version": 1,
        "crossing_id": uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
        "node_code": NODE,
        "direction": "entry",
        "occurred_at": datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC),
        "document_hash": document_hash("MRT", "A1234567", key=BINDING),
    }
    fields.update(overrides)
    return ReceiptClaims(**fields)  # type: ignore[arg-type]


def split_payload(payload: str) -> tuple[str, bytes]:
    prefix, _, encoded = payload.partition(":")
    return prefix + ":", base45_decode(encoded)


# --- Base45 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"AB", "BB8"),
        (b"Hello!!", "%69 VD92EX0"),
        (b"base-45", "UJCLQE7W581"),
        (b"ietf!", "QED8WEX0"),
        (b"", ""),
    ],
)
def test_base45_rfc9285_vectors(raw: bytes, encoded: str) -> None:
    assert base45_encode(raw) == encoded
    assert base45_decode(encoded) == raw


@pytest.mark.parametrize(
    "bad",
    ["GGW", "::::", "A", "BB8A", "bb8", "BB#", "ZZ", "BB8\n"],
)
def test_base45_decode_rejects_invalid_input(bad: str) -> None:
    # GGW = 65536 (> 65535); ":::" = 91124; "ZZ" = 1610 (> 255); length 1 mod 3; bad chars
    with pytest.raises(ValueError):
        base45_decode(bad)


@given(st.binary(max_size=300))
def test_base45_round_trip(data: bytes) -> None:
    encoded = base45_encode(data)
    assert set(encoded) <= set(BASE45_ALPHABET)
    assert base45_decode(encoded) == data


# --- Claims and signing ---------------------------------------------------------------------


def test_round_trip_and_size() -> None:
    claims = make_claims()
    payload = sign_receipt(claims, KEY)
    assert payload.startswith("BP1:")
    assert len(payload) < 200
    assert len(split_payload(payload)[1]) == 1 + 16 + 1 + len(NODE) + 1 + 4 + 8 + 64
    assert verify_receipt(payload, KEYS) == claims


def test_longest_node_code_still_fits() -> None:
    node = "X" * 32
    key = Ed25519PrivateKey.generate()
    payload = sign_receipt(make_claims(node_code=node, direction="exit"), key)
    assert len(payload) < 200
    assert verify_receipt(payload, {node: key.public_key()}).direction == "exit"


def test_payload_uses_qr_alphanumeric_mode() -> None:
    payload = sign_receipt(make_claims(), KEY)
    assert qrcode.util.QRData(payload).mode == qrcode.util.MODE_ALPHA_NUM
    code = receipt_qr_code(payload)
    assert [segment.mode for segment in code.data_list] == [qrcode.util.MODE_ALPHA_NUM]
    assert code.error_correction == qrcode.constants.ERROR_CORRECT_Q


def test_claims_are_normalised_to_utc_seconds() -> None:
    local = datetime(2025, 3, 14, 10, 26, 53, 987654, tzinfo=timezone(timedelta(hours=1)))
    claims = make_claims(occurred_at=local)
    assert claims.occurred_at == datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    assert claims.occurred_at.tzinfo is UTC


@pytest.mark.parametrize(
    "overrides",
    [
        {"direction": "in"},
        {"node_code": ""},
        {"node_code": "MR GOGUI"},
        {"node_code": "N" * 33},
        {"node_code": "MR-GOGUÏ"},
        {"occurred_at": datetime(2025, 1, 1)},
        {"occurred_at": datetime(1969, 12, 31, tzinfo=UTC)},
        {"document_hash": b"short"},
        {"version": 10},
    ],
)
def test_invalid_claims_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_claims(**overrides)


def test_signing_an_unsupported_version_fails() -> None:
    with pytest.raises(ValueError):
        sign_receipt(make_claims(version=2), KEY)


def test_document_hash_normalises_inputs() -> None:
    expected = document_hash("MRT", "A1234567", key=BINDING)
    assert len(expected) == 8
    assert document_hash(" mrt ", "a12-345 67", key=BINDING) == expected
    assert document_hash("MRT", "A1234568", key=BINDING) != expected
    assert document_hash("MLI", "A1234567", key=BINDING) != expected
    assert document_hash("D<<", "C01X00T47", key=BINDING) == document_hash(
        "D", "C01X00T47", key=BINDING
    )
    with pytest.raises(ValueError):
        document_hash("MRT", " - ", key=BINDING)
    with pytest.raises(ValueError):
        document_hash("MRT", "A1234567", key=b"short")


# --- Keyed document binding -------------------------------------------------------------------


def _unkeyed_guess(state: str, number: str) -> bytes:
    """What the binding was before it was keyed: the attack below used to succeed with it."""
    import hashlib

    return hashlib.sha256(f"{state}:{number}".encode()).digest()[:8]


def test_public_keys_alone_cannot_brute_force_the_document_number() -> None:
    """An attacker scans a QR, holds every public key, and tries every document number of a
    small space (here 100,000 numbers around the real one) with the unkeyed hash and with
    every key derivable from public material: none of them finds the number."""
    number = "A1234567"
    payload = sign_receipt(make_claims(), KEY)
    claims = verify_receipt(payload, KEYS)  # the public key verifies the signature
    public_raw = KEY.public_key().public_bytes_raw()
    public_guesses = [public_raw, bytes(32), receipt_binding_key(Ed25519PrivateKey.generate())]
    found = []
    for n in range(1_184_567, 1_284_567):
        candidate = f"A{n:07d}"
        if _unkeyed_guess("MRT", candidate) == claims.document_hash:
            found.append(candidate)
        for guess in public_guesses:
            if document_hash("MRT", candidate, key=guess) == claims.document_hash:
                found.append(candidate)
    assert number[1:].isdigit() and 1_184_567 <= int(number[1:]) < 1_284_567  # in the space
    assert found == []


def test_verifier_with_the_binding_key_checks_the_document_offline() -> None:
    claims = verify_receipt(sign_receipt(make_claims(), KEY), KEYS)
    key = binding_key_from_text(binding_key_to_text(BINDING))
    assert key == BINDING and len(binding_key_to_text(BINDING)) == 43
    assert document_matches(claims, "MRT", "A1234567", key=key)
    assert document_matches(claims, "mrt", "a1234567", key=key)
    assert not document_matches(claims, "MRT", "A1234568", key=key)
    assert not document_matches(claims, "MRT", "", key=key)
    other_node = receipt_binding_key(Ed25519PrivateKey.generate())
    assert not document_matches(claims, "MRT", "A1234567", key=other_node)
    assert receipt_binding_key(KEY) == BINDING  # stable: derived, never stored
    with pytest.raises(ValueError):
        binding_key_from_text("too-short")


# --- Tampering ------------------------------------------------------------------------------


def test_every_flipped_byte_is_rejected() -> None:
    prefix, raw = split_payload(sign_receipt(make_claims(), KEY))
    for position in range(len(raw)):
        for mask in (0x01, 0x80, 0xFF):
            altered = bytearray(raw)
            altered[position] ^= mask
            with pytest.raises(ReceiptInvalid):
                verify_receipt(prefix + base45_encode(bytes(altered)), KEYS)


def test_every_altered_base45_character_is_rejected() -> None:
    payload = sign_receipt(make_claims(), KEY)
    start = len("BP1:")
    for position in range(start, len(payload)):
        original = payload[position]
        replacement = BASE45_ALPHABET[(BASE45_ALPHABET.index(original) + 7) % 45]
        altered = payload[:position] + replacement + payload[position + 1 :]
        with pytest.raises(ReceiptInvalid):
            verify_receipt(altered, KEYS)


def test_truncated_or_extended_payloads_are_rejected() -> None:
    prefix, raw = split_payload(sign_receipt(make_claims(), KEY))
    for altered in (raw[:-1], raw + b"\x00", raw[:40], b""):
        with pytest.raises(ReceiptInvalid) as caught:
            verify_receipt(prefix + base45_encode(altered), KEYS)
        assert caught.value.reason in {"malformed", "bad_signature"}


def test_wrong_key_is_a_bad_signature() -> None:
    payload = sign_receipt(make_claims(), Ed25519PrivateKey.generate())
    with pytest.raises(ReceiptInvalid) as caught:
        verify_receipt(payload, KEYS)
    assert caught.value.reason == "bad_signature"


def test_forged_node_code_is_a_bad_signature() -> None:
    other_key = Ed25519PrivateKey.generate()
    payload = sign_receipt(make_claims(node_code="ML-GOGUI"), other_key)
    _, raw = split_payload(payload)
    forged = raw.replace(b"ML-GOGUI", NODE.encode())
    with pytest.raises(ReceiptInvalid) as caught:
        verify_receipt("BP1:" + base45_encode(forged), KEYS)
    assert caught.value.reason == "bad_signature"


def test_unknown_node() -> None:
    payload = sign_receipt(make_claims(node_code="ML-NIORO"), KEY)
    with pytest.raises(ReceiptInvalid) as caught:
        verify_receipt(payload, KEYS)
    assert caught.value.reason == "unknown_node"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("", "malformed"),
        ("hello", "malformed"),
        ("bp1:BB8", "malformed"),
        ("BP1:", "malformed"),
        ("BP1:GGW", "malformed"),
        ("BP2:BB8", "unknown_version"),
        ("BP9:anything", "unknown_version"),
    ],
)
def test_malformed_payloads(payload: str, reason: str) -> None:
    with pytest.raises(ReceiptInvalid) as caught:
        verify_receipt(payload, KEYS)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def test_receipt_relabelled_to_unknown_version_is_refused() -> None:
    payload = sign_receipt(make_claims(), KEY)
    with pytest.raises(ReceiptInvalid) as caught:
        verify_receipt("BP2" + payload[3:], KEYS)
    assert caught.value.reason == "unknown_version"


def test_scanner_whitespace_is_tolerated() -> None:
    claims = make_claims()
    payload = sign_receipt(claims, KEY)
    assert verify_receipt(f"  {payload}\r\n", KEYS) == claims


@given(st.binary(min_size=1, max_size=200))
def test_base45_never_ends_with_whitespace(data: bytes) -> None:
    # the text follows "BP1:", so stripping whitespace around a receipt can never damage it
    encoded = base45_encode(data)
    assert encoded == encoded.rstrip()


@settings(max_examples=50, deadline=None)
@given(
    crossing_id=st.uuids(),
    node_code=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=32
    ),
    direction=st.sampled_from(["entry", "exit"]),
    occurred_at=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2106, 2, 7), timezones=st.just(UTC)
    ),
    doc_hash=st.binary(min_size=8, max_size=8),
)
def test_round_trip_property(
    crossing_id: uuid.UUID, node_code: str, direction: str, occurred_at: datetime, doc_hash: bytes
) -> None:
    claims = ReceiptClaims(1, crossing_id, node_code, direction, occurred_at, doc_hash)
    payload = sign_receipt(claims, KEY)
    assert len(payload) < 200
    assert qrcode.util.QRData(payload).mode == qrcode.util.MODE_ALPHA_NUM
    assert verify_receipt(payload, {node_code: KEY.public_key()}) == claims


# --- QR rendering ---------------------------------------------------------------------------


def test_qr_png_decodes_back_to_a_valid_receipt() -> None:
    claims = make_claims()
    payload = sign_receipt(claims, KEY)
    png = qr_png(payload)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    results = zxingcpp.read_barcodes(image)
    assert [result.text for result in results] == [payload]
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    assert verify_receipt(results[0].text, KEYS) == claims


def test_qr_png_box_size_scales_image() -> None:
    payload = sign_receipt(make_claims(), KEY)
    small = Image.open(io.BytesIO(qr_png(payload, box_size=2)))
    large = Image.open(io.BytesIO(qr_png(payload, box_size=8)))
    assert large.size[0] == 4 * small.size[0]


def test_qr_svg_is_standalone_svg() -> None:
    svg = qr_svg(sign_receipt(make_claims(), KEY))
    assert svg.startswith("<svg")
    assert "<path" in svg
    assert svg.rstrip().endswith("</svg>")


# --- Node keys ------------------------------------------------------------------------------


def test_node_key_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "node.pem"
    key = load_or_create_node_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create_node_key(path)
    assert public_key_to_text(again.public_key()) == public_key_to_text(key.public_key())
    payload = sign_receipt(make_claims(), again)
    assert verify_receipt(payload, {NODE: key.public_key()}).node_code == NODE


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660])
def test_node_key_with_loose_permissions_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.pem"
    load_or_create_node_key(path)
    os.chmod(path, mode)
    with pytest.raises(NodeKeyError, match="chmod 600"):
        load_or_create_node_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == mode  # nothing silently "fixed"


def test_node_key_file_must_hold_an_ed25519_key(tmp_path: Path) -> None:
    path = tmp_path / "node.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(NodeKeyError):
        load_or_create_node_key(path)


def test_public_key_text_round_trip() -> None:
    text = public_key_to_text(KEY.public_key())
    assert len(text) == 43
    assert "=" not in text
    parsed = public_key_from_text(f" {text}=\n")
    assert public_key_to_text(parsed) == text
    payload = sign_receipt(make_claims(), KEY)
    assert verify_receipt(payload, {NODE: parsed}).node_code == NODE


@pytest.mark.parametrize("bad", ["", "abc", "A" * 44, "!" * 43, "é" * 43])
def test_public_key_from_text_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        public_key_from_text(bad)
