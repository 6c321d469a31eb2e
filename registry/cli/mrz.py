"""`borderpost mrz check`: read a machine-readable zone and report every check as JSON."""

from __future__ import annotations

import sys

import click

from registry.cli.helpers import emit
from registry.mrz import parse_mrz


@click.group()
def mrz() -> None:
    """Machine-readable zones."""


@mrz.command("check")
def mrz_check() -> None:
    """Read MRZ lines on stdin, print JSON; exit 0 only when every check passes."""
    result = parse_mrz(sys.stdin.read())
    emit(result.to_dict())
    sys.exit(0 if result.valid else 1)
