"""Crossing pairing between two countries: each exit must meet the partner's entry.

Pure functions over in-memory facts (no database, no HTTP). The national node loads both
sides' crossings for a period (plus ``window`` of margin on both ends), turns them into
``CrossingFact`` values (or a columnar ``FactTable``) and calls ``reconcile``.

Flows. For every post pair ``(our post A, their post B)`` from the agreement there are two
independent flows: our exits at A with their entries at B, and their exits at B with our
entries at A. Crossings at posts outside the pairs are counted as ``out_of_scope``. Within a
flow, crossings are grouped by document pseudonym; ``d = entry time - exit time``.

Pairing, per (flow, document) group, deterministic (ties broken by time, then input order
with ours before theirs):

1. Plausible pairs, ``-clock_skew_tolerance <= d <= max_travel_time``. Events are taken in
   time order (an entry counts at ``time + clock_skew_tolerance``, exits first on ties);
   each entry takes the most recent unpaired exit when that exit is plausible (a stack).
2. Anomalous pairs: each exit left over, in time order, takes the nearest left-over entry
   with ``|d| <= window`` (ties: earlier entry). These are ``timing_anomaly``: the entry was
   recorded before the exit beyond the tolerance, or the travel time is implausible.
3. Duplicates: a left-over crossing is a ``duplicate`` when a crossing of the same document,
   side, post and direction within ``duplicate_interval`` is paired, or is an earlier
   left-over that is not itself a duplicate (a double registration).

Outcomes, one per *case* (a pair is one case, an unpaired or duplicate crossing is one):

* ``matched``: a plausible pair whose shared attributes agree;
* ``data_mismatch``: a pair (plausible or not) where nationality, date of birth, document
  expiry or the name pseudonym disagree (a forgery indicator); unknown values (None) are not
  compared;
* ``timing_anomaly``: an anomalous pair whose attributes agree;
* ``duplicate``: see 3;
* ``exit_without_entry`` / ``entry_without_exit``: an unpaired crossing whose window has
  passed (``time + window <= as_of``);
* ``pending``: an unpaired crossing whose window is still open (the counterpart may come).

``match_rate`` is ``matched / (cases - pending)``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "MISSING",
    "CrossingFact",
    "Discrepancy",
    "FactTable",
    "Outcome",
    "ReconcileConfig",
    "ReconcileResult",
    "reconcile",
    "report",
    "report_csv",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
MISSING = -1  # an unknown date ordinal or attribute code

_MISMATCH_FIELDS = ("nationality", "date_of_birth", "document_expiry", "name")
_CSV_COLUMNS = (
    "kind",
    "our_post",
    "their_post",
    "our_ids",
    "their_ids",
    "doc_pseudonym",
    "at",
    "fields",
    "reason",
)


class Outcome(StrEnum):
    """The outcome of one reconciliation case."""

    MATCHED = "matched"
    PENDING = "pending"
    EXIT_WITHOUT_ENTRY = "exit_without_entry"
    ENTRY_WITHOUT_EXIT = "entry_without_exit"
    DATA_MISMATCH = "data_mismatch"
    DUPLICATE = "duplicate"
    TIMING_ANOMALY = "timing_anomaly"


_OUTCOMES = tuple(Outcome)
_CODE = {outcome: code for code, outcome in enumerate(_OUTCOMES)}


@dataclass(frozen=True, slots=True)
class CrossingFact:
    """What reconciliation needs of one crossing (either side).

    ``occurred_at`` is a timezone-aware datetime or Unix seconds (UTC). ``doc_pseudonym`` is
    ``sync.agreements.pseudonym("document_number", number, issuing_state=...)``;
    ``name_pseudonym`` (optional) the ``"name_key"`` pseudonym. Dates may be ``date`` or ISO
    strings; None means unknown and is never reported as a mismatch.
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


@dataclass(frozen=True)
class ReconcileConfig:
    """Time rules. Requires ``0 <= clock_skew_tolerance < max_travel_time <= window`` and
    ``0 <= duplicate_interval <= window``; ``as_of`` timezone-aware."""

    as_of: datetime
    window: timedelta = timedelta(hours=24)
    max_travel_time: timedelta = timedelta(hours=12)
    clock_skew_tolerance: timedelta = timedelta(minutes=10)
    duplicate_interval: timedelta = timedelta(hours=1)

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


def _epochs(values: Sequence[Any] | np.ndarray) -> IntArray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return values.astype(np.int64)
    return np.fromiter((_epoch(value) for value in values), dtype=np.int64, count=len(values))


