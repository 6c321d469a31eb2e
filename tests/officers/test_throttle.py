"""RateLimiter: token buckets per key, wait times, bounded memory."""

from __future__ import annotations

import pytest

from registry.throttle import RateLimiter


def test_burst_then_wait_then_refill() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.allow("officer", now=10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.allow("officer", now=10.0) == pytest.approx(0.5)
    # a refused request spends nothing
    assert limiter.allow("officer", now=10.25) == pytest.approx(0.25)
    assert limiter.allow("officer", now=10.5) == 0.0
    # another key has its own bucket
    assert limiter.allow("10.0.0.7", now=10.5) == 0.0


def test_memory_is_bounded_least_recently_used_evicted() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_keys=100)
    for i in range(1000):
        limiter.allow(f"addr-{i}", now=0.0)
    assert len(limiter) == 100
    assert limiter.allow("addr-999", now=0.0) > 0  # kept: recently used
    assert limiter.allow("addr-0", now=0.0) == 0.0  # evicted: starts again full


def test_monotonic_clock_by_default_and_bad_settings_refused() -> None:
    limiter = RateLimiter(rate_per_s=0.001, burst=1)
    assert limiter.allow("k") == 0.0
    assert limiter.allow("k") > 0
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=1, burst=0)
