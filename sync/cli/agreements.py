"""`borderpost agreement ...`, `borderpost exchange ...` and `borderpost reconcile`: the
data-sharing agreement (check, keys, revocation, backfill), the exchange with the partner
and reconciliation reports (national nodes only)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from registry.cli.helpers import build_node, emit, run_on_node
from registry.node import Node
from registry.problems import Problem


@click.group("agreement")
def agreement_group() -> None:
    """The data-sharing agreement with the partner country."""


@agreement_group.command("check")
@click.argument("agreement_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="this node's blinding key for the agreement, to confirm it is readable",
)
@click.option(
    "--development-urls",
    is_flag=True,
    help="development only: accept http:// and example hosts as the parties' URLs "
    "(as BORDERPOST_AGREEMENT_DEVELOPMENT_URLS does on a node)",
)
def agreement_check(agreement_file: Path, key_file: Path | None, development_urls: bool) -> None:
    """Validate an agreement and print what it would share, field by field. Exit 0 only
    when exchange under it is allowed today. On a national node (its settings readable), a
    revocation of the version recorded there (by either party) is shown and stops it."""
    from datetime import date

    from sync.exchange.model import AgreementError
    from sync.exchange.pseudonyms import read_blinding_key
    from sync.exchange.report import check_report

    revocations, development = _recorded_revocations()
    try:
        key = read_blinding_key(key_file) if key_file else None
        report = check_report(
            agreement_file,
            today=date.today(),
            key_available=key is not None,
            key=key,
            revocations=revocations,
            development_urls=development_urls or development,
        )
    except (AgreementError, ValueError) as exc:
        emit({"valid": False, "error": str(exc)})
        sys.exit(1)
    emit(report)
    if report.get("revoked"):
        click.echo(f"REVOKED {report['revoked']}", err=True)
    sys.exit(0 if report.get("exchange_allowed") else 1)


@agreement_group.command("new-key")
@click.argument("key_file", type=click.Path(dir_okay=False, path_type=Path))
def agreement_new_key(key_file: Path) -> None:
    """Create this node's own secret blinding key for an agreement (mode 0600; it never
    leaves the node and is never shared with the partner). Refuses to overwrite a file."""
    from sync.exchange.pseudonyms import write_blinding_key

    try:
        key = write_blinding_key(key_file)
    except FileExistsError:
        raise click.ClickException(f"{key_file} exists: a key is never overwritten") from None
    emit({"file": str(key_file), "fingerprint": key.fingerprint})


def _recorded_revocations() -> tuple[dict[tuple[str, int], str], bool]:
    """The revocations a national node holds (and its development flag), when this command
    runs with a national node's settings; nothing otherwise (the check reads a file)."""
    from registry.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except (SettingsError, ValueError, OSError):
        return {}, False
    if settings.role != "national":
        return {}, settings.agreement_development_urls
    from sqlalchemy import select

    from sync.exchange.service import revocation_text
    from sync.models import AgreementRevocation

    node = build_node()

    async def work() -> dict[tuple[str, int], str]:
        async with node.db.session() as session:
            rows = (await session.scalars(select(AgreementRevocation))).all()
            return {(r.agreement_id, r.version): revocation_text(r) for r in rows}

    from sqlalchemy.exc import SQLAlchemyError

    try:
        return run_on_node(node, work), settings.agreement_development_urls
    except (SQLAlchemyError, OSError) as exc:
        click.echo(f"revocations not read from the database: {exc}", err=True)
        return {}, settings.agreement_development_urls


def _exchange_or_fail(node: Node) -> Any:
    from sync.exchange.service import load_exchange

    exchange = load_exchange(node)
    if exchange is None:
        raise click.ClickException("no agreement configured (BORDERPOST_AGREEMENT_FILE)")
    return exchange


