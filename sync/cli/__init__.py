"""Sync's `borderpost` command groups (``registry.cli.main`` adds them to the command):
``nodes`` (enrolment), ``sync_commands`` (sync, quarantine, rules) and ``agreements``
(agreement, exchange, reconcile), all built on ``registry.cli.helpers``."""

from sync.cli.agreements import agreement_group, exchange_group, reconcile_command
from sync.cli.nodes import node_group
from sync.cli.sync_commands import rules_group, sync_group

__all__ = [
    "agreement_group",
    "exchange_group",
    "node_group",
    "reconcile_command",
    "rules_group",
    "sync_group",
]