def _ordinals(values: Sequence[Any] | np.ndarray) -> IntArray:
    """Dates (or ISO strings, or None) -> proleptic ordinals, MISSING for None."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return values.astype(np.int64)
    cache: dict[Any, int] = {None: MISSING}

    def ordinal(value: Any) -> int:
        found = cache.get(value)
        if found is None:
            if isinstance(value, datetime):
                found = value.date().toordinal()
            elif isinstance(value, date):
                found = value.toordinal()
            else:
                found = date.fromisoformat(str(value)[:10]).toordinal()
            cache[value] = found
        return found

    return np.fromiter((ordinal(value) for value in values), dtype=np.int64, count=len(values))


def _exits(directions: Sequence[Any] | np.ndarray) -> BoolArray:
    if isinstance(directions, np.ndarray) and directions.dtype == np.bool_:
        return directions
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
    ordinals with ``MISSING`` (-1) for unknown. Build with ``from_facts`` or ``from_columns``.
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

    def __post_init__(self) -> None:
        size = len(self.ids)
        columns = (self.posts, self.is_exit, self.times, self.docs, self.names)
        columns += (self.nationalities, self.dobs, self.expiries)
        if any(len(column) != size for column in columns):
            raise ValueError("all FactTable columns must have the same length")
        if any(not doc for doc in self.docs):
            raise ValueError("every crossing needs a document pseudonym")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_columns(
        cls,
        *,
        ids: Sequence[str],
        posts: Sequence[str],
        directions: Sequence[str] | BoolArray,
        times: Sequence[datetime | int | float] | np.ndarray,
        docs: Sequence[str],
        names: Sequence[str | None] | None = None,
        nationalities: Sequence[str | None] | None = None,
        dobs: Sequence[date | str | None] | IntArray | None = None,
        expiries: Sequence[date | str | None] | IntArray | None = None,
    ) -> FactTable:
        """Columns of equal length; ``directions`` as "entry"/"exit" or a bool is-exit array;
        dates as date/ISO/None or int ordinals; omitted optional columns are unknown."""
        size = len(ids)
        unknown: list[None] = [None] * size
        return cls(
            ids=ids,
            posts=posts,
            is_exit=_exits(directions),
            times=_epochs(times),
            docs=docs,
            names=names if names is not None else unknown,
            nationalities=nationalities if nationalities is not None else unknown,
            dobs=_ordinals(dobs) if dobs is not None else np.full(size, MISSING, np.int64),
            expiries=(
                _ordinals(expiries) if expiries is not None else np.full(size, MISSING, np.int64)
            ),
        )

    @classmethod
    def from_facts(cls, facts: Sequence[CrossingFact]) -> FactTable:
        """Columns from ``CrossingFact`` objects."""
        return cls.from_columns(
            ids=[fact.id for fact in facts],
            posts=[fact.post for fact in facts],
            directions=[fact.direction for fact in facts],
            times=[fact.occurred_at for fact in facts],
            docs=[fact.doc_pseudonym for fact in facts],
            names=[fact.name_pseudonym for fact in facts],
            nationalities=[fact.nationality for fact in facts],
            dobs=[fact.date_of_birth for fact in facts],
            expiries=[fact.document_expiry for fact in facts],
        )


# ------------------------------------------------------------------------------------------
# Result
# ------------------------------------------------------------------------------------------
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
        return _rate(self.counts)

    def matched_pairs(self) -> Iterator[tuple[str, str]]:
        ours, theirs, our_ids, their_ids = self._matched
        for our_index, their_index in zip(ours.tolist(), theirs.tolist(), strict=True):
            yield our_ids[our_index], their_ids[their_index]


def _rate(counts: Mapping[Outcome, int]) -> float | None:
    decided = sum(counts.values()) - counts[Outcome.PENDING]
    return counts[Outcome.MATCHED] / decided if decided else None


# ------------------------------------------------------------------------------------------
# Pairing
# ------------------------------------------------------------------------------------------
@dataclass
class _Combined:
    """Both sides concatenated (ours first), attributes encoded as integers."""

    n_ours: int
    side: IntArray  # 0 ours, 1 theirs
    pair: IntArray  # pair index, -1 out of scope
    is_exit: BoolArray
    times: IntArray
    doc: IntArray
    name: IntArray
    nationality: IntArray
    dob: IntArray
    expiry: IntArray
    docs: list[str]  # code -> pseudonym
    nationalities: list[str]


def _factorise(*columns: Sequence[str | None]) -> tuple[IntArray, list[str]]:
    """Integer codes over the concatenated columns (None -> MISSING) and code -> value."""
    values = list(chain.from_iterable(columns))
    uniques = list(dict.fromkeys(values))
    lookup: dict[str | None, int] = dict(zip(uniques, range(len(uniques)), strict=True))
    codes = np.fromiter(map(lookup.__getitem__, values), dtype=np.int64, count=len(values))
    if None in lookup:
        codes[codes == lookup[None]] = MISSING
    return codes, [str(value) for value in uniques]  # the None slot is never looked up


def _pair_index(posts: Sequence[str], mapping: Mapping[str, int]) -> IntArray:
    lookup = {post: mapping.get(post, -1) for post in set(posts)}
    return np.fromiter(map(lookup.__getitem__, posts), dtype=np.int64, count=len(posts))


def _combine(ours: FactTable, theirs: FactTable, pairs: Sequence[tuple[str, str]]) -> _Combined:
    our_posts = {ours_post: index for index, (ours_post, _) in enumerate(pairs)}
    their_posts = {their_post: index for index, (_, their_post) in enumerate(pairs)}
    doc, docs = _factorise(ours.docs, theirs.docs)
    name, _ = _factorise(ours.names, theirs.names)
    nationality, nationalities = _factorise(ours.nationalities, theirs.nationalities)
    return _Combined(
        n_ours=len(ours),
        side=np.concatenate([np.zeros(len(ours), np.int64), np.ones(len(theirs), np.int64)]),
        pair=np.concatenate(
            [_pair_index(ours.posts, our_posts), _pair_index(theirs.posts, their_posts)]
        ),
        is_exit=np.concatenate([ours.is_exit, theirs.is_exit]),
        times=np.concatenate([ours.times, theirs.times]),
        doc=doc,
        name=name,
        nationality=nationality,
        dob=np.concatenate([ours.dobs, theirs.dobs]),
        expiry=np.concatenate([ours.expiries, theirs.expiries]),
        docs=docs,
        nationalities=nationalities,
    )


@dataclass
class _Pairing:
    """Raw pairing: pairs (exit, entry, plausible), unpaired crossings, duplicates."""

    pair_exit: list[IntArray] = field(default_factory=list)
    pair_entry: list[IntArray] = field(default_factory=list)
    pair_plausible: list[BoolArray] = field(default_factory=list)
    single: list[IntArray] = field(default_factory=list)
    duplicate: list[IntArray] = field(default_factory=list)
    primary: list[IntArray] = field(default_factory=list)

    def add_pairs(self, exits: IntArray, entries: IntArray, plausible: BoolArray) -> None:
        self.pair_exit.append(exits)
        self.pair_entry.append(entries)
        self.pair_plausible.append(plausible)


def _as_array(values: list[int]) -> IntArray:
    return np.array(values, dtype=np.int64)


def _resolve_group(
    members: list[int],
    times: Mapping[int, int],
    exits: Mapping[int, bool],
    limits: tuple[int, int, int, int],
) -> tuple[list[tuple[int, int, bool]], list[int], list[tuple[int, int]]]:
    """Pair one (flow, document) group; returns (pairs, unpaired, (duplicate, primary))."""
    skew, travel, window, interval = limits
    exit_seq = sorted((times[i], i) for i in members if exits[i])
    entry_seq = sorted((times[i], i) for i in members if not exits[i])
    partner: dict[int, int] = {}
    pairs: list[tuple[int, int, bool]] = []
    # 1. plausible pairs: each entry takes the most recent unpaired exit (a stack)
    events = [(t, 0, i) for t, i in exit_seq] + [(t + skew, 1, i) for t, i in entry_seq]
    events.sort()
    stack: list[int] = []
    for _, kind, i in events:
        if kind == 0:
            stack.append(i)
        elif stack and times[i] - times[stack[-1]] <= travel:
            x = stack.pop()
            partner[x], partner[i] = i, x
            pairs.append((x, i, True))
    # 2. anomalous pairs: each left-over exit takes the nearest left-over entry in the window
    for tx, x in exit_seq:
        if x in partner:
            continue
        best: tuple[int, int, int] | None = None
        for te, e in entry_seq:
            if e not in partner and abs(te - tx) <= window:
                candidate = (abs(te - tx), te, e)
                if best is None or candidate < best:
                    best = candidate
        if best is not None:
            partner[x], partner[best[2]] = best[2], x
            pairs.append((x, best[2], False))
    # 3. duplicates among the left-overs, per direction
    unpaired: list[int] = []
    duplicates: list[tuple[int, int]] = []
    for seq in (exit_seq, entry_seq):
        primaries: set[int] = set()
        for tc, c in seq:
            if c in partner:
                continue
            nearest: tuple[int, int, int] | None = None
            for ts, s in seq:
                if s != c and abs(ts - tc) <= interval and (s in partner or s in primaries):
                    candidate = (abs(ts - tc), ts, s)
                    if nearest is None or candidate < nearest:
                        nearest = candidate
            if nearest is None:
                primaries.add(c)
                unpaired.append(c)
            else:
                duplicates.append((c, nearest[2]))
    return pairs, unpaired, duplicates


def _sort_by_key_then_time(key: IntArray, times: IntArray) -> IntArray:
    """Permutation sorting by (key, time): one int64 argsort when it fits, else lexsort."""
    t0, t1 = int(times.min()), int(times.max())
    span = t1 - t0 + 1
    if int(key.max()) * span + span < 2**62:
        return np.argsort(key * span + (times - t0))
    return np.lexsort((times, key))


def _pair_all(data: _Combined, config: ReconcileConfig) -> _Pairing:
    """Group into sessions and pair them: one-exit/one-entry sessions vectorised, the rest
    through ``_resolve_group``.

    A session is a run of one (flow, document) group, in time order, without a gap longer
    than ``window``. No rule links crossings more than ``window`` apart (pairs need
    ``|d| <= window``, duplicates ``duplicate_interval <= window``), so pairing sessions
    separately gives the same result as pairing whole groups, and a commuter's month of
    crossings becomes many small sessions.
    """
    _, window, travel, skew, _ = config.seconds()
    result = _Pairing()
    scope = np.flatnonzero(data.pair >= 0)
    if scope.size == 0:
        return result
    # flow 2p: our exits with their entries; 2p+1: their exits with our entries
    ours_exit_or_their_entry = (data.side[scope] == 0) == data.is_exit[scope]
    flow = data.pair[scope] * 2 + np.where(ours_exit_or_their_entry, 0, 1)
    key = flow * max(len(data.docs), 1) + data.doc[scope]
    permutation = _sort_by_key_then_time(key, data.times[scope])
    order, sorted_key = scope[permutation], key[permutation]
    sorted_times = data.times[order]
    breaks = (sorted_key[1:] != sorted_key[:-1]) | (np.diff(sorted_times) > window)
    starts = np.flatnonzero(np.r_[True, breaks])
    sizes = np.diff(np.r_[starts, order.size])
    n_exit = np.add.reduceat(data.is_exit[order].astype(np.int64), starts)
    # sessions of one crossing
    result.single.append(order[starts[sizes == 1]])
    # sessions of one exit and one entry
    two = starts[(sizes == 2) & (n_exit == 1)]
    first, second = order[two], order[two + 1]
    first_is_exit = data.is_exit[first]
    exits = np.where(first_is_exit, first, second)
    entries = np.where(first_is_exit, second, first)
    delta = data.times[entries] - data.times[exits]
    plausible = (delta >= -skew) & (delta <= travel)
    paired = plausible | (np.abs(delta) <= window)
    result.add_pairs(exits[paired], entries[paired], plausible[paired])
    result.single.append(np.concatenate([exits[~paired], entries[~paired]]))
    # everything else
    complex_sessions = np.flatnonzero((sizes > 2) | ((sizes == 2) & (n_exit != 1)))
    _pair_complex(data, order, starts[complex_sessions], sizes[complex_sessions], result, config)
    return result


def _pair_complex(
    data: _Combined,
    order: IntArray,
    starts: IntArray,
    sizes: IntArray,
    result: _Pairing,
    config: ReconcileConfig,
) -> None:
    _, window, travel, skew, interval = config.seconds()
    limits = (skew, travel, window, interval)
    pairs: list[tuple[int, int, bool]] = []
    singles: list[int] = []
    duplicates: list[tuple[int, int]] = []
    if starts.size:
        members_all = np.concatenate(
            [order[start : start + size] for start, size in zip(starts, sizes, strict=True)]
        )
        times = dict(zip(members_all.tolist(), data.times[members_all].tolist(), strict=True))
        exits = dict(zip(members_all.tolist(), data.is_exit[members_all].tolist(), strict=True))
        offset = 0
        members_list = members_all.tolist()
        for size in sizes.tolist():
            group = members_list[offset : offset + size]
            offset += size
            group_pairs, group_singles, group_duplicates = _resolve_group(
                group, times, exits, limits
            )
            pairs += group_pairs
            singles += group_singles
            duplicates += group_duplicates
    result.add_pairs(
        _as_array([p[0] for p in pairs]),
        _as_array([p[1] for p in pairs]),
        np.array([p[2] for p in pairs], dtype=np.bool_),
    )
    result.single.append(_as_array(singles))
    result.duplicate.append(_as_array([d[0] for d in duplicates]))
    result.primary.append(_as_array([d[1] for d in duplicates]))


# ------------------------------------------------------------------------------------------
# Classification
# ------------------------------------------------------------------------------------------
def _mismatch_bits(data: _Combined, a: IntArray, b: IntArray) -> IntArray:
    """Bit i set when attribute _MISMATCH_FIELDS[i] is known on both sides and differs."""
    bits = np.zeros(a.size, dtype=np.int64)
    columns = (data.nationality, data.dob, data.expiry, data.name)
    for bit, column in enumerate(columns):
        left, right = column[a], column[b]
        bits |= ((left != right) & (left != MISSING) & (right != MISSING)).astype(np.int64) << bit
    return bits


@dataclass
class _Cases:
    """Every case: its outcome code, pair index and the crossings involved."""

    outcome: IntArray
    pair: IntArray
    first: IntArray  # pair: exit; single/duplicate: the crossing
    second: IntArray  # pair: entry; duplicate: the primary; single: -1
    bits: IntArray  # pair: mismatch bits
    plausible: BoolArray


def _cat(arrays: list[npt.NDArray[Any]], dtype: type = np.int64) -> npt.NDArray[Any]:
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)


def _classify(data: _Combined, raw: _Pairing, config: ReconcileConfig) -> _Cases:
    as_of, window, *_ = config.seconds()
    exits, entries = _cat(raw.pair_exit), _cat(raw.pair_entry)
    plausible = _cat(raw.pair_plausible, np.bool_)
    bits = _mismatch_bits(data, exits, entries)
    pair_outcome = np.where(
        bits != 0,
        _CODE[Outcome.DATA_MISMATCH],
        np.where(plausible, _CODE[Outcome.MATCHED], _CODE[Outcome.TIMING_ANOMALY]),
    )
    singles = _cat(raw.single)
    single_outcome = np.where(
        data.times[singles] + window > as_of,
        _CODE[Outcome.PENDING],
        np.where(
            data.is_exit[singles],
            _CODE[Outcome.EXIT_WITHOUT_ENTRY],
            _CODE[Outcome.ENTRY_WITHOUT_EXIT],
        ),
    )
    duplicates, primaries = _cat(raw.duplicate), _cat(raw.primary)
    none = np.full(singles.size, -1, np.int64)
    return _Cases(
        outcome=np.concatenate(
            [pair_outcome, single_outcome, np.full(duplicates.size, _CODE[Outcome.DUPLICATE])]
        ).astype(np.int64),
        pair=data.pair[np.concatenate([exits, singles, duplicates])],
        first=np.concatenate([exits, singles, duplicates]),
        second=np.concatenate([entries, none, primaries]),
        bits=np.concatenate([bits, np.zeros(singles.size + duplicates.size, np.int64)]),
        plausible=np.concatenate(
            [plausible, np.zeros(singles.size + duplicates.size, dtype=np.bool_)]
        ),
    )


# ------------------------------------------------------------------------------------------
# Discrepancies
# ------------------------------------------------------------------------------------------
def _duration(seconds: int) -> str:
    """Compact duration: ``45s``, ``3m``, ``1h30m``, ``24h``, ``3d4h``."""
    seconds = abs(int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours >= 48:
        days, hours = divmod(hours, 24)
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def _stamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


class _Describer:
    """Builds ``Discrepancy`` objects (ids, posts and reasons) for non-matched cases."""

    def __init__(
        self,
        data: _Combined,
        ours: FactTable,
        theirs: FactTable,
        pairs: Sequence[tuple[str, str]],
        config: ReconcileConfig,
    ) -> None:
        self.data = data
        self.our_ids, self.their_ids = ours.ids, theirs.ids
        self.pairs = pairs
        _, self.window, self.travel, self.skew, _ = config.seconds()
        self.partner: dict[int, int] = {}
        self.pair_of: dict[int, int] = {}
        self.time_of: dict[int, int] = {}
        self.exit_of: dict[int, bool] = {}
        self.doc_of: dict[int, int] = {}
        self.attributes_of: dict[int, tuple[int, int, int]] = {}

    def load(self, involved: IntArray, partner: IntArray) -> None:
        """Gather, as plain Python values, what the involved crossings' reasons need."""
        data, keys = self.data, involved.tolist()

        def gather(column: npt.NDArray[Any]) -> dict[int, Any]:
            return dict(zip(keys, column[involved].tolist(), strict=True))

        self.pair_of, self.time_of = gather(data.pair), gather(data.times)
        self.exit_of, self.doc_of = gather(data.is_exit), gather(data.doc)
        attributes = np.stack([data.nationality, data.dob, data.expiry], axis=1)
        self.attributes_of = {k: tuple(v) for k, v in gather(attributes).items()}
        self.partner = {k: v for k, v in gather(partner).items() if v >= 0}

    def side(self, index: int) -> str:
        return "our" if index < self.data.n_ours else "partner"

    def post(self, index: int) -> str:
        our_post, their_post = self.pairs[self.pair_of[index]]
        return our_post if index < self.data.n_ours else their_post

    def ident(self, index: int) -> str:
        n_ours = self.data.n_ours
        return self.our_ids[index] if index < n_ours else self.their_ids[index - n_ours]

    def build(
        self, kind: Outcome, indices: list[int], reason: str, fields: Sequence[str] = ()
    ) -> Discrepancy:
        n_ours, time_of = self.data.n_ours, self.time_of
        ours: list[str] = []
        theirs: list[str] = []
        earliest = time_of[indices[0]]
        for index in indices:
            if index < n_ours:
                ours.append(self.our_ids[index])
            else:
                theirs.append(self.their_ids[index - n_ours])
            earliest = min(earliest, time_of[index])
        return Discrepancy(
            kind=kind,
            pair=self.pairs[self.pair_of[indices[0]]],
            our_ids=tuple(ours),
            their_ids=tuple(theirs),
            doc_pseudonym=self.data.docs[self.doc_of[indices[0]]],
            at=datetime.fromtimestamp(earliest, UTC),
            reason=reason,
            fields=tuple(fields),
        )

    def unpaired(self, kind: Outcome, index: int) -> Discrepancy:
        other_side = "partner" if index < self.data.n_ours else "our"
        pair = self.pairs[self.pair_of[index]]
        other_post = pair[1] if index < self.data.n_ours else pair[0]
        when = _stamp(self.time_of[index])
        span = _duration(self.window)
        if kind is Outcome.EXIT_WITHOUT_ENTRY:
            reason = f"{self.side(index)} exit at {self.post(index)} on {when}: no {other_side} "
            reason += f"entry at {other_post} within {span}"
        else:
            reason = f"{self.side(index)} entry at {self.post(index)} on {when}: no {other_side} "
            reason += f"exit at {other_post} within {span}"
        return self.build(kind, [index], reason)

    def timing(self, exit_index: int, entry_index: int) -> str:
        delta = self.time_of[entry_index] - self.time_of[exit_index]
        exit_post, entry_post = self.post(exit_index), self.post(entry_index)
        if delta < -self.skew:
            return (
                f"entry at {entry_post} recorded {_duration(delta)} before the exit at "
                f"{exit_post} (clock-skew tolerance {_duration(self.skew)})"
            )
        return (
            f"travel time {_duration(delta)} from {exit_post} to {entry_post} exceeds "
            f"{_duration(self.travel)}"
        )

    def mismatch(
        self, exit_index: int, entry_index: int, bits: int, plausible: bool
    ) -> Discrepancy:
        data = self.data
        names = [name for bit, name in enumerate(_MISMATCH_FIELDS) if bits >> bit & 1]
        details = []
        for name in names:
            details.append(self._values(name, exit_index, entry_index))
        reason = "same document, different " + "; ".join(details)
        if not plausible:
            reason += "; also " + self.timing(exit_index, entry_index)
        ours_first = exit_index < data.n_ours
        indices = [exit_index, entry_index] if ours_first else [entry_index, exit_index]
        return self.build(Outcome.DATA_MISMATCH, indices, reason, names)

    def _values(self, name: str, exit_index: int, entry_index: int) -> str:
        ours, theirs = sorted((exit_index, entry_index))
        if name == "name":
            return "name (pseudonyms differ)"
        column = _MISMATCH_FIELDS.index(name)
        left, right = self.attributes_of[ours][column], self.attributes_of[theirs][column]
        if name == "nationality":
            names = self.data.nationalities
            return f"nationality (ours {names[left]}, theirs {names[right]})"
        left, right = date.fromordinal(left).isoformat(), date.fromordinal(right).isoformat()
        return f"{name} (ours {left}, theirs {right})"

    def duplicate(self, index: int, primary: int) -> Discrepancy:
        direction = "exit" if self.exit_of[index] else "entry"
        gap = _duration(self.time_of[index] - self.time_of[primary])
        reason = (
            f"{self.side(index)} {direction} at {self.post(index)} registered twice, {gap} apart"
        )
        indices = [index, primary]
        counterpart = self.partner.get(primary)
        if counterpart is not None:
            reason += f"; both would pair with {self.ident(counterpart)}"
            indices.append(counterpart)
        else:
            reason += "; neither has a counterpart"
        return self.build(Outcome.DUPLICATE, indices, reason)