@agreement_group.command("revoke")
@click.option("--reason", required=True)
def agreement_revoke(reason: str) -> None:
    """Revoke the configured agreement version at once: exchange stops, what waits in the
    queue is dropped, what the partner sent is erased here, and a notice signed with this
    node's key goes to the partner (which stops and erases too). If the partner cannot be
    reached now, the service keeps sending the notice until it acknowledges it."""
    from sync.client import SyncError
    from sync.exchange.client import deliver_revocation
    from sync.exchange.lifecycle import revoke_agreement
    from sync.links import link_client

    node = build_node()
    exchange = _exchange_or_fail(node)

    async def work() -> dict[str, Any]:
        async with node.db.write_transaction() as session:
            revocation = await revoke_agreement(
                session, node=node, exchange=exchange, officer=None, reason=reason
            )
            erased = revocation.erased
        try:
            async with link_client(node.settings, exchange.partner.url, timeout=30) as http:
                notified = await deliver_revocation(node, exchange, http)
        except (SyncError, httpx.HTTPError) as exc:
            click.echo(f"the partner was not reached ({exc}); the service keeps trying", err=True)
            notified = False
        return {
            "agreement": exchange.agreement.id,
            "version": exchange.agreement.version,
            "revoked": True,
            "erased": erased,
            "partner_notified": notified,
        }

    try:
        emit(run_on_node(node, work))
    except Problem as exc:
        raise click.ClickException(exc.detail) from exc


@agreement_group.command("backfill")
def agreement_backfill() -> None:
    """Queue, once, the crossings of the paired posts ingested before the configured
    agreement version came into force (within its period, outside any revocation), with a
    progress bar. The exchange does the same by itself at its first push; a second run
    finds it done."""
    from sync.exchange.lifecycle import activate_agreement
    from sync.exchange.service import require_in_force

    node = build_node()
    exchange = _exchange_or_fail(node)

    async def work() -> dict[str, Any]:
        from rich.console import Console

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),  # the JSON answer alone on stdout
        ) as bar:
            task = bar.add_task("backfill", total=None)
            async with node.db.write_transaction() as session:
                await require_in_force(session, exchange)
                done = await activate_agreement(
                    session,
                    node=node,
                    exchange=exchange,
                    again=True,
                    progress=lambda n, total: bar.update(task, completed=n, total=total),
                )
        return {
            "agreement": done.activation.agreement_id,
            "version": done.activation.version,
            "activated_at": done.activation.activated_at.isoformat(),
            "queued": done.queued,
            "queued_since_activation": done.activation.backfilled,
            "dropped": done.activation.dropped,
        }

    try:
        emit(run_on_node(node, work))
    except Problem as exc:
        raise click.ClickException(exc.detail) from exc


@click.group("exchange")
def exchange_group() -> None:
    """Exchange with the partner country's national node."""


@exchange_group.command("now")
def exchange_now() -> None:
    """Push queued records to the partner now."""
    from sync.client import SyncError
    from sync.exchange.client import push_to_partner

    node = build_node()
    exchange = _exchange_or_fail(node)

    async def work() -> int:
        from sync.links import link_client

        async with link_client(node.settings, exchange.partner.url, timeout=60) as http:
            return await push_to_partner(node, exchange, http)

    try:
        emit({"sent": run_on_node(node, work)})
    except (SyncError, httpx.HTTPError) as exc:
        raise click.ClickException(str(exc)) from exc


@exchange_group.command("purge")
def exchange_purge() -> None:
    """Delete partner records whose retention has run out (audited)."""
    from sync.exchange.lifecycle import purge_expired
    from sync.exchange.service import load_exchange

    node = build_node()

    async def work() -> int:
        async with node.db.write_transaction() as session:
            return await purge_expired(session, node=node, exchange=load_exchange(node))

    emit({"purged": run_on_node(node, work)})


@click.command("reconcile")
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--until", default=None, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--pair", default=None, help="OUR-POST:THEIR-POST, e.g. MR-GOGUI:ML-GOGUI")
@click.option("--format", "output", default="json", type=click.Choice(["json", "csv"]))
def reconcile_command(since: Any, until: Any, pair: str | None, output: str) -> None:
    """Reconcile our exits and entries with the partner's and print the report."""
    from datetime import timedelta

    from sync.reconcile.report import period_report, report_csv
    from sync.reconcile.service import list_discrepancies, run_reconciliation

    node = build_node()
    exchange = _exchange_or_fail(node)
    start = since.date()
    end = until.date() if until else start.today() + timedelta(days=1)
    chosen = tuple(pair.split(":", 1)) if pair else None

    async def work() -> tuple[Any, Any]:
        async with node.db.write_transaction() as session:
            result = await run_reconciliation(
                session, node=node, exchange=exchange, since=start, until=end, officer=None
            )
            return result, await list_discrepancies(session)

    result, cases = run_on_node(node, work)
    if output == "csv":
        click.echo(report_csv(result, pair=chosen), nl=False)  # type: ignore[arg-type]
    else:
        emit(period_report(result, cases, since=start, until=end, pair=chosen))  # type: ignore[arg-type]
