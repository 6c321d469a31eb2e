"""The runners' back-off: exponential with full jitter, bounded, and a runner that outlives
any error its cycle raises (only cancellation ends it)."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from sync.backoff import ResilientRunner, jittered_backoff


@pytest.mark.parametrize("failures", [1, 2, 3, 5, 8, 20, 63, 64, 1000])
def test_jittered_backoff_stays_within_its_bounds(failures: int) -> None:
    rng = random.Random(failures)
    ceiling = min(600.0, 5.0 * 2**failures) if failures < 64 else 600.0
    draws = [jittered_backoff(failures, base=5.0, cap=600.0, rng=rng) for _ in range(2000)]
    assert all(0.0 <= d <= ceiling for d in draws)
    assert max(draws) > 0.9 * ceiling  # the whole range is used: full jitter...
    assert min(draws) < 0.1 * ceiling  # ...down to nearly nothing


def test_jittered_backoff_spreads_posts_out() -> None:
    rng = random.Random(7)
    delays = {round(jittered_backoff(4, base=30.0, cap=600.0, rng=rng), 3) for _ in range(50)}
    assert len(delays) == 50  # fifty posts cut off by one outage do not retry in lockstep


def test_jittered_backoff_grows_exponentially_on_average() -> None:
    rng = random.Random(3)
    means = [
        sum(jittered_backoff(n, base=1.0, cap=1e9, rng=rng) for _ in range(4000)) / 4000
        for n in (1, 2, 3, 4)
    ]
    for n, mean in enumerate(means, start=1):
        assert 0.9 * 2**n / 2 < mean < 1.1 * 2**n / 2  # uniform on [0, 2**n]


@pytest.mark.parametrize(
    ("failures", "base", "cap"), [(0, 1.0, 10.0), (-1, 1.0, 10.0), (1, 0.0, 10.0), (1, 1.0, 0.0)]
)
def test_jittered_backoff_refuses_nonsense(failures: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        jittered_backoff(failures, base=base, cap=cap)


class Flaky(ResilientRunner):
    """Raises the errors it is given, one per cycle, then succeeds."""

    name = "flaky"

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__(
            interval=0.01, max_backoff=0.05, log=logging.getLogger("test"), rng=random.Random(1)
        )
        self.errors = errors
        self.delays: list[float] = []

    async def cycle(self) -> None:
        if self.cycles + self.failures:
            self.delays.append(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        if self.cycles >= 2:
            self.stop()


async def test_a_runner_outlives_every_error_and_backs_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[BaseException] = [
        KeyError("x"),
        ZeroDivisionError(),
        OSError("down"),
        ValueError(),
    ]
    runner = Flaky(errors)
    with caplog.at_level(logging.WARNING, logger="test"):
        await asyncio.wait_for(runner.run(), timeout=10)
    assert (runner.failures, runner.cycles, runner.consecutive_failures) == (4, 3, 0)
    assert runner.last_error is None
    assert all(0.0 <= d <= 0.05 for d in runner.delays[:4])  # backed off within the cap
    assert runner.delays[4:] == [0.01, 0.01]  # then back to the interval
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert [type(r.exc_info[1]) for r in tracebacks] == [KeyError, ZeroDivisionError, ValueError]
    assert any("down" in r.getMessage() for r in caplog.records)  # a link error: one line


async def test_cancellation_still_ends_a_runner() -> None:
    runner = Flaky([asyncio.CancelledError()])
    with pytest.raises(asyncio.CancelledError):
        await runner.run()
    assert runner.failures == 0
