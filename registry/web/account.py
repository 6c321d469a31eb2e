"""Login, logout, the account page and the language choice (stored on the officer, audited)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from sqlalchemy.ext.asyncio import AsyncSession

from registry.api.auth import EVERYONE
from registry.audit import audit
from registry.models import Officer
from registry.node import Node
from registry.officers.service import LoginThrottled, change_own_password, login
from registry.outbox import enqueue
from registry.problems import Problem
from registry.security import revoke_token
from registry.web.i18n import LANGUAGES, N_, supported
from registry.web.messages import TEXT_REFUSALS, text_refused_text
from registry.web.nav import home_for
from registry.web.render import forget_banner, redirect, render, safe_next, translator
from registry.web.security import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    cleared_cookies,
    is_https,
    new_login_csrf,
    session_cookies,
    session_expired,
    session_token,
    source_address,
)

LOGIN_FAILED = N_("Unknown username or wrong password.")
LOGIN_LOCKED = N_(
    "Too many failed login attempts: logins are locked for now. Try again in %(minutes)s min."
)
LOGIN_WAIT = N_("Too many failed login attempts. Wait %(seconds)s s before trying again.")
SESSION_ENDED = N_("Your session ended after a period without activity. Please log in again.")
WRONG_PASSWORD = N_("The current password is wrong.")
PASSWORD_TOO_SHORT = N_("The new password needs at least 10 characters.")
PASSWORDS_DIFFER = N_("The two new passwords differ.")
SAME_PASSWORD = N_("Choose a password different from the current one.")
MUST_CHANGE = N_("An administrator has reset your password: choose a new one before going on.")
NEW_PASSWORD_LENGTH = 10
YEAR = 365 * 24 * 3600


async def set_language(
    session: AsyncSession, *, node: Node, officer: Officer, language: str
) -> Officer:
    """Store the officer's page language (fr, ar or en); audited, and it travels to national."""
    if language not in LANGUAGES:
        raise Problem(422, "Unknown language", field="language", detail=f"one of {LANGUAGES}")
    stored = await session.get(Officer, officer.id)
    if stored is None:
        raise Problem(404, "Unknown officer", field="officer", detail="no such account")
    previous = stored.language
    stored.language = language
    await session.flush()
    await enqueue(session, stored)
    await audit(
        session,
        origin=node.settings.node_code,
        officer=officer,
        action="set_language",
        record_type="officer",
        record_id=stored.id,
        purpose="account_management",
        detail={"from": previous, "to": language},
    )
    return stored


