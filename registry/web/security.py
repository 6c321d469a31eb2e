"""Web session security: idle logout, CSRF tokens, and the security headers of the pages.

- **Session.** The pages and browser API clients use the session cookie (``bp_session``:
  HttpOnly, SameSite=Strict, Secure over HTTPS), set by the web login and by
  ``POST /api/auth/login``. Beside it both set ``bp_seen``: the time of the session's
  latest request, MACed with a key derived from the node's private signing key, refreshed
  on every request. A cookie-authenticated request (no bearer header), under ``/web`` or
  ``/api`` alike, whose ``bp_seen`` is older than the idle limit, or forged, revokes the
  session's token (audited as ``logout_idle``) and goes on as an anonymous request, so the
  pages ask to log in again (the API answers 401); a cookie without ``bp_seen`` is not a
  session either. API clients that send a bearer token are never touched.
- **CSRF.** Every unsafe request authenticated by the cookie must carry the session's CSRF
  token, in the ``X-CSRF-Token`` header (scripts, API clients) or, under ``/web``, the
  ``csrf_token`` form field (forms). The token is a MAC of the session token, so it needs
  no storage; the pages carry it in ``<meta name="csrf-token">`` and
  ``POST /api/auth/login`` answers it as ``csrf_token``. Outside ``/web`` the request
  must also come from the node's own origin (``Origin``, else ``Referer``). The login
  form, which has no session yet, uses a double-submit cookie (``bp_login_csrf``).
  Bearer-authenticated requests are exempt: a browser never attaches a bearer token by
  itself (the node-to-node ``/api/sync`` routes use bearer tokens or signatures).
- **Content types.** An unsafe request to a JSON endpoint (a handler with a JSON ``data``
  body, or ``opt={"body": "json"}``) must declare ``application/json``; anything else is
  refused with 415 before its body is read (``request_guard``).
- **Headers.** Pages get a Content-Security-Policy without any inline script or style,
  ``frame-ancestors 'none'`` (no page may be framed, not even by the node's own pages:
  the desk shows its receipt slip in a ``srcdoc`` frame it fills itself), no referrer,
  ``nosniff`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from registry.api.auth import SESSION_COOKIE
from registry.audit import audit
from registry.base64url import b64url
from registry.node import Node
from registry.problems import Problem
from registry.security import officer_for_token, revoke_token, token_digest
from registry.settings import Settings

SEEN_COOKIE = "bp_seen"
LOGIN_CSRF_COOKIE = "bp_login_csrf"
LANG_COOKIE = "bp_lang"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
WEB_PREFIX = "/web"
DEFAULT_IDLE_MINUTES = 15
CLOCK_SKEW_SECONDS = 60
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SCOPE_DONE = "borderpost.web_session_checked"
SCOPE_EXPIRED = "borderpost.web_session_expired"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
    (b"cache-control", b"no-store"),
)


def idle_seconds(settings: Settings) -> int:
    """The idle limit of a web session (``web_idle_minutes`` setting, default 15)."""
    minutes = getattr(settings, "web_idle_minutes", DEFAULT_IDLE_MINUTES)
    return max(1, int(float(minutes) * 60))


def _session_key(node: Node) -> bytes:
    """A MAC key derived from the node's private signing key: secret, stable, per node."""
    raw = node.signing_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return hashlib.sha256(b"borderpost-web-session\n" + raw).digest()


def _mac(node: Node, purpose: str, value: str) -> str:
    message = f"{purpose}\n{value}".encode()
    return hmac.new(_session_key(node), message, hashlib.sha256).hexdigest()


def csrf_token(node: Node, session_token: str) -> str:
    """The CSRF token of a session: a MAC of the session token (nothing stored)."""
    return _mac(node, "csrf", token_digest(session_token))[:43]


def seen_value(node: Node, session_token: str, now: float | None = None) -> str:
    stamp = int(time.time() if now is None else now)
    mac = _mac(node, "seen", f"{token_digest(session_token)}:{stamp}")[:32]
    return f"{stamp}.{mac}"


def seen_age(node: Node, session_token: str, value: str, now: float | None = None) -> float | None:
    """Seconds since the session's latest request, or None when the value is forged."""
    stamp_text, _, mac = value.partition(".")
    if not stamp_text.isdigit() or not mac:
        return None
    expected = _mac(node, "seen", f"{token_digest(session_token)}:{stamp_text}")[:32]
    if not hmac.compare_digest(mac, expected):
        return None
    age = (time.time() if now is None else now) - int(stamp_text)
    return age if age >= -CLOCK_SKEW_SECONDS else None


