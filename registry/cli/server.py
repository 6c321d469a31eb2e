"""`borderpost serve` and `borderpost db ...`: serving the node's HTTP API, and its database
schema (migrations, the schema revision, re-keying traveller names)."""

from __future__ import annotations

import sys

import click

from registry.cli.helpers import emit, node_settings, run
from registry.db import Database, make_engine
from registry.migrate import current_revision, head_revision, upgrade_database
from registry.services.name_keys import RekeyReport, rekey_travellers


@click.command()
@click.option("--host", default=None, help="bind address (default BORDERPOST_HOST)")
@click.option("--port", default=None, type=int, help="port (default BORDERPOST_PORT)")
@click.option("--ssl-certfile", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--ssl-keyfile", default=None, type=click.Path(exists=True, dir_okay=False))
def serve(
    host: str | None, port: int | None, ssl_certfile: str | None, ssl_keyfile: str | None
) -> None:
    """Serve the node's HTTP API (refuses to start on an unmigrated database)."""
    # The web application (Litestar, every slice's routes, sync's services) and uvicorn are
    # loaded only to serve: every other command starts without them (about 0.6 s sooner).
    import uvicorn

    from registry.app import create_app

    settings = node_settings()
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


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all Alembic migrations."""
    settings = node_settings()

    async def work() -> str | None:
        engine = make_engine(settings)
        try:
            await upgrade_database(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    click.echo(f"database at revision {run(work)}")


@db.command("current")
def db_current() -> None:
    """Print the schema revision and whether it is the latest."""
    settings = node_settings()

    async def work() -> str | None:
        engine = make_engine(settings)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    current, head = run(work), head_revision()
    click.echo(f"current {current}, head {head}: {'up to date' if current == head else 'behind'}")
    sys.exit(0 if current == head else 1)


@db.command("rekey-names")
def db_rekey_names() -> None:
    """Bring stored traveller name keys up to the current name folding (look-alike letters,
    invisible characters, Arabic spelling variants); names in ASCII are left alone. Run it
    on every node after upgrading; prints how many travellers were read, checked, changed."""
    settings = node_settings()
    database = Database(settings)

    async def work() -> RekeyReport:
        try:
            async with database.write_transaction() as session:
                return await rekey_travellers(session, origin=settings.node_code)
        finally:
            await database.dispose()

    emit(run(work).as_dict())