def _lang_cookie(request: Request[Any, Any, Any], lang: str) -> Cookie:
    return Cookie(
        key=LANG_COOKIE,
        value=lang,
        max_age=YEAR,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request.scope),
    )


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def _login_refused(
    request: Request[Any, Any, Any], form: dict[str, str], problem: Problem
) -> Response[str]:
    """The login page again: 401 for a wrong password, 429 (Retry-After) when throttled,
    422 naming the username when it is not clean text (nothing audited then)."""
    _ = translator(request)
    if isinstance(problem, LoginThrottled):
        seconds = int(problem.headers["Retry-After"])
        if problem.refusal.locked:
            error = _(LOGIN_LOCKED) % {"minutes": max(1, -(-seconds // 60))}
        else:
            error = _(LOGIN_WAIT) % {"seconds": seconds}
    elif problem.invalid_params and problem.invalid_params[0].get("code") in TEXT_REFUSALS:
        error = text_refused_text(problem.invalid_params[0], _)
    else:
        error = _(LOGIN_FAILED)
    response = await render(
        request,
        "login.html",
        status_code=problem.status,
        login_csrf=request.cookies.get(LOGIN_CSRF_COOKIE, ""),
        next=safe_next(form.get("next"), ""),
        error=error,
        notice="",
    )
    response.headers.update(problem.headers)
    return response


async def _account_page(
    request: Request[Any, Any, Any], officer: Officer, *, status_code: int = 200, error: str = ""
) -> Response[str]:
    """The account page: the officer's facts, language and password change; after a reset
    by an administrator, the request to choose a new password first."""
    _ = translator(request)
    return await render(
        request,
        "account.html",
        status_code=status_code,
        active="account",
        password_error=error,
        must_change=_(MUST_CHANGE) if officer.must_change_password else "",
    )


class AccountController(Controller):
    """/web/login, /web/logout, /web/account, /web/language"""

    path = "/"

    @get("/", opt={"roles": EVERYONE}, include_in_schema=False)
    async def index(self, officer: Officer) -> Response[Any]:
        return redirect(home_for(officer.role))

    @get("/login", opt={"public": True}, include_in_schema=False)
    async def login_page(
        self, request: Request[Any, Any, Any], lang: str | None = None
    ) -> Response[str]:
        cookies = []
        if (chosen := supported(lang)) is not None:
            cookies.append(_lang_cookie(request, chosen))
            request.state.web_lang = chosen  # render this page in it already
        csrf = new_login_csrf()
        cookies.append(
            Cookie(
                key=LOGIN_CSRF_COOKIE,
                value=csrf,
                path="/web/login",
                httponly=True,
                samesite="strict",
                secure=is_https(request.scope),
                max_age=3600,
            )
        )
        _ = translator(request)
        expired = session_expired(request) or request.query_params.get("expired") == "1"
        return await render(
            request,
            "login.html",
            cookies=cookies,
            login_csrf=csrf,
            next=safe_next(request.query_params.get("next"), ""),
            error="",
            notice=_(SESSION_ENDED) if expired else "",
        )

    @post("/login", opt={"public": True, "csrf": "login"}, include_in_schema=False)
    async def login_submit(self, request: Request[Any, Any, Any], node: Node) -> Response[Any]:
        form = await _form(request)
        try:
            result = await login(
                node,
                username=form.get("username", "").strip()[:64],
                password=form.get("password", "")[:200],
                source=source_address(request),
            )
        except Problem as problem:
            return await _login_refused(request, form, problem)
        forget_banner(request)
        cookies = session_cookies(
            node,
            result.token,
            secure=is_https(request.scope),
            ttl_hours=node.settings.token_ttl_hours,
        )
        cookies.append(_lang_cookie(request, result.officer.language))
        target = safe_next(form.get("next"), home_for(result.officer.role))
        return redirect(target, cookies=cookies)

    @post("/logout", opt={"roles": EVERYONE}, include_in_schema=False)
    async def logout(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer
    ) -> Response[Any]:
        """End this session; the token leaves the cache only once its revocation is
        committed, so the handler opens its transaction itself."""

        token = session_token(request)
        if token:
            async with node.db.write_transaction() as session:
                await revoke_token(session, token)
                await audit(
                    session,
                    origin=node.settings.node_code,
                    officer=officer,
                    action="logout",
                    record_type="officer",
                    record_id=officer.id,
                    purpose="authentication",
                )
            node.tokens.evict(token)
        return redirect("/web/login?done=logged_out", cookies=cleared_cookies())

    @get("/account", opt={"roles": EVERYONE}, include_in_schema=False)
    async def account(self, request: Request[Any, Any, Any], officer: Officer) -> Response[str]:
        return await _account_page(request, officer)

    @post("/account/password", opt={"roles": EVERYONE}, include_in_schema=False)
    async def change_password(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer
    ) -> Response[Any]:
        """Change one's own password (``registry.officers.service.change_own_password``):
        the current one is required; every other session ends, this one stays."""
        _ = translator(request)
        form = await request.form()
        current, new, again = (
            value if isinstance(value := form.get(name, ""), str) else ""
            for name in ("current_password", "new_password", "new_password_again")
        )
        error = ""
        if len(new) < NEW_PASSWORD_LENGTH:
            error = _(PASSWORD_TOO_SHORT)
        elif new != again:
            error = _(PASSWORDS_DIFFER)
        if not error:
            try:
                await change_own_password(
                    node,
                    officer=officer,
                    current_password=current[:200],
                    new_password=new[:200],
                    token=session_token(request),
                )
            except LoginThrottled as throttled:
                response = await _account_page(
                    request,
                    officer,
                    status_code=429,
                    error=_(LOGIN_WAIT) % {"seconds": throttled.headers["Retry-After"]},
                )
                response.headers.update(throttled.headers)
                return response
            except Problem as problem:
                if problem.status == 403:
                    error = _(WRONG_PASSWORD)
                elif problem.status == 422:
                    same = problem.invalid_params and problem.title == "Same password"
                    error = _(SAME_PASSWORD) if same else _(PASSWORD_TOO_SHORT)
                else:
                    raise
        if error:
            status = 403 if error == _(WRONG_PASSWORD) else 422
            return await _account_page(request, officer, status_code=status, error=error)
        return redirect("/web/account?done=password_changed")

    @post("/language", opt={"roles": EVERYONE}, include_in_schema=False)
    async def language(
        self, request: Request[Any, Any, Any], node: Node, officer: Officer
    ) -> Response[Any]:
        """Save the officer's language; the cached session is forgotten once that is
        committed, so the handler opens its transaction itself."""
        form = await _form(request)
        chosen = supported(form.get("language"))
        if chosen is None:
            raise Problem(422, "Unknown language", field="language", detail=f"one of {LANGUAGES}")
        async with node.db.write_transaction() as session:
            await set_language(session, node=node, officer=officer, language=chosen)
        token = session_token(request)
        if token:
            node.tokens.evict(token)
        target = safe_next(form.get("next"), home_for(officer.role))
        separator = "&" if "?" in target else "?"
        return redirect(
            f"{target}{separator}done=language_saved", cookies=[_lang_cookie(request, chosen)]
        )
