"""Rate limiting with bounded memory: a token bucket per key (an account, a source address).

``RateLimiter(rate_per_s, burst, max_keys)`` keeps at most ``max_keys`` buckets; past that
the least recently used key is forgotten (an evicted key starts again with a full bucket,
which errs towards letting an officer in rather than keeping memory without bound).
``allow(key)`` returns 0.0 when the request may go ahead (and spends a token), otherwise
the seconds to wait before one token is available (nothing is spent). Time is
``time.monotonic`` unless the caller passes ``now`` (tests, a controllable clock).
"""

from __future__ import annotations

import time
from collections import OrderedDict

__all__ = ["RateLimiter"]


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
