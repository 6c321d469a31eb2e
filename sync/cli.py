"""`borderpost node ...`, `borderpost sync ...` and `borderpost rules ...`: enrolment,
approval, running a sync by hand with a progress bar, status and the digest check."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from registry.cli.helpers import build_node, emit, run_on_node
from registry.node import Node
from registry.problems import Problem

T = TypeVar("T")


@click.group("node")
def node_group() -> None:
    """Enrol this post with national (with a one-time code); on national: issue codes,
    revoke, reinstate and remove posts."""


@node_group.command("enrol")
@click.option("--national-url", required=True, help="e.g. https://national.example:8443")
@click.option("--code", "enrolment_code", required=True, help="the one-time enrolment code")
@click.option("--national-key", default=None, help="pin national's public key (base64url)")
@click.option(
    "--national-cert-sha256",
    default=None,
    help="pin national's TLS certificate (SHA-256 fingerprint, hex)",
)
def node_enrol(
    national_url: str,
    enrolment_code: str,
    national_key: str | None,
    national_cert_sha256: str | None,
) -> None:
    """Present the one-time code national's administrator issued for this post (`borderpost
    node invite CODE` there). A valid code enrols and approves the post at once; a post
    whose key was lost enrols again the same way, with a new code. The link must be https
    (certificate verified, or pinned with --national-cert-sha256), see deploy/TLS.md."""
    from sync.client import SyncError, enrol
    from sync.links import link_client

    node = build_node()

    async def work() -> dict[str, Any]:
        async with link_client(
            node.settings, national_url, pin=national_cert_sha256, timeout=30
        ) as http:
            return await enrol(
                node, national_url, http, enrolment_code, national_key, national_cert_sha256
            )

    try:
        answer = run_on_node(node, work)
    except (SyncError, httpx.HTTPError) as exc:
        raise click.ClickException(str(exc)) from exc
    emit(answer)
    click.echo(
        f"Compare national's key with the one its operator reads to you: {answer['public_key']}",
        err=True,
    )


@node_group.command("invite")
@click.argument("code")
@click.option(
    "--hours",
    default=72.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=24 * 14),
    help="how long the code stays valid",
)
def node_invite(code: str, hours: float) -> None:
    """Issue a one-time enrolment code for post CODE (national). The code is printed once,
    with its expiry; give it to the post's technician by a channel you trust. Issuing a
    new code cancels the post's unused one; a code used on an enrolled post replaces its
    key (a post whose key was lost)."""
    from sync.peers import issue_invitation

    node = build_node()

    async def work() -> tuple[str, Any]:
        async with node.db.write_transaction() as session:
            return await issue_invitation(
                session, node=node, officer=None, node_code=code, hours=hours
            )

    try:
        enrolment_code, invitation = run_on_node(node, work)
    except Problem as exc:
        raise click.ClickException(exc.detail) from exc
    emit(
        {
            "node_code": code,
            "code": enrolment_code,
            "expires_at": invitation.expires_at.isoformat(),
        }
    )
    click.echo("The code is shown only this once; only its hash is stored.", err=True)


@node_group.command("remove")
@click.argument("code")
def node_remove(code: str) -> None:
    """Delete a pending or revoked post (national); revoke an approved post first."""
    from sync.api import peer_view
    from sync.peers import remove_peer

    node = build_node()

    async def work() -> dict[str, Any]:
        async with node.db.write_transaction() as session:
            peer = await remove_peer(session, node=node, officer=None, node_code=code)
            return {**peer_view(peer), "removed": True}

    try:
        emit(run_on_node(node, work))
    except Problem as exc:
        raise click.ClickException(exc.detail) from exc


def _decide(code: str, status: str) -> None:
    from sync.api import peer_view
    from sync.peers import decide_peer

    node = build_node()

    async def work() -> dict[str, Any]:
        from registry.outbox import enqueue

        async with node.db.write_transaction() as session:
            peer = await decide_peer(
                session, node=node, officer=None, node_code=code, status=status
            )
            await enqueue(session, peer)
            return peer_view(peer)

    try:
        emit(run_on_node(node, work))
    except Problem as exc:
        raise click.ClickException(exc.detail) from exc


@node_group.command("approve")
@click.argument("code")
def node_approve(code: str) -> None:
    """Reinstate a revoked post with its enrolled key, or approve a post left pending by an
    older release (national). Enrolment with a code approves by itself."""
    _decide(code, "approved")


@node_group.command("revoke")
@click.argument("code")
def node_revoke(code: str) -> None:
    """Revoke a post: its batches are refused from now on (national)."""
    _decide(code, "revoked")


@node_group.command("list")
def node_list() -> None:
    """Enrolled peers and their status."""
    from sync.api import peer_view
    from sync.peers import list_peers

    node = build_node()

    async def work() -> list[dict[str, Any]]:
        async with node.db.session() as session:
            return [peer_view(p) for p in await list_peers(session)]

    emit(run_on_node(node, work))


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
    from sync.client import SyncError, verify_digest

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
