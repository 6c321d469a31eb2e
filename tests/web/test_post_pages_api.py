"""Issue 16, pages for what a post does: the endpoints behind them, over real HTTP on SQLite
and PostgreSQL. A referral's case life cycle (reporting officer, follow-up, closing with an
outcome; protection alone writes it, a closed case takes nothing more; audited, and it
travels in the outbox), who may know that a crossing has a referral, a correction that
computes the stay again, one's own password change (the current password required, other
sessions revoked, this one kept) and an administrator's reset (sessions revoked, a change
forced at the next login, audited)."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import httpx
from sqlalchemy import select

from registry.models import AuditEvent, OutboxEntry, ReferralFollowUp
from tests.support.factories import passport_mrz
from tests.support.live import ServedNode
from tests.support.nodes import PASSWORD, unique_number


def td3(number: str) -> str:
    """A minor's passport (born 2011)."""
    return passport_mrz(
        number, surname="DIARRA", given="AMINATA", date_of_birth=date(2011, 3, 2), sex="F"
    )


def client(node: ServedNode, role: str | None = None, token: str | None = None) -> Any:
    bearer = token or (node.tokens[role] if role else None)
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.AsyncClient(base_url=node.url, headers=headers, timeout=30)


async def registered(node: ServedNode, decision: str = "cleared") -> dict[str, Any]:
    async with client(node, "officer") as officer:
        response = await officer.post(
            "/api/crossings",
            json={"direction": "entry", "mrz": td3(unique_number()), "decision": decision},
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def referred(node: ServedNode) -> tuple[dict[str, Any], str]:
    crossing = await registered(node)
    async with client(node, "officer") as officer:
        response = await officer.post(
            f"/api/crossings/{crossing['id']}/referrals",
            json={"category": "unaccompanied_minor", "note": "alone, aged about 14"},
        )
    assert response.status_code == 201, response.text
    return crossing, str(response.json()["referral_id"])


async def audit_actions(node: ServedNode, record_id: str) -> list[str]:
    async with node.db.session() as session:
        rows = await session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.record_id == record_id)
            .order_by(AuditEvent.seq)
        )
        return list(rows.all())


# ---------------------------------------------------------------- referral cases
async def test_a_referral_case_is_followed_up_then_closed_by_protection(
    served: ServedNode,
) -> None:
    _, referral_id = await referred(served)
    async with client(served, "protection") as protection:
        case = (await protection.get(f"/api/referrals/{referral_id}")).json()
        assert case["status"] == "open" and case["follow_ups"] == []
        assert case["reporting_officer"]["username"] == "officer"
        step = await protection.post(
            f"/api/referrals/{referral_id}/follow-ups",
            json={"status": "in_follow_up", "note": "met with the social worker"},
        )
        assert step.status_code == 201, step.text
        assert step.json()["status"] == "in_follow_up"
        no_outcome = await protection.post(
            f"/api/referrals/{referral_id}/follow-ups",
            json={"status": "closed", "note": "done"},
        )
        assert no_outcome.status_code == 422
        assert no_outcome.json()["invalid_params"][0]["name"] == "outcome"
        closed = await protection.post(
            f"/api/referrals/{referral_id}/follow-ups",
            json={"status": "closed", "note": "family found", "outcome": "reunited_with_family"},
        )
        assert closed.status_code == 201
        case = closed.json()
        assert case["status"] == "closed" and case["outcome"] == "reunited_with_family"
        assert [s["status"] for s in case["follow_ups"]] == ["in_follow_up", "closed"]
        assert case["follow_ups"][1]["officer"]["username"] == "protection"
        again = await protection.post(
            f"/api/referrals/{referral_id}/follow-ups",
            json={"status": "in_follow_up", "note": "one more"},
        )
        assert again.status_code == 409
        listed = (await protection.get("/api/referrals")).json()
        mine = next(r for r in listed if r["id"] == referral_id)
        assert mine["status"] == "closed"
    actions = await audit_actions(served, referral_id)
    assert actions.count("follow_up") == 1 and actions.count("close") == 1
    async with served.db.session() as session:
        steps = (await session.scalars(select(ReferralFollowUp))).all()
        queued = await session.scalars(
            select(OutboxEntry.record_type).where(OutboxEntry.record_type == "referral_follow_up")
        )
        assert len(steps) == 2 and len(queued.all()) == 2
    # the note is never written into the audit log
    async with served.db.session() as session:
        details = await session.scalars(
            select(AuditEvent.detail).where(AuditEvent.record_id == referral_id)
        )
        assert "family found" not in json.dumps(list(details.all()))


