"""`borderpost bootstrap` and `borderpost officer ...`: the first admin of a new node, and
officer accounts (create, set a password, deactivate, reactivate)."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

from registry.cli.helpers import build_node, emit, run_on_node
from registry.models import Officer
from registry.node import Node
from registry.officers.service import (
    BOOTSTRAP_USERNAME,
    create_officer,
    ensure_bootstrap_admin,
    officer_view,
    set_active,
    set_password,
)
from registry.problems import Problem
from registry.security import hash_password


@click.command()
def bootstrap() -> None:
    """Make sure an admin account exists; print how to log in."""
    node = build_node()
    settings = node.settings
    secret_file = settings.data_dir / "bootstrap-admin.txt"

    async def work() -> str | None:
        async with node.db.write_transaction() as session:
            return await ensure_bootstrap_admin(session, node=node)

    password = run_on_node(node, work)
    if password is not None:
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"username: {BOOTSTRAP_USERNAME}\npassword: {password}\n")
    click.echo(f"Log in at http://{settings.host}:{settings.port} as '{BOOTSTRAP_USERNAME}'.")
    if secret_file.exists():
        click.echo(f"The bootstrap password is in {secret_file} (delete it after first use).")


@click.group()
def officer() -> None:
    """Officer accounts."""


def _username(_: click.Context, __: click.Parameter, value: str) -> str:
    if not re.fullmatch(r"[a-z0-9._-]{3,64}", value):
        raise click.BadParameter("3-64 characters: lowercase letters, digits, . _ -")
    return value


def _new_password_hash(password: str) -> str:
    """Hash a new password (argon2) before the write transaction; a weak one stops here."""
    try:
        return hash_password(password)
    except ValueError as exc:
        raise click.ClickException(f"password: {exc}") from exc


def _refused(problem: Problem) -> click.ClickException:
    """A refused account change as one line naming the field."""
    return click.ClickException(f"{problem.invalid_params[0]['name']}: {problem.detail}")


@officer.command("add")
@click.option("--username", required=True, callback=_username)
@click.option("--full-name", required=True)
@click.option(
    "--role",
    required=True,
    type=click.Choice(["officer", "supervisor", "protection", "hq_analyst", "liaison", "admin"]),
)
@click.option("--post", "home_post", default=None, help="home post (default: this node)")
@click.option("--language", default="fr", type=click.Choice(["fr", "ar", "en"]))
@click.option(
    "--password",
    envvar="BORDERPOST_NEW_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="or set BORDERPOST_NEW_PASSWORD",
)
def officer_add(
    username: str, full_name: str, role: str, home_post: str | None, language: str, password: str
) -> None:
    """Create an officer account (password hashed with argon2)."""
    node = build_node()
    password_hash = _new_password_hash(password)  # before any transaction or event loop

    async def work() -> dict[str, Any]:
        async with node.db.write_transaction() as session:
            created = await create_officer(
                session,
                node=node,
                actor=None,
                username=username,
                full_name=full_name,
                role=role,
                password=password,
                home_post=home_post,
                language=language,
                password_hash=password_hash,
            )
            return officer_view(created)

    try:
        emit(run_on_node(node, work))
    except Problem as exc:
        raise _refused(exc) from exc


AccountChange = Callable[[AsyncSession, Node], Awaitable[Officer]]


def _account_change(change: AccountChange) -> None:
    """Run an account change in a write transaction and print the officer."""
    node = build_node()

    async def work() -> dict[str, Any]:
        async with node.db.write_transaction() as session:
            return officer_view(await change(session, node))

    try:
        emit(run_on_node(node, work))
    except Problem as exc:
        raise _refused(exc) from exc


@officer.command("passwd")
@click.argument("username")
@click.option(
    "--password",
    envvar="BORDERPOST_NEW_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="or set BORDERPOST_NEW_PASSWORD",
)
@click.option(
    "--force-change/--no-force-change",
    default=True,
    show_default=True,
    help="make the officer choose a new password at the next login, as after an "
    "administrator's reset on the web page; --no-force-change only for one's own account "
    "(e.g. the operator's initial setup)",
)
def officer_passwd(username: str, password: str, force_change: bool) -> None:
    """Set a new password (revokes the officer's tokens). The officer must choose another
    one at the next login unless --no-force-change is given."""
    password_hash = _new_password_hash(password)  # before any transaction or event loop
    _account_change(
        lambda session, node: set_password(
            session,
            node=node,
            actor=None,
            username=username,
            password=password,
            password_hash=password_hash,
            must_change=force_change,
        )
    )


@officer.command("deactivate")
@click.argument("username")
def officer_deactivate(username: str) -> None:
    """Disable an account at once (revokes its tokens)."""
    _account_change(
        lambda session, node: set_active(
            session, node=node, actor=None, username=username, active=False
        )
    )


@officer.command("activate")
@click.argument("username")
def officer_activate(username: str) -> None:
    """Re-enable a deactivated account."""
    _account_change(
        lambda session, node: set_active(
            session, node=node, actor=None, username=username, active=True
        )
    )