def _discrepancies(cases: _Cases, describer: _Describer) -> list[Discrepancy]:
    code = {c: o for o, c in _CODE.items()}
    paired = np.isin(cases.outcome, [_CODE[o] for o in _PAIR_OUTCOMES])
    partner = np.full(describer.data.times.size, -1, dtype=np.int64)
    partner[cases.first[paired]] = cases.second[paired]
    partner[cases.second[paired]] = cases.first[paired]
    wanted = np.flatnonzero(
        ~np.isin(cases.outcome, [_CODE[Outcome.MATCHED], _CODE[Outcome.PENDING]])
    )
    firsts, seconds = cases.first[wanted], cases.second[wanted]
    seconds = seconds[seconds >= 0]
    thirds = partner[seconds]
    describer.load(np.unique(np.concatenate([firsts, seconds, thirds[thirds >= 0]])), partner)
    out: list[Discrepancy] = []
    rows = zip(
        cases.outcome[wanted].tolist(),
        cases.first[wanted].tolist(),
        cases.second[wanted].tolist(),
        cases.bits[wanted].tolist(),
        cases.plausible[wanted].tolist(),
        strict=True,
    )
    for outcome_code, first, second, bits, plausible in rows:
        kind = code[outcome_code]
        if kind is Outcome.DATA_MISMATCH:
            out.append(describer.mismatch(first, second, bits, plausible))
        elif kind is Outcome.TIMING_ANOMALY:
            reason = describer.timing(first, second)
            indices = sorted((first, second))
            out.append(describer.build(kind, indices, reason))
        elif kind is Outcome.DUPLICATE:
            out.append(describer.duplicate(first, second))
        else:
            out.append(describer.unpaired(kind, first))
    out.sort(key=lambda d: (d.pair, d.at, d.kind.value, d.our_ids, d.their_ids))
    return out


