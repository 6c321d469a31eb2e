"""`borderpost receipt verify` and `borderpost keys show`: check a scanned receipt offline,
and print this node's public key (and, for document checks, its receipt binding key)."""

from __future__ import annotations

import sys

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry.cli.helpers import emit, node_settings
from registry.receipts import (
    ReceiptInvalid,
    binding_key_from_text,
    binding_key_to_text,
    claims_view,
    document_matches,
    load_or_create_node_key,
    public_key_from_text,
    public_key_to_text,
    receipt_binding_key,
    verify_receipt,
)


@click.group()
def receipt() -> None:
    """QR receipts."""


@receipt.command("verify")
@click.argument("payload", required=False)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="NODE=PUBKEY",
    help="trust this node's public key (base64url); repeatable",
)
@click.option(
    "--binding-key",
    "binding_keys",
    multiple=True,
    metavar="NODE=KEY",
    help="this node's receipt binding key (base64url, from `keys show --binding-key`); repeatable",
)
@click.option(
    "--document",
    metavar="STATE:NUMBER",
    help="also check that the receipt was issued for this document (needs the binding key)",
)
def receipt_verify(
    payload: str | None,
    keys: tuple[str, ...],
    binding_keys: tuple[str, ...],
    document: str | None,
) -> None:
    """Verify a scanned receipt offline (payload as argument or on stdin)."""
    settings = node_settings()
    trusted: dict[str, Ed25519PublicKey] = {}
    binding: dict[str, bytes] = {}
    if settings.node_key_path.exists():
        own = load_or_create_node_key(settings.node_key_path)
        trusted[settings.node_code] = own.public_key()
        binding[settings.node_code] = receipt_binding_key(own)
    for item in keys:
        code, _, text = item.partition("=")
        trusted[code] = public_key_from_text(text)
    for item in binding_keys:
        code, _, text = item.partition("=")
        try:
            binding[code] = binding_key_from_text(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--binding-key") from exc
    text = (payload or sys.stdin.read()).strip()
    try:
        claims = verify_receipt(text, trusted)
    except ReceiptInvalid as exc:
        emit({"valid": False, "reason": exc.reason, "message": str(exc)})
        sys.exit(1)
    view = claims_view(claims)
    if document is not None:
        state, _, number = document.partition(":")
        key = binding.get(claims.node_code)
        if key is None:
            raise click.BadParameter(
                f"no binding key for {claims.node_code}", param_hint="--binding-key"
            )
        view["document_matches"] = document_matches(claims, state, number, key=key)
        if not view["document_matches"]:
            emit({**view, "valid": False, "reason": "document_mismatch"})
            sys.exit(1)
    emit(view)


@click.group()
def keys() -> None:
    """This node's Ed25519 key."""


@keys.command("show")
@click.option(
    "--binding-key",
    "with_binding_key",
    is_flag=True,
    help="also print the receipt binding key (a secret: give it only to receipt verifiers "
    "who must check the document)",
)
def keys_show(with_binding_key: bool) -> None:
    """Print this node's public key (created on first use, 0600)."""
    settings = node_settings()
    key = load_or_create_node_key(settings.node_key_path)
    shown = {"node_code": settings.node_code, "public_key": public_key_to_text(key.public_key())}
    if with_binding_key:
        shown["binding_key"] = binding_key_to_text(receipt_binding_key(key))
    emit(shown)
