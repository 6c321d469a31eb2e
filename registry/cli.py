"""The `borderpost` command: serve, migrate, manage officers, check MRZ, verify receipts
and the audit chain."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from registry.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(work: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(work())  # type: ignore[arg-type]


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group()
def main() -> None:
    """Borderpost: entry-exit registration for land border posts."""


@main.command()
@click.option("--host", default=None, help="bind address (default BORDERPOST_HOST)")
@click.option("--port", default=None, type=int, help="port (default BORDERPOST_PORT)")
@click.option("--ssl-certfile", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--ssl-keyfile", default=None, type=click.Path(exists=True, dir_okay=False))
def serve(
    host: str | None, port: int | None, ssl_certfile: str | None, ssl_keyfile: str | None
) -> None:
    """Serve the node's HTTP API (refuses to start on an unmigrated database)."""
    import uvicorn

    from registry.app import create_app

    settings = _settings()
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level="info",
        timeout_graceful_shutdown=5,
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all Alembic migrations."""
    from registry.db import make_engine
    from registry.migrate import current_revision, upgrade_database

    settings = _settings()

    async def work() -> str | None:
        engine = make_engine(settings)
        try:
            await upgrade_database(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    click.echo(f"database at revision {_run(work)}")


@db.command("current")
def db_current() -> None:
    """Print the schema revision and whether it is the latest."""
    from registry.db import make_engine
    from registry.migrate import current_revision, head_revision

    settings = _settings()

    async def work() -> str | None:
        engine = make_engine(settings)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    current, head = _run(work), head_revision()
    click.echo(f"current {current}, head {head}: {'up to date' if current == head else 'behind'}")
    sys.exit(0 if current == head else 1)


@db.command("rekey-names")
def db_rekey_names() -> None:
    """Bring stored traveller name keys up to the current name folding (look-alike letters,
    invisible characters, Arabic spelling variants); names in ASCII are left alone. Run it
    on every node after upgrading; prints how many travellers were read, checked, changed."""
    from registry.db import Database
    from registry.services.name_keys import rekey_travellers

    settings = _settings()
    database = Database(settings)

    async def work() -> Any:
        try:
            async with database.write_transaction() as session:
                return await rekey_travellers(session, origin=settings.node_code)
        finally:
            await database.dispose()

    _emit(_run(work).as_dict())


@main.command()
def bootstrap() -> None:
    """Make sure an admin account exists; print how to log in."""
    from registry.node import Node
    from registry.services.officers import BOOTSTRAP_USERNAME, ensure_bootstrap_admin

    settings = _settings()
    node = Node.build(settings)
    secret_file = settings.data_dir / "bootstrap-admin.txt"

    async def work() -> str | None:
        try:
            async with node.db.write_transaction() as session:
                return await ensure_bootstrap_admin(session, node=node)
        finally:
            await node.db.dispose()

    password = _run(work)
    if password is not None:
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"username: {BOOTSTRAP_USERNAME}\npassword: {password}\n")
    click.echo(f"Log in at http://{settings.host}:{settings.port} as '{BOOTSTRAP_USERNAME}'.")
    if secret_file.exists():
        click.echo(f"The bootstrap password is in {secret_file} (delete it after first use).")


@main.group()
def officer() -> None:
    """Officer accounts."""


def _username(_: click.Context, __: click.Parameter, value: str) -> str:
    import re

    if not re.fullmatch(r"[a-z0-9._-]{3,64}", value):
        raise click.BadParameter("3-64 characters: lowercase letters, digits, . _ -")
    return value


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
    from registry.node import Node
    from registry.problems import Problem
    from registry.services.officers import create_officer, officer_view

    node = Node.build(_settings())
    password_hash = _new_password_hash(password)  # before any transaction or event loop

    async def work() -> dict[str, Any]:
        try:
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
        finally:
            await node.db.dispose()

    try:
        _emit(_run(work))
    except Problem as exc:
        raise click.ClickException(f"{exc.invalid_params[0]['name']}: {exc.detail}") from exc


def _new_password_hash(password: str) -> str:
    """Hash a new password (argon2) before the write transaction; a weak one stops here."""
    from registry.security import hash_password

    try:
        return hash_password(password)
    except ValueError as exc:
        raise click.ClickException(f"password: {exc}") from exc


def _account_change(work: Callable[[Any], Awaitable[Any]]) -> None:
    """Run an account change in a write transaction and print the officer."""
    from registry.node import Node
    from registry.problems import Problem
    from registry.services.officers import officer_view

    node = Node.build(_settings())

    async def run() -> dict[str, Any]:
        try:
            async with node.db.write_transaction() as session:
                return officer_view(await work((session, node)))
        finally:
            await node.db.dispose()

    try:
        _emit(_run(run))
    except Problem as exc:
        raise click.ClickException(f"{exc.invalid_params[0]['name']}: {exc.detail}") from exc


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
def officer_passwd(username: str, password: str) -> None:
    """Set a new password (revokes the officer's tokens)."""
    from registry.services.officers import set_password

    password_hash = _new_password_hash(password)  # before any transaction or event loop
    _account_change(
        lambda ctx: set_password(
            ctx[0],
            node=ctx[1],
            actor=None,
            username=username,
            password=password,
            password_hash=password_hash,
        )
    )


@officer.command("deactivate")
@click.argument("username")
def officer_deactivate(username: str) -> None:
    """Disable an account at once (revokes its tokens)."""
    from registry.services.officers import set_active

    _account_change(
        lambda ctx: set_active(ctx[0], node=ctx[1], actor=None, username=username, active=False)
    )


@officer.command("activate")
@click.argument("username")
def officer_activate(username: str) -> None:
    """Re-enable a deactivated account."""
    from registry.services.officers import set_active

    _account_change(
        lambda ctx: set_active(ctx[0], node=ctx[1], actor=None, username=username, active=True)
    )


@main.group()
def mrz() -> None:
    """Machine-readable zones."""


@mrz.command("check")
def mrz_check() -> None:
    """Read MRZ lines on stdin, print JSON; exit 0 only when every check passes."""
    from registry.mrz import parse_mrz

    result = parse_mrz(sys.stdin.read())
    _emit(result.to_dict())
    sys.exit(0 if result.valid else 1)


@main.group()
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
    help="this node's receipt binding key (base64url, from `keys show --binding-key`); "
    "repeatable",
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
    from registry.receipts import (
        ReceiptInvalid,
        binding_key_from_text,
        document_matches,
        load_or_create_node_key,
        public_key_from_text,
        receipt_binding_key,
        verify_receipt,
    )

    settings = _settings()
    trusted = {}
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
        _emit({"valid": False, "reason": exc.reason, "message": str(exc)})
        sys.exit(1)
    from registry.api.receipts import claims_view

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
            _emit({**view, "valid": False, "reason": "document_mismatch"})
            sys.exit(1)
    _emit(view)


@main.group()
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
    from registry.receipts import (
        binding_key_to_text,
        load_or_create_node_key,
        public_key_to_text,
        receipt_binding_key,
    )

    settings = _settings()
    key = load_or_create_node_key(settings.node_key_path)
    shown = {"node_code": settings.node_code, "public_key": public_key_to_text(key.public_key())}
    if with_binding_key:
        shown["binding_key"] = binding_key_to_text(receipt_binding_key(key))
    _emit(shown)


@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option("--origin", default=None, help="whose chain (default: this node's own)")
def audit_verify(origin: str | None) -> None:
    """Check an audit hash chain against its signed checkpoints; name what is wrong.

    On national, ``--origin POST`` checks a post's chain as received, against the
    checkpoints that post sent (signatures checked with its enrolled key)."""
    from registry.audit import verify_node_chain
    from registry.db import Database
    from registry.receipts import NodeKeyError, load_or_create_node_key

    settings = _settings()
    own_key = None
    if settings.node_key_path.exists():
        try:
            own_key = load_or_create_node_key(settings.node_key_path).public_key()
        except NodeKeyError as exc:
            raise click.ClickException(str(exc)) from exc
    database = Database(settings)

    async def work() -> Any:
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

    verdict = _run(work)
    _emit(verdict.to_dict())
    sys.exit(0 if verdict.ok else 1)


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign a checkpoint of this node's audit chain now (a post sends it at its next sync).

    Refused, with exit 1, when the chain no longer holds what the latest checkpoint signed."""
    from registry.audit import CheckpointRefused, checkpoint_if_due, checkpoint_view
    from registry.node import Node

    node = Node.build(_settings())

    async def work() -> Any:
        try:
            return await checkpoint_if_due(node, force=True)
        finally:
            await node.db.dispose()

    try:
        made = _run(work)
    except CheckpointRefused as exc:
        _emit({"checkpoint": None, "reason": exc.reason, "problem": str(exc)})
        sys.exit(1)
    _emit({"checkpoint": checkpoint_view(made), "reason": None if made else "empty_chain"})


def _register_subcommands() -> None:
    from registry.cli_faces import faces
    from registry.watchlists.cli import watchlist
    from sync.cli import (
        agreement_group,
        exchange_group,
        node_group,
        reconcile_command,
        rules_group,
        sync_group,
    )

    main.add_command(watchlist)
    main.add_command(faces)
    main.add_command(agreement_group)
    main.add_command(exchange_group)
    main.add_command(reconcile_command)
    main.add_command(node_group)
    main.add_command(sync_group)
    main.add_command(rules_group)


_register_subcommands()

if __name__ == "__main__":
    main()
