"""`borderpost audit ...`: verify an audit hash chain against its signed checkpoints, and
sign a checkpoint of this node's chain now."""

from __future__ import annotations

import sys

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry.audit_checkpoints import CheckpointRefused, checkpoint_if_due, checkpoint_view
from registry.audit_verification import ChainVerdict
from registry.cli.helpers import build_node, emit, node_settings, run, run_on_node
from registry.db import Database
from registry.receipts import NodeKeyError, load_or_create_node_key
from sync.peers import verify_node_chain  # a post's chain is checked under its enrolled key


@click.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--origin", default=None, help="whose chain (default: this node's own)")
def audit_verify(origin: str | None) -> None:
    """Check an audit hash chain against its signed checkpoints; name what is wrong.

    On national, ``--origin POST`` checks a post's chain as received, against the
    checkpoints that post sent (signatures checked with its enrolled key)."""
    settings = node_settings()
    own_key: Ed25519PublicKey | None = None
    if settings.node_key_path.exists():
        try:
            own_key = load_or_create_node_key(settings.node_key_path).public_key()
        except NodeKeyError as exc:
            raise click.ClickException(str(exc)) from exc
    database = Database(settings)

    async def work() -> ChainVerdict:
        try:
            async with database.session() as session:
                return await verify_node_chain(
                    session,
                    own_code=settings.node_code,
                    own_key=own_key,
                    origin=origin or settings.node_code,
                )
        finally:
            await database.dispose()

    verdict = run(work)
    emit(verdict.to_dict())
    sys.exit(0 if verdict.ok else 1)


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign a checkpoint of this node's audit chain now (a post sends it at its next sync).

    Refused, with exit 1, when the chain no longer holds what the latest checkpoint signed."""
    node = build_node()
    try:
        made = run_on_node(node, lambda: checkpoint_if_due(node, force=True))
    except CheckpointRefused as exc:
        emit({"checkpoint": None, "reason": exc.reason, "problem": str(exc)})
        sys.exit(1)
    emit({"checkpoint": checkpoint_view(made), "reason": None if made else "empty_chain"})
