"""The `borderpost` command: serve, migrate, manage officers, check MRZ, verify receipts
and the audit chain, import watchlists, compare faces; and sync's node, sync, rules,
agreement, exchange and reconcile commands (``sync.cli``)."""

from __future__ import annotations

import click

from registry.cli.audit import audit
from registry.cli.faces import faces
from registry.cli.mrz import mrz
from registry.cli.officers import bootstrap, officer
from registry.cli.receipts import keys, receipt
from registry.cli.server import db, serve
from registry.cli.watchlist import watchlist
from sync.cli import (
    agreement_group,
    exchange_group,
    node_group,
    reconcile_command,
    rules_group,
    sync_group,
)


@click.group()
def main() -> None:
    """Borderpost: entry-exit registration for land border posts."""


for command in (
    serve,
    db,
    bootstrap,
    officer,
    mrz,
    receipt,
    keys,
    audit,
    watchlist,
    faces,
    agreement_group,
    exchange_group,
    reconcile_command,
    node_group,
    sync_group,
    rules_group,
):
    main.add_command(command)

if __name__ == "__main__":
    main()
