"""Node-to-node links (a post to its national node, national to the partner): HTTPS with
the peer's certificate verified, against the system's authorities, a CA file
(``BORDERPOST_LINK_CA_FILE``) or a pinned certificate fingerprint.

Plain ``http://`` is refused, except to a loopback address (127.0.0.0/8, ::1, localhost:
the traffic never leaves the machine) and on a post whose operator set
``BORDERPOST_ALLOW_PLAIN_HTTP_LINKS`` for development (national refuses that setting).

A pin is the SHA-256 of the peer's certificate (DER), as ``openssl x509 -fingerprint
-sha256`` prints it. The link first fetches the certificate the server presents (nothing
is sent), compares its fingerprint with the pin, then connects trusting that certificate
alone, so a certificate swapped in between fails the handshake."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx

from registry.settings import Settings
from sync.client import SyncError

PLAIN_HTTP_REFUSED = (
    "{url}: links between nodes must use https:// (their data are personal data). Plain "
    "http:// is allowed only to a loopback address (127.0.0.1, ::1, localhost), or on a "
    "post for development with BORDERPOST_ALLOW_PLAIN_HTTP_LINKS=1. See deploy/TLS.md."
)


class LinkRefused(SyncError):
    """A node-to-node URL or certificate this node will not use."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: 127.0.0.0/8, ::1 or localhost."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def checked_link_url(url: str, settings: Settings) -> str:
    """``url`` without a trailing slash, or LinkRefused when a link may not use it."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError as exc:
        raise LinkRefused(f"{url}: not a URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise LinkRefused(f"{url}: give an https:// URL with a host name or address")
    if parts.username or parts.password:
        raise LinkRefused(f"{url}: a link URL carries no user name or password")
    if parts.scheme == "http" and not (is_loopback(host) or settings.allow_plain_http_links):
        raise LinkRefused(PLAIN_HTTP_REFUSED.format(url=url))
    return url.strip().rstrip("/")


def normalised_pin(pin: str) -> str:
    """A certificate fingerprint as 64 lower-case hex digits (colons and case ignored)."""
    cleaned = pin.strip().replace(":", "").lower()
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise LinkRefused(
            "a certificate pin is its SHA-256 fingerprint: 64 hex digits, e.g. from "
            "`openssl x509 -in national.crt -noout -fingerprint -sha256`"
        )
    return cleaned


def certificate_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


async def presented_certificate(url: str, timeout: float = 15.0) -> bytes:
    """The certificate (DER) an https server presents; nothing is sent to it."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE  # only to read the certificate; compared with the pin
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=probe, server_hostname=host or None),
            timeout,
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise SyncError(f"{url}: cannot reach the server for its certificate: {exc}") from exc
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
    if not der:
        raise LinkRefused(f"{url}: the server presented no certificate")
    return bytes(der)


def tls_context(settings: Settings, pinned_der: bytes | None = None) -> ssl.SSLContext:
    """Verification for a link: the pinned certificate alone, else the CA file, else the
    system's authorities (certifi's bundle, as httpx uses)."""
    if pinned_der is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False  # the pin names the certificate itself
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=pinned_der)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context
    if settings.link_ca_file:
        return ssl.create_default_context(cafile=settings.link_ca_file)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


@asynccontextmanager
async def link_client(
    settings: Settings, url: str, *, pin: str | None = None, timeout: float = 30.0
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for one node-to-node link: the URL checked, the certificate verified
    (and matched with ``pin`` when given). Raises LinkRefused or SyncError."""
    url = checked_link_url(url, settings)
    verify: ssl.SSLContext | bool = True
    if urlsplit(url).scheme == "https":
        pinned: bytes | None = None
        if pin:
            expected = normalised_pin(pin)
            pinned = await presented_certificate(url, timeout)
            found = certificate_sha256(pinned)
            if found != expected:
                raise LinkRefused(
                    f"{url}: the server's certificate has SHA-256 {found}, not the pinned "
                    f"{expected}; do not sync until its operator confirms a new certificate"
                )
        verify = tls_context(settings, pinned)
    async with httpx.AsyncClient(timeout=timeout, verify=verify) as http:
        yield http