_PAIR_OUTCOMES = (Outcome.MATCHED, Outcome.DATA_MISMATCH, Outcome.TIMING_ANOMALY)


# ------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------
def _table(facts: Sequence[CrossingFact] | FactTable) -> FactTable:
    return facts if isinstance(facts, FactTable) else FactTable.from_facts(facts)


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    result = tuple((str(ours), str(theirs)) for ours, theirs in pairs)
    for side in (0, 1):
        posts = [pair[side] for pair in result]
        if len(set(posts)) != len(posts):
            raise ValueError("a post may appear in only one pair")
    return result


def _count(cases: _Cases, n_pairs: int) -> IntArray:
    width = len(_OUTCOMES)
    flat = np.bincount(cases.pair * width + cases.outcome, minlength=n_pairs * width)
    return flat.reshape(n_pairs, width) if n_pairs else np.zeros((0, width), np.int64)


def reconcile(
    ours: Sequence[CrossingFact] | FactTable,
    theirs: Sequence[CrossingFact] | FactTable,
    *,
    pairs: Sequence[tuple[str, str]],
    config: ReconcileConfig,
) -> ReconcileResult:
    """Pair our crossings with the partner's over ``pairs`` of ``(our post, their post)``.

    See the module docstring for the rules. Raises ValueError for a post in two pairs, a
    naive datetime, an unknown direction or a missing document pseudonym.
    """
    pairs = _check_pairs(pairs)
    our_table, their_table = _table(ours), _table(theirs)
    data = _combine(our_table, their_table, pairs)
    cases = _classify(data, _pair_all(data, config), config)
    describer = _Describer(data, our_table, their_table, pairs, config)
    discrepancies = _discrepancies(cases, describer)
    per_pair = _count(cases, len(pairs))
    matched = cases.outcome == _CODE[Outcome.MATCHED]
    first, second = cases.first[matched], cases.second[matched]
    our_index = np.where(first < data.n_ours, first, second)
    their_index = np.where(first < data.n_ours, second, first) - data.n_ours
    in_scope = data.pair >= 0
    crossings = np.bincount(
        data.pair[in_scope] * 2 + data.side[in_scope], minlength=len(pairs) * 2
    ).reshape(len(pairs), 2)
    return ReconcileResult(
        config=config,
        pairs=pairs,
        counts={o: int(per_pair[:, _CODE[o]].sum()) for o in _OUTCOMES},
        counts_by_pair={
            pair: {o: int(per_pair[i, _CODE[o]]) for o in _OUTCOMES} for i, pair in enumerate(pairs)
        },
        crossings_by_pair={
            pair: (int(crossings[i, 0]), int(crossings[i, 1])) for i, pair in enumerate(pairs)
        },
        discrepancies=discrepancies,
        ours_total=len(our_table),
        theirs_total=len(their_table),
        out_of_scope=int((~in_scope).sum()),
        _matched=(our_index, their_index, our_table.ids, their_table.ids),
    )


