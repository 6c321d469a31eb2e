"""`borderpost node ...`: enrolment of a post with its national node, invitations,
approval, removal and the list of enrolled posts."""

from __future__ import annotations

from typing import Any

import click
import httpx

from registry.cli.helpers import build_node, emit, run_on_node
from registry.problems import Problem


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
    from sync.client import SyncError
    from sync.enrolment import enrol
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