def desk_draft_key(node: Node, officer_id: str) -> str:
    """The key (AES-256, base64url) under which the desk keeps one officer's half-finished
    registration in the browser, so that it survives idle logout, Back and reload without
    ever lying on disk in clear: the browser stores only the ciphertext, and the key comes
    back only with a page served to that officer's session. Derived, never stored."""
    mac = hmac.new(_session_key(node), f"desk-draft\n{officer_id}".encode(), hashlib.sha256)
    return b64url(mac.digest())


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def is_https(scope: Scope) -> bool:
    return scope.get("scheme") == "https"


def session_cookies(node: Node, token: str, *, secure: bool, ttl_hours: int) -> list[Cookie]:
    """The cookies a web login sets: the API's session cookie plus the idle stamp."""
    common: dict[str, Any] = {
        "httponly": True,
        "samesite": "strict",
        "secure": secure,
        "path": "/",
        "max_age": ttl_hours * 3600,
    }
    return [
        Cookie(key=SESSION_COOKIE, value=token, **common),
        Cookie(key=SEEN_COOKIE, value=seen_value(node, token), **common),
    ]


def cleared_cookies(names: Iterable[str] = (SESSION_COOKIE, SEEN_COOKIE)) -> list[Cookie]:
    return [
        Cookie(key=name, value="", max_age=0, path="/", httponly=True, samesite="strict")
        for name in names
    ]


def _cookie_header(cookie: Cookie) -> tuple[bytes, bytes]:
    name, value = cookie.to_encoded_header()
    return name, value


SESSION_COOKIES = frozenset({SESSION_COOKIE.encode(), SEEN_COOKIE.encode()})


def _cookie_name(set_cookie: bytes) -> bytes:
    return set_cookie.split(b"=", 1)[0].strip()


def _request_cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is just ignored
                continue
    return {key: morsel.value for key, morsel in jar.items()}