async def test_only_protection_writes_a_case_and_bad_steps_change_nothing(
    served: ServedNode,
) -> None:
    _, referral_id = await referred(served)
    body = {"status": "in_follow_up", "note": "trying"}
    for role in ("officer", "supervisor", "hq_analyst", "liaison", "admin"):
        async with client(served, role) as other:
            response = await other.post(f"/api/referrals/{referral_id}/follow-ups", json=body)
            assert response.status_code == 403, role
            # the same answer for a referral that does not exist: nothing is revealed
            unknown = await other.post(f"/api/referrals/{uuid.uuid4()}/follow-ups", json=body)
            assert unknown.status_code == 403, role
    async with client(served) as anonymous:
        response = await anonymous.post(f"/api/referrals/{referral_id}/follow-ups", json=body)
        assert response.status_code == 401
    async with client(served, "protection") as protection:
        for bad, field in (
            ({"status": "reopened", "note": "x"}, "status"),
            ({"status": "open", "note": ""}, "note"),
            ({"status": "open", "note": "x", "outcome": "protected"}, "outcome"),
            ({"status": "closed", "note": "x", "outcome": "vanished"}, "outcome"),
            ({"status": "open", "note": "x", "extra": 1}, "extra"),
            ({"status": "open", "note": "bad\u202etext"}, "note"),
        ):
            response = await protection.post(f"/api/referrals/{referral_id}/follow-ups", json=bad)
            assert response.status_code in (400, 422), (bad, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["invalid_params"][0]["name"] == field, bad
        unknown = await protection.post(f"/api/referrals/{uuid.uuid4()}/follow-ups", json=body)
        assert unknown.status_code == 404
    async with served.db.session() as session:
        assert (await session.scalars(select(ReferralFollowUp))).all() == []


async def test_who_is_told_that_a_crossing_has_a_referral(served: ServedNode) -> None:
    crossing, _ = await referred(served)
    plain = await registered(served)
    for role in ("officer", "supervisor"):
        async with client(served, role) as desk:
            seen = (await desk.get(f"/api/crossings/{crossing['id']}")).json()
            assert seen["has_protection_referral"] is True
            assert "aged about 14" not in json.dumps(seen)
            other = (await desk.get(f"/api/crossings/{plain['id']}")).json()
            assert other["has_protection_referral"] is False
    async with client(served, "hq_analyst") as analyst:
        referred_view = (await analyst.get(f"/api/crossings/{crossing['id']}")).json()
        plain_view = (await analyst.get(f"/api/crossings/{plain['id']}")).json()
    assert "has_protection_referral" not in referred_view
    assert referred_view.keys() == plain_view.keys()


# ---------------------------------------------------------------- corrections
async def test_a_correction_to_refused_closes_the_stay_and_keeps_the_original(
    served: ServedNode,
) -> None:
    crossing = await registered(served)
    assert crossing["stay_allowed_until"] is not None
    async with client(served, "hq_analyst") as analyst:
        refused = await analyst.post(
            f"/api/crossings/{crossing['id']}/corrections",
            json={"reason": "entry was refused", "decision": "refused"},
        )
        assert refused.status_code == 403
    async with client(served, "supervisor") as supervisor:
        missing_reason = await supervisor.post(
            f"/api/crossings/{crossing['id']}/corrections", json={"decision": "refused"}
        )
        assert missing_reason.status_code in (400, 422)
        assert missing_reason.json()["invalid_params"][0]["name"] == "reason"
        corrected = await supervisor.post(
            f"/api/crossings/{crossing['id']}/corrections",
            json={"reason": "entry was refused", "decision": "refused"},
        )
        assert corrected.status_code == 201, corrected.text
        view = corrected.json()
        assert view["stay_allowed_until"] is None and view["supersedes"] == crossing["id"]
        versions = (await supervisor.get(f"/api/crossings/{view['id']}/versions")).json()
        assert [v["decision"] for v in versions] == ["cleared", "refused"]
    assert "correct" in await audit_actions(served, view["id"])


# ---------------------------------------------------------------- passwords
async def new_account(served: ServedNode, username: str, role: str = "officer") -> None:
    async with client(served, "admin") as admin:
        response = await admin.post(
            "/api/officers",
            json={
                "username": username,
                "full_name": f"Test {username}",
                "role": role,
                "password": PASSWORD,
            },
        )
        assert response.status_code == 201, response.text


async def token_of(served: ServedNode, username: str, password: str = PASSWORD) -> str:
    async with client(served) as anonymous:
        response = await anonymous.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["token"])