# ------------------------------------------------------------------------------------------
# Reports
# ------------------------------------------------------------------------------------------
def _selected(
    result: ReconcileResult, pair: tuple[str, str] | None
) -> tuple[Mapping[Outcome, int], list[Discrepancy]]:
    if pair is None:
        return result.counts, result.discrepancies
    pair = (pair[0], pair[1])
    if pair not in result.counts_by_pair:
        raise ValueError(f"{pair[0]}<->{pair[1]} is not a reconciled pair")
    return result.counts_by_pair[pair], [d for d in result.discrepancies if d.pair == pair]


def report(
    result: ReconcileResult,
    *,
    period: tuple[date, date] | None = None,
    pair: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """JSON-able report: period, settings, counts, match rate, per-pair figures and
    discrepancies; restricted to one ``(our post, their post)`` pair when given."""
    counts, discrepancies = _selected(result, pair)
    config = result.config
    pairs = [pair] if pair is not None else list(result.pairs)
    return {
        "period": (
            {"from": period[0].isoformat(), "to": period[1].isoformat()} if period else None
        ),
        "as_of": config.as_of.astimezone(UTC).isoformat(),
        "pair": {"ours": pair[0], "theirs": pair[1]} if pair is not None else None,
        "settings": {
            "window_seconds": int(config.window.total_seconds()),
            "max_travel_time_seconds": int(config.max_travel_time.total_seconds()),
            "clock_skew_tolerance_seconds": int(config.clock_skew_tolerance.total_seconds()),
            "duplicate_interval_seconds": int(config.duplicate_interval.total_seconds()),
        },
        "crossings": {
            "ours": sum(result.crossings_by_pair[p][0] for p in pairs),
            "theirs": sum(result.crossings_by_pair[p][1] for p in pairs),
            "out_of_scope": result.out_of_scope if pair is None else None,
        },
        "counts": {outcome.value: counts[outcome] for outcome in _OUTCOMES},
        "match_rate": _rate(counts),
        "by_pair": [
            {
                "ours": p[0],
                "theirs": p[1],
                "crossings": {
                    "ours": result.crossings_by_pair[p][0],
                    "theirs": result.crossings_by_pair[p][1],
                },
                "counts": {o.value: result.counts_by_pair[p][o] for o in _OUTCOMES},
                "match_rate": _rate(result.counts_by_pair[p]),
            }
            for p in pairs
        ],
        "discrepancies": [d.as_dict() for d in discrepancies],
    }


def report_csv(result: ReconcileResult, *, pair: tuple[str, str] | None = None) -> str:
    """The discrepancies as CSV (header row first; ids joined with ';')."""
    _, discrepancies = _selected(result, pair)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for d in discrepancies:
        writer.writerow(
            [
                d.kind.value,
                d.pair[0],
                d.pair[1],
                ";".join(d.our_ids),
                ";".join(d.their_ids),
                d.doc_pseudonym,
                d.at.isoformat(),
                ";".join(d.fields),
                d.reason,
            ]
        )
    return buffer.getvalue()