def _has_bearer(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return True
    return False


def _without_session_cookie(scope: Scope) -> None:
    """Drop the Cookie header's session entries so the request goes on as anonymous."""
    kept = []
    for name, value in scope["headers"]:
        if name == b"cookie":
            parts = [p for p in value.decode("latin-1").split(";") if p.strip()]
            parts = [
                p for p in parts if p.strip().split("=", 1)[0] not in (SESSION_COOKIE, SEEN_COOKIE)
            ]
            if not parts:
                continue
            value = ";".join(parts).encode("latin-1")
        kept.append((name, value))
    scope["headers"] = kept


async def expire_session(node: Node, token: str) -> None:
    """Revoke an idle session's token (audited); unknown or revoked tokens are left alone."""
    async with node.db.write_transaction() as session:
        officer = await officer_for_token(session, token)
        if officer is not None:
            await revoke_token(session, token)
            await audit(
                session,
                origin=node.settings.node_code,
                officer=officer,
                action="logout_idle",
                record_type="officer",
                record_id=officer.id,
                purpose="authentication",
            )
    node.tokens.evict(token)


def is_web_path(path: str) -> bool:
    return path == WEB_PREFIX or path.startswith(WEB_PREFIX + "/")


class WebSessionMiddleware(ASGIMiddleware):
    """Idle logout for cookie sessions, and the security headers of ``/web`` pages.

    Installed at app level (``web_middleware``) it covers every route; the ``/web`` router
    carries it as well, so the pages stay protected if the app-level line is missing. It
    runs once per request either way.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, settings: Settings) -> None:
        self.idle = idle_seconds(settings)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get(SCOPE_DONE):
            await next_app(scope, receive, send)
            return
        scope[SCOPE_DONE] = True  # type: ignore[literal-required]
        web = is_web_path(scope["path"])
        extra = await self._session_headers(scope, web)
        if web:
            extra += PAGE_HEADERS
        if not extra:
            await next_app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                # a login or logout sets the session cookies itself: refreshing the old
                # session's stamp after them would pair the new session with the old stamp
                replaced = any(
                    name.lower() == b"set-cookie" and _cookie_name(value) in SESSION_COOKIES
                    for name, value in headers
                )
                for name, value in extra:
                    if name == b"set-cookie":
                        if not replaced:
                            headers.append((name, value))
                    elif name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await next_app(scope, receive, send_with_headers)

    async def _session_headers(self, scope: Scope, web: bool) -> list[tuple[bytes, bytes]]:
        if _has_bearer(scope):
            return []
        cookies = _request_cookies(scope)
        token = cookies.get(SESSION_COOKIE)
        if not token:
            return []
        node: Node = scope["app"].state.node
        seen = cookies.get(SEEN_COOKIE)
        age = seen_age(node, token, seen) if seen is not None else None
        if age is not None and age <= self.idle:
            secure = is_https(scope)
            ttl = node.settings.token_ttl_hours
            fresh = Cookie(
                key=SEEN_COOKIE,
                value=seen_value(node, token),
                httponly=True,
                samesite="strict",
                secure=secure,
                path="/",
                max_age=ttl * 3600,
            )
            return [_cookie_header(fresh)]
        if seen is not None:
            await expire_session(node, token)
        _without_session_cookie(scope)
        scope[SCOPE_EXPIRED] = True  # type: ignore[literal-required]
        return [_cookie_header(cookie) for cookie in cleared_cookies()]


def source_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address as the server sees it (the key of login throttling)."""
    client = connection.client
    return client.host if client is not None and client.host else "unknown"


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _expects_json(handler: BaseRouteHandler) -> bool:
    """Whether the handler reads a JSON body: a JSON ``data`` parameter or opt body=json."""
    if handler.opt.get("body") == "json":
        return True
    signature = getattr(handler, "parsed_fn_signature", None)
    parameter = signature.parameters.get("data") if signature is not None else None
    if parameter is None:
        return False
    kwarg = parameter.kwarg_definition
    media_type = getattr(kwarg, "media_type", None) if kwarg is not None else None
    return media_type in (None, RequestEncodingType.JSON, "application/json")


def _has_body(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    length = connection.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in connection.headers


def _same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether ``Origin`` (else ``Referer``) names this node's own scheme, host and port."""
    host = connection.headers.get("host", "").strip().lower()
    if not host:
        return False
    claimed = connection.headers.get("origin") or connection.headers.get("referer") or ""
    parts = urlsplit(claimed.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    scheme = connection.scope.get("scheme", "http")
    # behind a TLS-terminating proxy the node sees http while the browser says https
    schemes = {scheme, "https"} if scheme == "http" else {scheme}
    return parts.netloc.lower() == host and parts.scheme in schemes


async def request_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """App-level guard after ``authorize``, for unsafe methods: first 403 for a
    cookie-authenticated change without the session's CSRF token (outside ``/web``: in
    ``X-CSRF-Token``, from the node's own origin; under ``/web``: ``csrf_guard``), then 415
    for a JSON endpoint sent another content type. Nothing of the body is used before."""
    if connection.scope.get("method", "GET") not in UNSAFE_METHODS:
        return
    if is_web_path(connection.scope["path"]):
        await csrf_guard(connection, handler)
    elif not handler.opt.get("public"):
        _check_api_csrf(connection)
    content_type = connection.headers.get("content-type", "")
    if _expects_json(handler) and (content_type or _has_body(connection)):
        if not _is_json(content_type):
            raise Problem(
                415,
                "Unsupported media type",
                field="content-type",
                detail="send the body as application/json",
            )


def _check_api_csrf(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    token = session_token(connection)
    if token is None:
        return  # bearer-authenticated, or anonymous (refused by ``authorize``)
    expected = csrf_token(connection.app.state.node, token)
    submitted = connection.headers.get(CSRF_HEADER, "")
    if not submitted or not hmac.compare_digest(expected, submitted):
        raise Problem(
            403,
            "CSRF token missing",
            field="x-csrf-token",
            detail="a request made with the session cookie must send the session's CSRF "
            "token in the X-CSRF-Token header",
        )
    if not _same_origin(connection):
        raise Problem(
            403,
            "Cross-origin request",
            field="origin",
            detail="a request made with the session cookie must come from this node's own "
            "pages (Origin or Referer)",
        )


def session_expired(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return bool(connection.scope.get(SCOPE_EXPIRED))


def session_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    if connection.headers.get("authorization", "").lower().startswith("bearer "):
        return None
    return connection.cookies.get(SESSION_COOKIE) or None


def csrf_for(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The CSRF token to embed in the page served on this connection ('' when anonymous)."""
    token = session_token(connection)
    if token is None:
        return ""
    return csrf_token(connection.app.state.node, token)


async def _submitted_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = connection.headers.get("content-type", "")
    if isinstance(connection, Request) and content_type.startswith(FORM_TYPES):
        value = (await connection.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def csrf_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Refuse (403) an unsafe /web request that lacks its CSRF token."""
    if connection.scope.get("method", "GET") not in UNSAFE_METHODS:
        return
    if handler.opt.get("csrf") == "login":
        expected = connection.cookies.get(LOGIN_CSRF_COOKIE, "")
    elif connection.headers.get("authorization", "").lower().startswith("bearer "):
        return
    else:
        expected = csrf_for(connection)
    submitted = await _submitted_token(connection)
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise PermissionDeniedException(
            "the form's security token (CSRF) is missing or wrong: reload the page"
        )