async def test_an_officer_changes_their_password_and_their_other_sessions_end(
    served: ServedNode,
) -> None:
    username = "pw" + uuid.uuid4().hex[:6]
    await new_account(served, username)
    desk, phone = await token_of(served, username), await token_of(served, username)
    new = "a-new-password-42"
    async with client(served, token=desk) as here:
        wrong = await here.post(
            "/api/auth/password", json={"current_password": "not-it-at-all", "new_password": new}
        )
        assert wrong.status_code == 403
        assert wrong.json()["invalid_params"][0]["name"] == "current_password"
        weak = await here.post(
            "/api/auth/password", json={"current_password": PASSWORD, "new_password": "short"}
        )
        assert weak.status_code in (400, 422)
        changed = await here.post(
            "/api/auth/password", json={"current_password": PASSWORD, "new_password": new}
        )
        assert changed.status_code == 200, changed.text
        assert (await here.get("/api/auth/me")).status_code == 200  # this session stays
    async with client(served, token=phone) as elsewhere:
        assert (await elsewhere.get("/api/auth/me")).status_code == 401
    async with client(served) as anonymous:
        old = await anonymous.post(
            "/api/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert old.status_code == 401
    await token_of(served, username, new)
    async with served.db.session() as session:
        actions = await session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.action.in_(("change_password", "change_password_failed"))
            )
        )
        assert sorted(actions.all()) == ["change_password", "change_password_failed"]


async def test_an_admin_resets_a_password_and_the_officer_must_change_it(
    served: ServedNode,
) -> None:
    username = "rs" + uuid.uuid4().hex[:6]
    await new_account(served, username)
    before = await token_of(served, username)
    temporary = "temporary-pass-77"
    for role in ("officer", "supervisor", "protection", "hq_analyst"):
        async with client(served, role) as other:
            refused = await other.post(
                f"/api/officers/{username}/password", json={"password": temporary}
            )
            assert refused.status_code == 403, role
    async with client(served, "admin") as admin:
        own = await admin.post("/api/officers/admin/password", json={"password": temporary})
        assert own.status_code == 409
        unknown = await admin.post(
            "/api/officers/nobody-here/password", json={"password": temporary}
        )
        assert unknown.status_code == 404
        reset = await admin.post(f"/api/officers/{username}/password", json={"password": temporary})
        assert reset.status_code == 200, reset.text
        assert reset.json()["must_change_password"] is True
    async with client(served, token=before) as old_session:
        assert (await old_session.get("/api/auth/me")).status_code == 401
    token = await token_of(served, username, temporary)
    async with client(served, token=token) as forced:
        blocked = await forced.get("/api/crossings")
        assert blocked.status_code == 403
        assert blocked.json()["invalid_params"][0]["name"] == "password"
        assert (await forced.get("/api/auth/me")).json()["must_change_password"] is True
        changed = await forced.post(
            "/api/auth/password",
            json={"current_password": temporary, "new_password": "my-own-password-1"},
        )
        assert changed.status_code == 200, changed.text
        assert (await forced.get("/api/crossings")).status_code == 200
    async with served.db.session() as session:
        events = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "set_password"))
        ).all()
        assert [e.detail["must_change"] for e in events] == [True]
