"""Officer credentials and tokens: argon2 password hashes, bearer/session tokens, roles.

Argon2 costs about 0.1 s of CPU and 64 MB by design. On the server it never runs on the
event loop nor under the node's write lock: ``hash_password_off_loop`` and
``check_password_off_loop`` run it on a small dedicated thread pool (at most
``PASSWORD_WORKERS`` at once, at a lower CPU priority than the event loop, so a login
flood cannot take the cores from the desk).
An unknown username is checked against a dummy hash of the same parameters, so that it
costs what a known one costs.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.models import AuthToken, Officer, utcnow

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


PASSWORD_WORKERS = max(1, (os.cpu_count() or 2) // 2)
PASSWORD_NICENESS = 10  # below the event loop's threads: desk requests come first


def _lower_priority() -> None:
    """Run this password thread (and the lane threads argon2 starts from it) at a lower
    CPU priority than the event loop, on Linux where priority is per thread."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        pass


_password_pool = ThreadPoolExecutor(
    max_workers=PASSWORD_WORKERS, thread_name_prefix="argon2", initializer=_lower_priority
)
_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


def _dummy_password_hash() -> str:
    """A hash of a random password, with the hasher's parameters (made once per process)."""
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(secrets.token_urlsafe(24))
        return _dummy_hash


def _check_password(password_hash: str | None, password: str) -> bool:
    dummy = _dummy_password_hash()  # made on the first call, whichever path it takes
    if password_hash is None:
        verify_password(dummy, password)
        return False
    return verify_password(password_hash, password)


async def hash_password_off_loop(password: str) -> str:
    """``hash_password`` on the password thread pool (raises ValueError for a weak one)."""
    return await asyncio.get_running_loop().run_in_executor(_password_pool, hash_password, password)


async def check_password_off_loop(password_hash: str | None, password: str) -> bool:
    """Verify on the password thread pool; ``None`` (no such account) costs the same and
    is always False."""
    return await asyncio.get_running_loop().run_in_executor(
        _password_pool, _check_password, password_hash, password
    )


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(session: AsyncSession, officer: Officer, ttl_hours: int) -> str:
    """Create a new random token for the officer; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    session.add(
        AuthToken(
            token_hash=token_digest(token),
            officer_id=officer.id,
            expires_at=utcnow() + timedelta(hours=ttl_hours),
        )
    )
    return token


async def officer_for_token(
    session: AsyncSession, token: str, cache: TokenCache | None = None
) -> Officer | None:
    """The active officer holding this unexpired, unrevoked token, or None."""
    if cache is not None and (cached := cache.get(token)) is not None:
        return cached
    query = (
        select(Officer, AuthToken)
        .join(AuthToken, col(AuthToken.officer_id) == col(Officer.id))
        .where(col(AuthToken.token_hash) == token_digest(token))
    )
    row = (await session.execute(query)).first()
    if row is None:
        return None
    officer, auth = row
    if auth.revoked or auth.expires_at <= utcnow() or not officer.active:
        return None
    if cache is not None:
        cache.put(token, officer, auth.expires_at)
    return officer


async def revoke_token(session: AsyncSession, token: str) -> None:
    auth = await session.get(AuthToken, token_digest(token))
    if auth is not None:
        auth.revoked = True


class TokenCache:
    """Recently authenticated tokens, so that a busy desk does not hit the database for
    every request. Entries live ``ttl_seconds`` (and never past the token's expiry); a
    logout in this process evicts at once. A deactivation made by another process takes
    effect within ``ttl_seconds``."""

    def __init__(self, ttl_seconds: float = 30.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Officer]] = {}

    def get(self, token: str) -> Officer | None:
        key = token_digest(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        valid_until, officer = entry
        if time.monotonic() >= valid_until:
            del self._entries[key]
            return None
        return officer

    def put(self, token: str, officer: Officer, expires_at: datetime) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        remaining = (expires_at - utcnow()).total_seconds()
        self._entries[token_digest(token)] = (time.monotonic() + min(self.ttl, remaining), officer)

    def evict(self, token: str) -> None:
        self._entries.pop(token_digest(token), None)
