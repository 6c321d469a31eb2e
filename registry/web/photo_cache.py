"""Analysed desk photos kept in memory between the quality check and the save.

The desk analyses a portrait as soon as it is taken (to show the quality result) and needs
its face encoding again for the watchlist check and the registration. Instead of running
the face pipeline three times, the analysis is kept here under a random ticket, for the
officer who took it, for a few minutes. Nothing is written to disk or to the database: a
portrait is stored only when a registration that uses it is saved. A lost ticket (restart,
expiry) is harmless: the desk sends the photo file with the save, and it is analysed again.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from registry.photos import AnalysedPhoto

TTL_SECONDS = 15 * 60
MAX_ENTRIES = 64


@dataclass(frozen=True)
class _Entry:
    officer_id: uuid.UUID
    photo: AnalysedPhoto
    stored_at: float


class PhotoCache:
    """A small, bounded, expiring map ticket -> analysed photo, per officer."""

    def __init__(self, ttl_seconds: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, officer_id: uuid.UUID, photo: AnalysedPhoto) -> str:
        ticket = secrets.token_urlsafe(18)
        with self._lock:
            self._expire()
            self._entries[ticket] = _Entry(officer_id, photo, time.monotonic())
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return ticket

    def get(self, officer_id: uuid.UUID, ticket: str | None) -> AnalysedPhoto | None:
        if not ticket:
            return None
        with self._lock:
            self._expire()
            entry = self._entries.get(ticket)
        if entry is None or entry.officer_id != officer_id:
            return None
        return entry.photo

    def discard(self, ticket: str | None) -> None:
        if ticket:
            with self._lock:
                self._entries.pop(ticket, None)

    def _expire(self) -> None:
        limit = time.monotonic() - self.ttl
        while self._entries:
            ticket, entry = next(iter(self._entries.items()))
            if entry.stored_at >= limit:
                break
            del self._entries[ticket]

    def __len__(self) -> int:
        return len(self._entries)
