"""`borderpost sync ...` and `borderpost rules ...`: running a sync by hand with a progress
bar, its status, the quarantine of refused records, the digest check, and publishing stay
rules from national."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from registry.cli.helpers import build_node, emit, run_on_node
from registry.node import Node
from registry.problems import Problem

T = TypeVar("T")


@click.group("sync")
def sync_group() -> None:
    """Sync this post with its national node."""


async def _client_work(node: Node, work: Callable[[Any], Awaitable[T]], progress: Any = None) -> T:
    from sync.client import SyncClient, SyncError, national_link

    async with node.db.session() as session:
        link = await national_link(session)
    if link is None:
        raise SyncError(
            "not enrolled: run `borderpost node enrol --national-url URL --code CODE` first"
        )
    from sync.links import link_client

    async with link_client(node.settings, link.url, pin=link.cert_sha256, timeout=60) as http:
        return await work(SyncClient(node, link, http, progress=progress))


@sync_group.command("now")
def sync_now() -> None:
    """Push records and photos, pull reference data, once, with a progress bar."""
    from sync.client import SyncError
    from sync.status import sync_status

    node = build_node()

    async def work() -> Any:
        status = await sync_status(node)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()) as bar:
            tasks = {
                "records": bar.add_task("records", total=status["backlog_records"]),
                "photos": bar.add_task("photos", total=None),
                "reference": bar.add_task("reference data", total=None),
            }
            report = await _client_work(
                node,
                lambda client: client.sync_once(),
                progress=lambda channel, n: bar.advance(tasks[channel], n),
            )
        return report

    try:
        report = run_on_node(node, work)
    except SyncError as exc:
        raise click.ClickException(str(exc)) from exc
    emit(report.__dict__)


@sync_group.command("status")
def sync_status_command() -> None:
    """Backlog, last success, days since sync; exit 1 past the offline limit, or while
    national holds records of this post in quarantine (each one named)."""
    from sync.status import sync_status

    node = build_node()
    status = run_on_node(node, lambda: sync_status(node))
    emit(status)
    if status["warning"]:
        click.echo(f"WARNING: {status['warning']}", err=True)
    for entry in status.get("quarantined", []):
        click.echo(
            f"QUARANTINED at national: {entry['record_type']} {entry['record_id']} "
            f"(seq {entry['seq']}): {entry['reason']}: {entry['detail']}",
            err=True,
        )
    if status["warning"] or status.get("quarantined"):
        sys.exit(1)


@sync_group.group("quarantine")
def quarantine_group() -> None:
    """Records national could not store (national): list, retry after a fix, discard."""


@quarantine_group.command("list")
@click.option(
    "--status",
    "status_filter",
    default="pending",
    type=click.Choice(["pending", "retried", "discarded", "all"]),
)
@click.option("--origin", default=None, help="only the records of this post, e.g. MR-GOGUI")
@click.option("--payload", is_flag=True, help="include each record's payload as received")
def quarantine_list(status_filter: str, origin: str | None, payload: bool) -> None:
    """Quarantine entries, newest first, as JSON."""
    from sync.quarantine import entry_view, list_quarantine

    node = build_node()

    async def work() -> list[dict[str, Any]]:
        async with node.db.session() as session:
            entries = await list_quarantine(
                session,
                origin=origin,
                status=None if status_filter == "all" else status_filter,
                limit=10_000,
            )
            return [entry_view(e, with_payload=payload) for e in entries]

    emit(run_on_node(node, work))


def _resolve(entry_id: int, action: str) -> None:
    from sync.ingest.quarantine import QuarantineError, discard_entry, retry_entry
    from sync.quarantine import entry_view

    node = build_node()
    resolve = retry_entry if action == "retry" else discard_entry

    async def work() -> dict[str, Any]:
        async with node.db.write_transaction() as session:
            entry = await resolve(session, node=node, entry_id=entry_id, officer=None)
            return entry_view(entry)

    try:
        view = run_on_node(node, work)
    except (QuarantineError, Problem) as exc:
        raise click.ClickException(str(getattr(exc, "detail", exc))) from exc
    emit(view)
    if view["status"] == "pending":
        click.echo(f"still refused: {view['reason']}: {view['detail']}", err=True)
        sys.exit(1)


@quarantine_group.command("retry")
@click.argument("entry_id", type=int)
def quarantine_retry(entry_id: int) -> None:
    """Apply a quarantined record again through the normal ingest path (audited); exit 1
    if it is still refused."""
    _resolve(entry_id, "retry")


@quarantine_group.command("discard")
@click.argument("entry_id", type=int)
def quarantine_discard(entry_id: int) -> None:
    """Mark a quarantined record discarded: kept for the record, never applied (audited)."""
    _resolve(entry_id, "discard")


@sync_group.command("verify")
def sync_verify() -> None:
    """Compare per-day digests with national and resend only what it lacks."""
    from sync.client import SyncError
    from sync.digest_check import verify_digest

    node = build_node()
    try:
        report = run_on_node(node, lambda: _client_work(node, verify_digest))
    except SyncError as exc:
        raise click.ClickException(str(exc)) from exc
    emit(
        {
            "days_compared": report.days_compared,
            "days_differing": report.days_differing,
            "missing_at_national": report.missing_at_national,
            "only_at_national": report.only_at_national,
            "bytes_received": report.bytes_received,
        }
    )


@click.group("rules")
def rules_group() -> None:
    """Allowed-stay rules (national publishes them to every post)."""


@rules_group.command("publish")
@click.argument("rules_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rules_publish(rules_file: Path) -> None:
    """Publish a JSON rule set, e.g. {"default": {"max_days": 90, "window_days": 180}}."""
    from sync.reference import publish_stay_rules

    node = build_node()
    try:
        rules = json.loads(rules_file.read_text())
    except ValueError as exc:
        raise click.ClickException(f"{rules_file}: not JSON: {exc}") from exc

    async def work() -> None:
        async with node.db.write_transaction() as session:
            await publish_stay_rules(session, node=node, rules=rules)

    try:
        run_on_node(node, work)
    except ValueError as exc:
        raise click.ClickException(f"invalid rules: {exc}") from exc
    click.echo("published; posts apply them at their next pull")
