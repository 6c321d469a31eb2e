"""What every `borderpost` command module shares, registry's and sync's (``sync.cli``): the
node's settings and the node built from them (a configuration error is a one-line click
error, not a traceback), running a coroutine to completion, and printing JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click

from registry.node import Node
from registry.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


def node_settings() -> Settings:
    """This node's settings (``BORDERPOST_*`` and the optional file)."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def build_node() -> Node:
    """This node, built from its settings."""
    try:
        return Node.build(load_settings())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's coroutine to completion on a new event loop."""
    return asyncio.run(work())


def run_on_node(node: Node, work: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine, then close the node's database connections."""

    async def wrapped() -> T:
        try:
            return await work()
        finally:
            await node.db.dispose()

    return asyncio.run(wrapped())


def emit(data: object) -> None:
    """Print a command's result as indented JSON (UTF-8 text kept as is)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
