"""What crossing reconciliation takes and gives: facts, time rules, outcomes and results.

Inputs are ``CrossingFact`` values (one per crossing, either side) or a columnar
``FactTable``, and the ``ReconcileConfig`` time rules; ``sync.reconcile.core.reconcile``
pairs them and returns a ``ReconcileResult`` holding counts per ``Outcome`` and the
``Discrepancy`` cases. Pure values: no database, no HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
MISSING = -1  # an unknown date ordinal or attribute code
# Codes of pseudonymised dates start here, far above any date ordinal (9999-12-31 is 3652059).
PSEUDONYM_CODES: Final = 10_000_000
PSEUDONYM_LENGTH: Final = 43  # a blinded value (sync.exchange.pseudonyms)


def is_pseudonym(value: object) -> bool:
    """True for a blinded value rather than a clear date or code."""
    return isinstance(value, str) and len(value) == PSEUDONYM_LENGTH


class Outcome(StrEnum):
    """The outcome of one reconciliation case."""

    MATCHED = "matched"
    PENDING = "pending"
    EXIT_WITHOUT_ENTRY = "exit_without_entry"
    ENTRY_WITHOUT_EXIT = "entry_without_exit"
    DATA_MISMATCH = "data_mismatch"
    DUPLICATE = "duplicate"
    TIMING_ANOMALY = "timing_anomaly"
    OTHER_DOCUMENT = "other_document"  # same person (name, birth date, nationality), other doc


OUTCOMES = tuple(Outcome)


@dataclass(frozen=True, slots=True)
class CrossingFact:
    """What reconciliation needs of one crossing (either side).

    ``occurred_at`` is a timezone-aware datetime or Unix seconds (UTC). ``doc_pseudonym`` is
    ``sync.exchange.pseudonyms.pseudonym("document_number", number, issuing_state=...)``;
    ``name_pseudonym`` (optional) the name's (or the person element's) pseudonym;
    ``person_pseudonym`` (optional) the person element (name, birth date, nationality) that
    links the same person across two documents. Dates may be ``date``, ISO strings or
    pseudonyms (compared for equality only); None means unknown and is never reported as a
    mismatch.
    """

    id: str
    post: str
    direction: str  # "entry" | "exit"
    occurred_at: datetime | int | float
    doc_pseudonym: str
    name_pseudonym: str | None = None
    nationality: str | None = None
    date_of_birth: date | str | None = None
    document_expiry: date | str | None = None
    person_pseudonym: str | None = None


@dataclass(frozen=True)
class ReconcileConfig:
    """Time rules. Requires ``0 <= clock_skew_tolerance < max_travel_time <= window`` and
    ``0 <= duplicate_interval <= window``; ``as_of`` timezone-aware."""

    as_of: datetime
    window: timedelta = timedelta(hours=24)
    max_travel_time: timedelta = timedelta(hours=12)
    clock_skew_tolerance: timedelta = timedelta(minutes=10)
    duplicate_interval: timedelta = timedelta(hours=1)
    # True when ``name_pseudonym`` is the person element (it covers birth date and
    # nationality too): a name difference is then told only when those agree.
    name_is_person: bool = False

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None or self.as_of.utcoffset() is None:
            raise ValueError("as_of must be timezone-aware")
        zero = timedelta(0)
        if not zero <= self.clock_skew_tolerance < self.max_travel_time <= self.window:
            raise ValueError("need 0 <= clock_skew_tolerance < max_travel_time <= window")
        if not zero <= self.duplicate_interval <= self.window:
            raise ValueError("need 0 <= duplicate_interval <= window")

    def seconds(self) -> tuple[int, int, int, int, int]:
        """``(as_of, window, max_travel_time, clock_skew_tolerance, duplicate_interval)``."""
        return (
            int(self.as_of.timestamp()),
            int(self.window.total_seconds()),
            int(self.max_travel_time.total_seconds()),
            int(self.clock_skew_tolerance.total_seconds()),
            int(self.duplicate_interval.total_seconds()),
        )


@dataclass(frozen=True)
class Discrepancy:
    """One case that is neither matched nor pending, with the ids involved on each side."""

    kind: Outcome
    pair: tuple[str, str]  # (our post, their post)
    our_ids: tuple[str, ...]
    their_ids: tuple[str, ...]
    doc_pseudonym: str
    at: datetime  # the earliest crossing involved, UTC
    reason: str
    fields: tuple[str, ...] = ()  # data_mismatch: what disagrees

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "kind": self.kind.value,
            "our_post": self.pair[0],
            "their_post": self.pair[1],
            "our_ids": list(self.our_ids),
            "their_ids": list(self.their_ids),
            "doc_pseudonym": self.doc_pseudonym,
            "at": self.at.isoformat(),
            "fields": list(self.fields),
            "reason": self.reason,
        }


# ------------------------------------------------------------------------------------------
# Columnar input
# ------------------------------------------------------------------------------------------
def _epoch(value: datetime | int | float) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")
        return int(value.timestamp())
    return int(value)


def _epochs(values: Sequence[datetime | int | float]) -> IntArray:
    return np.fromiter((_epoch(value) for value in values), dtype=np.int64, count=len(values))


def _ordinals(
    values: Sequence[date | str | None], pseudonyms: dict[str, int] | None = None
) -> IntArray:
    """Dates (or ISO strings, or None) -> proleptic ordinals, MISSING for None; pseudonyms
    -> codes from ``PSEUDONYM_CODES`` on, numbered in ``pseudonyms`` (share it between the
    two sides so that equal pseudonyms get equal codes)."""
    cache: dict[Any, int] = {None: MISSING}
    codes = pseudonyms if pseudonyms is not None else {}

    def ordinal(value: Any) -> int:
        found = cache.get(value)
        if found is None:
            if is_pseudonym(value):
                found = codes.setdefault(value, PSEUDONYM_CODES + len(codes))
            elif isinstance(value, datetime):
                found = value.date().toordinal()
            elif isinstance(value, date):
                found = value.toordinal()
            else:
                found = date.fromisoformat(str(value)[:10]).toordinal()
            cache[value] = found
        return found

    return np.fromiter((ordinal(value) for value in values), dtype=np.int64, count=len(values))


def _exits(directions: Sequence[str]) -> BoolArray:
    flags = []
    for direction in directions:
        if direction not in ("exit", "entry"):
            raise ValueError(f"direction must be 'entry' or 'exit', not {direction!r}")
        flags.append(direction == "exit")
    return np.array(flags, dtype=np.bool_)


@dataclass(frozen=True)
class FactTable:
    """One side's crossings as columns (faster than ``CrossingFact`` objects in bulk).

    ``is_exit`` is True for exits; ``times`` Unix seconds; ``dobs``/``expiries`` date
    ordinals with ``MISSING`` (-1) for unknown. Build it with ``from_facts``, or directly
    from columns already in this form.
    """

    ids: Sequence[str]
    posts: Sequence[str]
    is_exit: BoolArray
    times: IntArray
    docs: Sequence[str]
    names: Sequence[str | None]
    nationalities: Sequence[str | None]
    dobs: IntArray
    expiries: IntArray
    persons: Sequence[str | None] | None = None

    def __post_init__(self) -> None:
        size = len(self.ids)
        columns: tuple[Sized, ...] = (self.posts, self.is_exit, self.times, self.docs, self.names)
        columns += (self.nationalities, self.dobs, self.expiries)
        if self.persons is not None:
            columns += (self.persons,)
        if any(len(column) != size for column in columns):
            raise ValueError("all FactTable columns must have the same length")
        if any(not doc for doc in self.docs):
            raise ValueError("every crossing needs a document pseudonym")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_facts(
        cls, facts: Sequence[CrossingFact], pseudonyms: dict[str, int] | None = None
    ) -> FactTable:
        """Columns from ``CrossingFact`` objects (directions, times and dates checked);
        ``pseudonyms`` numbers pseudonymised dates (share it between the two sides)."""
        return cls(
            ids=[fact.id for fact in facts],
            posts=[fact.post for fact in facts],
            is_exit=_exits([fact.direction for fact in facts]),
            times=_epochs([fact.occurred_at for fact in facts]),
            docs=[fact.doc_pseudonym for fact in facts],
            names=[fact.name_pseudonym for fact in facts],
            nationalities=[fact.nationality for fact in facts],
            dobs=_ordinals([fact.date_of_birth for fact in facts], pseudonyms),
            expiries=_ordinals([fact.document_expiry for fact in facts], pseudonyms),
            persons=[fact.person_pseudonym for fact in facts],
        )


@dataclass(frozen=True)
class ReconcileResult:
    """Counts per outcome (overall and per post pair), the discrepancies, and the pairing.

    ``counts`` holds every outcome (zero included). ``crossings_by_pair`` maps a pair to
    ``(our crossings, their crossings)`` in scope. ``matched_pairs()`` yields
    ``(our id, their id)`` of every matched pair, for recording the link.
    """

    config: ReconcileConfig
    pairs: tuple[tuple[str, str], ...]
    counts: Mapping[Outcome, int]
    counts_by_pair: Mapping[tuple[str, str], Mapping[Outcome, int]]
    crossings_by_pair: Mapping[tuple[str, str], tuple[int, int]]
    discrepancies: list[Discrepancy]
    ours_total: int
    theirs_total: int
    out_of_scope: int
    _matched: tuple[IntArray, IntArray, Sequence[str], Sequence[str]] = field(
        repr=False, compare=False
    )

    @property
    def match_rate(self) -> float | None:
        """``matched / (cases - pending)``; None when nothing is decided yet."""
        return match_rate_of(self.counts)

    def matched_pairs(self) -> Iterator[tuple[str, str]]:
        ours, theirs, our_ids, their_ids = self._matched
        for our_index, their_index in zip(ours.tolist(), theirs.tolist(), strict=True):
            yield our_ids[our_index], their_ids[their_index]


def match_rate_of(counts: Mapping[Outcome, int]) -> float | None:
    """``matched / (cases - pending)``; None when nothing is decided yet."""
    decided = sum(counts.values()) - counts[Outcome.PENDING]
    return counts[Outcome.MATCHED] / decided if decided else None
