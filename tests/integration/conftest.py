"""Fixtures of the integration tests: ``served``, a node over real HTTP (tests/live.py)."""

from tests.live import served

__all__ = ["served"]
