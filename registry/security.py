"""Officer credentials and tokens: argon2 password hashes, bearer/session tokens, roles."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
        .join(AuthToken, AuthToken.officer_id == Officer.id)
        .where(AuthToken.token_hash == token_digest(token))
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
