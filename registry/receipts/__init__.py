"""The receipts slice: signed crossing receipts carried as QR codes.

``registry.receipts.signing`` signs and verifies receipts with no I/O beyond the node's key
file (re-exported here as the slice's public API); ``registry.receipts.controller`` serves
them (text, PNG, SVG, a printable slip) and verifies a scanned one.
"""

from registry.receipts.signing import (
    BASE45_ALPHABET,
    RECEIPT_VERSION,
    NodeKeyError,
    ReceiptClaims,
    ReceiptInvalid,
    base45_decode,
    base45_encode,
    binding_key_from_text,
    binding_key_to_text,
    claims_view,
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
