"""Rate limiting with bounded memory: token buckets, and login throttling built on them.

``RateLimiter(rate_per_s, burst, max_keys)`` keeps at most ``max_keys`` buckets; past that
the least recently used key is forgotten (an evicted key starts again with a full bucket,
which errs towards letting an officer in rather than keeping memory without bound).
``allow(key)`` returns 0.0 when the request may go ahead (and spends a token), otherwise
the seconds to wait before one token is available (nothing is spent). Time is
``time.monotonic`` unless the caller passes ``now`` (tests, a controllable clock).

``LoginThrottle`` slows failed logins down per account and per source address (an
exponential delay, then a temporary lockout) and caps the password checks one address
may ask for with a ``RateLimiter``; ``registry.officers.service.login`` uses it.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

__all__ = ["LockEvent", "LockView", "LoginPolicy", "LoginThrottle", "RateLimiter", "Refusal"]


class RateLimiter:
    """A token bucket per key, ``burst`` tokens deep, refilled at ``rate_per_s`` tokens a second."""

    __slots__ = ("rate_per_s", "burst", "max_keys", "_buckets")

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 10000) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = int(burst)
        self.max_keys = int(max_keys)
        # key -> (tokens left, time of the last refill); the order is least recently used first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: str, now: float | None = None) -> float:
        """0.0 when ``key`` may go ahead (one token spent), else the seconds until it may."""
        if now is None:
            now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            tokens, last = float(self.burst), now
        else:
            tokens, last = bucket
            if now > last:
                tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
                last = now
        if tokens >= 1.0:
            self._store(key, tokens - 1.0, last)
            return 0.0
        self._store(key, tokens, last)
        return (1.0 - tokens) / self.rate_per_s

    def reset(self, key: str) -> None:
        """Forget ``key`` (a full bucket next time)."""
        self._buckets.pop(key, None)

    def _store(self, key: str, tokens: float, last: float) -> None:
        buckets = self._buckets
        buckets[key] = (tokens, last)
        buckets.move_to_end(key)
        while len(buckets) > self.max_keys:
            buckets.popitem(last=False)


# ---------------------------------------------------------------- logins
FREE_FAILURES = 3  # failed logins of an account answered at once, before any delay
ADDRESS_FACTOR = 5  # a source address may fail this many times what one account may
ATTEMPTS_PER_SECOND = 5.0  # password checks one source address may ask for, sustained
ATTEMPT_BURST = 60  # ... and at once (a post's desks log in together behind one address)


@dataclass(frozen=True)
class LoginPolicy:
    """How failed logins are slowed down, then locked out, per account and per address.

    After ``free_failures`` failures in a row, each further attempt must wait
    ``delay_s * 2**(failures - free_failures)`` seconds (capped at ``lockout_s``) after the
    latest failure; at ``lockout_failures`` failures the account is locked for
    ``lockout_s``, whatever password comes. A source address gets ``address_factor`` times
    the allowance of an account, and at most ``attempts_per_s`` password checks a second
    (``attempt_burst`` at once), failed or not. Failures older than ``lockout_s`` are
    forgotten; a successful login clears its account's failures.
    """

    delay_s: float = 1.0
    lockout_failures: int = 10
    lockout_s: float = 900.0
    free_failures: int = FREE_FAILURES
    address_factor: int = ADDRESS_FACTOR
    attempts_per_s: float = ATTEMPTS_PER_SECOND
    attempt_burst: int = ATTEMPT_BURST

    def __post_init__(self) -> None:
        if self.delay_s <= 0 or self.lockout_s <= 0:
            raise ValueError("login delays must be positive")
        if not 0 < self.free_failures < self.lockout_failures:
            raise ValueError("login lockout needs more failures than the free ones")


Scope = Literal["account", "address"]


@dataclass(frozen=True)
class LockEvent:
    """A lockout that began or ended: written to the audit log by the login service."""

    kind: Literal["locked", "released"]
    scope: Scope
    key: str  # the username or the source address
    failures: int
    until: datetime  # wall-clock end of the lockout (UTC)
    reason: str  # "failures" (locked), "expired" or "admin" (released)


@dataclass(frozen=True)
class Refusal:
    """Why an attempt is refused before any password is checked, and for how long."""

    scope: Scope
    retry_after: float  # seconds
    locked: bool  # a lockout (True) or an exponential delay (False)

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))


@dataclass(frozen=True)
class LockView:
    """A current lockout, as the admin sees it."""

    scope: Scope
    key: str
    failures: int
    until: datetime
    seconds_left: int


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0  # monotonic time of the latest failure
    next_try: float = 0.0  # no attempt before this (monotonic)
    inflight: int = 0  # attempts admitted whose password check has not finished
    locked_until: float | None = None  # monotonic


class LoginThrottle:
    """Failed-login bookkeeping per account and per source address, in bounded memory.

    ``admit`` before checking a password (None, or the ``Refusal`` to answer with 429),
    then ``record`` its outcome exactly once. Lockouts that begin or end are queued as
    ``LockEvent``s for the caller to audit (``take_events``). All state is in memory: a
    restart forgets it, which only an administrator of the post can cause.
    """

    def __init__(self, policy: LoginPolicy | None = None, max_keys: int = 10000) -> None:
        self.policy = policy or LoginPolicy()
        self.max_keys = max_keys
        self._entries: OrderedDict[tuple[Scope, str], _Failures] = OrderedDict()
        self._attempts = RateLimiter(
            self.policy.attempts_per_s, self.policy.attempt_burst, max_keys=max_keys
        )
        self._events: list[LockEvent] = []

    # ------------------------------------------------------------ limits per scope
    def _free(self, scope: Scope) -> int:
        factor = self.policy.address_factor if scope == "address" else 1
        return self.policy.free_failures * factor

    def _lockout(self, scope: Scope) -> int:
        factor = self.policy.address_factor if scope == "address" else 1
        return self.policy.lockout_failures * factor

    # ------------------------------------------------------------ state
    def _entry(self, scope: Scope, key: str, now: float, *, create: bool) -> _Failures | None:
        entry = self._entries.get((scope, key))
        if entry is not None:
            self._expire(scope, key, entry, now)
            self._entries.move_to_end((scope, key))
            return entry
        if not create:
            return None
        entry = _Failures()
        self._entries[(scope, key)] = entry
        self._evict()
        return entry

    def _evict(self) -> None:
        """Forget the least recently seen keys past ``max_keys``, lockouts last."""
        excess = len(self._entries) - self.max_keys
        if excess <= 0:
            return
        idle = []
        for key, entry in self._entries.items():  # oldest first; usually the very first
            if entry.locked_until is None and not entry.inflight:
                idle.append(key)
                if len(idle) == excess:
                    break
        for key in idle:
            del self._entries[key]
        while len(self._entries) > self.max_keys:  # only lockouts left: the oldest goes
            self._entries.popitem(last=False)

    def _expire(self, scope: Scope, key: str, entry: _Failures, now: float) -> None:
        if entry.locked_until is not None and now >= entry.locked_until:
            self._events.append(
                LockEvent(
                    "released", scope, key, entry.count, _wall(entry.locked_until, now), "expired"
                )
            )
            entry.count, entry.next_try, entry.locked_until = 0, 0.0, None
        elif (
            entry.locked_until is None and entry.count and now - entry.last > self.policy.lockout_s
        ):
            entry.count, entry.next_try = 0, 0.0

    def _refusal(self, scope: Scope, entry: _Failures, now: float) -> Refusal | None:
        if entry.locked_until is not None:
            return Refusal(scope, entry.locked_until - now, locked=True)
        if entry.count + entry.inflight < self._free(scope):
            return None
        if entry.inflight:  # past the free failures, one check at a time
            return Refusal(scope, max(self.policy.delay_s, entry.next_try - now), locked=False)
        if now < entry.next_try:
            return Refusal(scope, entry.next_try - now, locked=False)
        return None

    # ------------------------------------------------------------ the login flow
    def admit(self, username: str, address: str, now: float | None = None) -> Refusal | None:
        """None when this attempt may check its password (it is then counted in flight)."""
        now = time.monotonic() if now is None else now
        account = self._entry("account", username, now, create=True)
        source = self._entry("address", address, now, create=True)
        assert account is not None and source is not None
        refusal = self._refusal("account", account, now) or self._refusal("address", source, now)
        if refusal is not None:
            return refusal
        wait = self._attempts.allow(address, now)
        if wait > 0:
            return Refusal("address", wait, locked=False)
        account.inflight += 1
        source.inflight += 1
        return None

    def record(
        self, username: str, address: str, *, succeeded: bool, now: float | None = None
    ) -> None:
        """The outcome of an admitted attempt: clears or counts the failure, maybe locks."""
        now = time.monotonic() if now is None else now
        scopes: tuple[tuple[Scope, str], ...] = (("account", username), ("address", address))
        for scope, key in scopes:
            entry = self._entry(scope, key, now, create=True)
            assert entry is not None
            entry.inflight = max(0, entry.inflight - 1)
            if succeeded:
                if scope == "account":
                    entry.count, entry.next_try = 0, 0.0
                continue
            self._fail(scope, key, entry, now)

    def _fail(self, scope: Scope, key: str, entry: _Failures, now: float) -> None:
        if entry.locked_until is not None:
            return
        entry.count += 1
        entry.last = now
        policy = self.policy
        if entry.count >= self._lockout(scope):
            entry.locked_until = now + policy.lockout_s
            entry.next_try = entry.locked_until
            self._events.append(
                LockEvent(
                    "locked", scope, key, entry.count, _wall(entry.locked_until, now), "failures"
                )
            )
        elif entry.count >= self._free(scope):
            steps = entry.count - self._free(scope)
            entry.next_try = now + min(policy.lockout_s, policy.delay_s * 2.0 ** min(steps, 30))

    # ------------------------------------------------------------ administration
    def take_events(self) -> list[LockEvent]:
        """The lockouts that began or ended since the last call (to be audited)."""
        events, self._events = self._events, []
        return events

    def locks(self, now: float | None = None) -> list[LockView]:
        """The current lockouts, accounts first, soonest released first."""
        now = time.monotonic() if now is None else now
        views = []
        for (scope, key), entry in list(self._entries.items()):
            self._expire(scope, key, entry, now)
            if entry.locked_until is not None:
                views.append(
                    LockView(
                        scope,
                        key,
                        entry.count,
                        _wall(entry.locked_until, now),
                        max(1, math.ceil(entry.locked_until - now)),
                    )
                )
        return sorted(views, key=lambda v: (v.scope != "account", v.until, v.key))

    def lock_of(self, username: str, now: float | None = None) -> LockView | None:
        """The lockout of one account, if any."""
        for view in self.locks(now):
            if view.scope == "account" and view.key == username:
                return view
        return None

    def release(self, scope: Scope, key: str, now: float | None = None) -> bool:
        """Lift a lockout (an administrator's decision); False when there was none."""
        now = time.monotonic() if now is None else now
        entry = self._entries.get((scope, key))
        if entry is None or entry.locked_until is None:
            return False
        self._events.append(
            LockEvent("released", scope, key, entry.count, _wall(now, now), "admin")
        )
        entry.count, entry.next_try, entry.locked_until = 0, 0.0, None
        return True


def _wall(monotonic_at: float, now: float) -> datetime:
    """A monotonic instant as a UTC wall-clock time."""
    return datetime.now(UTC) + timedelta(seconds=monotonic_at - now)
