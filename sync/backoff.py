"""Background runners that never die: a cycle repeated every ``interval`` seconds for as
long as the service runs, backing off after failures with exponential delays and full
jitter, so that posts cut off by the same outage do not all retry in lockstep.

Used by the post's sync runner (``sync.runner.SyncRunner``) and national's exchange runner
(``sync.exchange.client.ExchangeRunner``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod

import httpx

from sync.client import SyncError

# Failures of the link itself: expected while a post is offline, logged on one line.
LINK_ERRORS: tuple[type[BaseException], ...] = (SyncError, httpx.HTTPError, OSError)


def jittered_backoff(
    failures: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """The wait after ``failures`` consecutive failures (at least 1): a uniform draw from
    ``[0, min(cap, base * 2**failures)]`` ("full jitter")."""
    if failures < 1:
        raise ValueError("failures must be at least 1")
    if base <= 0 or cap <= 0:
        raise ValueError("base and cap must be positive")
    ceiling = cap if failures >= 64 else min(cap, base * 2**failures)
    return (rng or random).uniform(0.0, ceiling)


class ResilientRunner(ABC):
    """Run ``cycle`` every ``interval`` seconds until ``stop``; any exception but
    cancellation is logged and followed by a jittered exponential back-off up to
    ``max_backoff`` seconds, then the cycle is tried again."""

    name = "background runner"

    def __init__(
        self,
        *,
        interval: float,
        max_backoff: float = 600.0,
        log: logging.Logger,
        rng: random.Random | None = None,
    ) -> None:
        self.interval = interval
        self.max_backoff = max(max_backoff, interval)
        self.log = log
        self.rng = rng
        self.stopping = asyncio.Event()
        self.cycles = 0  # cycles that succeeded
        self.failures = 0  # cycles that failed, in all
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.delay = interval  # the wait before the next cycle

    @abstractmethod
    async def cycle(self) -> None:
        """One round of work; subclasses implement it."""

    def next_delay(self) -> float:
        """Seconds to wait after the cycle just run (``interval`` after a success)."""
        if not self.consecutive_failures:
            return self.interval
        return jittered_backoff(
            self.consecutive_failures, base=self.interval, cap=self.max_backoff, rng=self.rng
        )

    async def run_once(self) -> bool:
        """Run one cycle; True when it succeeded. Never raises but for cancellation."""
        try:
            await self.cycle()
        except Exception as exc:  # noqa: BLE001 - a runner must survive anything
            self.failures += 1
            self.consecutive_failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            delay = self.next_delay()
            if isinstance(exc, LINK_ERRORS):
                self.log.warning("%s failed (%s); next attempt in %.1f s", self.name, exc, delay)
            else:
                self.log.exception("%s failed; next attempt in %.1f s", self.name, delay)
            self.delay = delay
            return False
        self.cycles += 1
        self.consecutive_failures = 0
        self.last_error = None
        self.delay = self.interval
        return True

    async def run(self) -> None:
        while not self.stopping.is_set():
            await self.run_once()
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=self.delay)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self.stopping.set()
