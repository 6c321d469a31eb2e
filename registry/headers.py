"""Security headers of every response a node sends, set in one place: the app's
``before_send`` hook :func:`security_headers`, which sees every response (404s and errors
included) after every middleware has added its own.

- ``Cache-Control: no-store`` on every response except the static assets under ``/static``
  (which carry their own ``max-age``): API JSON, photos, receipts (payload, PNG, SVG, HTML
  slip), web pages and errors may all carry personal data, and no browser, proxy or shared
  printer PC may keep a copy.
- ``X-Content-Type-Options: nosniff`` on every response.
- On every HTML response, a Content-Security-Policy with ``frame-ancestors 'none'``. The web
  pages keep their own, stricter policy (:data:`registry.web.security.CONTENT_SECURITY_POLICY`,
  set by the web middleware); the API's receipt slip gets the same policy and
  ``X-Frame-Options: DENY``; any other HTML (the API documentation) at least
  ``frame-ancestors 'none'``. No page is ever framed: the desk prints its receipt slip from
  a ``srcdoc`` frame it fills itself.
- ``Strict-Transport-Security`` when the request came over TLS (scheme ``https``, as set by
  the ASGI server, behind a proxy with ``--proxy-headers``).

A header the route (or an inner middleware) already set is kept, except ``Cache-Control``
outside ``/static``, which is always ``no-store``.
"""

from __future__ import annotations

from litestar.types import Message, Scope

from registry.web.security import CONTENT_SECURITY_POLICY

STATIC_PREFIX = "/static/"
HSTS = b"max-age=31536000; includeSubDomains"
NO_STORE = b"no-store"
NOSNIFF = b"nosniff"
# The receipt slip served by the API: the pages' policy (never framed).
RECEIPT_POLICY = CONTENT_SECURITY_POLICY.encode()
# Other HTML (the OpenAPI viewer loads its own scripts): no framing, no plugins, no <base>.
MINIMAL_HTML_POLICY = b"frame-ancestors 'none'; object-src 'none'; base-uri 'none'"


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lower().startswith(b"text/html")
    return False


def headers_for(
    path: str, scheme: str, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The response headers with this module's security headers added or enforced."""
    present = {name.lower() for name, _ in headers}
    static = path.startswith(STATIC_PREFIX)
    out = [(n, v) for n, v in headers if static or n.lower() != b"cache-control"]
    if not static:
        out.append((b"cache-control", NO_STORE))
    if b"x-content-type-options" not in present:
        out.append((b"x-content-type-options", NOSNIFF))
    if _is_html(headers) and b"content-security-policy" not in present:
        if path.startswith("/api/"):
            out.append((b"content-security-policy", RECEIPT_POLICY))
            if b"x-frame-options" not in present:
                out.append((b"x-frame-options", b"DENY"))
        else:
            out.append((b"content-security-policy", MINIMAL_HTML_POLICY))
    if scheme == "https" and b"strict-transport-security" not in present:
        out.append((b"strict-transport-security", HSTS))
    return out


async def security_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: add the security headers to an HTTP response's start message."""
    if message["type"] == "http.response.start":
        message["headers"] = headers_for(
            scope["path"], scope.get("scheme", "http"), list(message.get("headers", []))
        )
