"""The pairing engine of reconciliation: both sides as integer columns, paired in sessions.

``combine`` puts our crossings and the partner's into one columnar ``Combined`` (ours first,
attributes encoded as integers); ``pair_crossings`` pairs them and gives every case its
outcome code (``Cases``). The rules are those of ``sync.reconcile.core``; this module is how
they run fast: crossings are sorted by (flow, document, time) and cut into sessions, the
common one-exit/one-entry session is paired with numpy, and the rest goes through
``_resolve_group``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from sync.reconcile.model import (
    MISSING,
    OUTCOMES,
    BoolArray,
    FactTable,
    IntArray,
    Outcome,
    ReconcileConfig,
)

# Attributes compared between an exit and its entry, in the bit order of ``Cases.bits``.
MISMATCH_FIELDS: Final = ("nationality", "date_of_birth", "document_expiry", "name")
# Outcome -> the integer code used in ``Cases.outcome``.
OUTCOME_CODE: Final[Mapping[Outcome, int]] = {
    outcome: code for code, outcome in enumerate(OUTCOMES)
}


@dataclass
class Combined:
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
    person: IntArray | None = None  # person element code, MISSING unknown


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


def combine(ours: FactTable, theirs: FactTable, pairs: Sequence[tuple[str, str]]) -> Combined:
    """Both sides in one set of columns, with each crossing's pair index (-1 out of scope)."""
    our_posts = {ours_post: index for index, (ours_post, _) in enumerate(pairs)}
    their_posts = {their_post: index for index, (_, their_post) in enumerate(pairs)}
    doc, docs = _factorise(ours.docs, theirs.docs)
    name, _ = _factorise(ours.names, theirs.names)
    nationality, nationalities = _factorise(ours.nationalities, theirs.nationalities)
    person = None
    if ours.persons is not None or theirs.persons is not None:
        person, _ = _factorise(
            ours.persons if ours.persons is not None else [None] * len(ours),
            theirs.persons if theirs.persons is not None else [None] * len(theirs),
        )
    return Combined(
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
        person=person,
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


def _pair_all(data: Combined, config: ReconcileConfig) -> _Pairing:
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
    data: Combined,
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
def _mismatch_bits(data: Combined, a: IntArray, b: IntArray) -> IntArray:
    """Bit i set when attribute MISMATCH_FIELDS[i] is known on both sides and differs."""
    bits = np.zeros(a.size, dtype=np.int64)
    columns = (data.nationality, data.dob, data.expiry, data.name)
    for bit, column in enumerate(columns):
        left, right = column[a], column[b]
        bits |= ((left != right) & (left != MISSING) & (right != MISSING)).astype(np.int64) << bit
    return bits


@dataclass
class Cases:
    """Every case: its outcome code, pair index and the crossings involved."""

    outcome: IntArray
    pair: IntArray
    first: IntArray  # pair: exit; single/duplicate: the crossing
    second: IntArray  # pair: entry; duplicate: the primary; single: -1
    bits: IntArray  # pair: mismatch bits
    plausible: BoolArray


def _cat(arrays: list[npt.NDArray[Any]], dtype: type = np.int64) -> npt.NDArray[Any]:
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)


def _classify(data: Combined, raw: _Pairing, config: ReconcileConfig) -> Cases:
    as_of, window, *_ = config.seconds()
    exits, entries = _cat(raw.pair_exit), _cat(raw.pair_entry)
    plausible = _cat(raw.pair_plausible, np.bool_)
    bits = _mismatch_bits(data, exits, entries)
    pair_outcome = np.where(
        bits != 0,
        OUTCOME_CODE[Outcome.DATA_MISMATCH],
        np.where(plausible, OUTCOME_CODE[Outcome.MATCHED], OUTCOME_CODE[Outcome.TIMING_ANOMALY]),
    )
    singles = _cat(raw.single)
    single_outcome = np.where(
        data.times[singles] + window > as_of,
        OUTCOME_CODE[Outcome.PENDING],
        np.where(
            data.is_exit[singles],
            OUTCOME_CODE[Outcome.EXIT_WITHOUT_ENTRY],
            OUTCOME_CODE[Outcome.ENTRY_WITHOUT_EXIT],
        ),
    )
    duplicates, primaries = _cat(raw.duplicate), _cat(raw.primary)
    none = np.full(singles.size, -1, np.int64)
    return Cases(
        outcome=np.concatenate(
            [
                pair_outcome,
                single_outcome,
                np.full(duplicates.size, OUTCOME_CODE[Outcome.DUPLICATE]),
            ]
        ).astype(np.int64),
        pair=data.pair[np.concatenate([exits, singles, duplicates])],
        first=np.concatenate([exits, singles, duplicates]),
        second=np.concatenate([entries, none, primaries]),
        bits=np.concatenate([bits, np.zeros(singles.size + duplicates.size, np.int64)]),
        plausible=np.concatenate(
            [plausible, np.zeros(singles.size + duplicates.size, dtype=np.bool_)]
        ),
    )


def pair_crossings(data: Combined, config: ReconcileConfig) -> Cases:
    """Every case of ``data``: each pair, unpaired crossing and duplicate, with its outcome."""
    return _classify(data, _pair_all(data, config), config)


def link_other_documents(data: Combined, cases: Cases, config: ReconcileConfig) -> Cases:
    """Rule 4 of ``sync.reconcile.core``: link an unpaired exit to an unpaired entry of the
    other side in the same flow when their person pseudonyms agree and their documents
    differ, ``-clock_skew_tolerance <= d <= window``, nearest entry first; each such pair
    replaces its two single cases by one ``other_document`` case."""
    if data.person is None:
        return cases
    single_codes = [
        OUTCOME_CODE[o]
        for o in (Outcome.EXIT_WITHOUT_ENTRY, Outcome.ENTRY_WITHOUT_EXIT, Outcome.PENDING)
    ]
    candidates = np.flatnonzero(np.isin(cases.outcome, single_codes) & (cases.second < 0))
    crossings = cases.first[candidates]
    known = data.person[crossings] != MISSING
    candidates, crossings = candidates[known], crossings[known]
    if candidates.size < 2:
        return cases
    _, window, _, skew, _ = config.seconds()
    entries: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
    for case, crossing in zip(candidates.tolist(), crossings.tolist(), strict=True):
        if not data.is_exit[crossing]:
            key = (int(data.pair[crossing]), int(data.side[crossing]), int(data.person[crossing]))
            entries.setdefault(key, []).append((int(data.times[crossing]), crossing, case))
    exits = sorted(
        (int(data.times[c]), c, case)
        for case, c in zip(candidates.tolist(), crossings.tolist(), strict=True)
        if data.is_exit[c]
    )
    linked: list[tuple[int, int, int, int]] = []  # exit case, entry case, exit, entry
    taken: set[int] = set()
    for time_exit, exit_crossing, exit_case in exits:
        other_side = 1 - int(data.side[exit_crossing])
        key = (int(data.pair[exit_crossing]), other_side, int(data.person[exit_crossing]))
        best: tuple[int, int, int, int] | None = None
        for time_entry, entry_crossing, entry_case in entries.get(key, ()):
            d = time_entry - time_exit
            if entry_case in taken or not -skew <= d <= window:
                continue
            if data.doc[entry_crossing] == data.doc[exit_crossing]:
                continue
            candidate = (abs(d), time_entry, entry_crossing, entry_case)
            if best is None or candidate < best:
                best = candidate
        if best is not None:
            taken.add(best[3])
            linked.append((exit_case, best[3], exit_crossing, best[2]))
    if not linked:
        return cases
    drop = np.array([c for link in linked for c in link[:2]], dtype=np.int64)
    keep = np.ones(cases.outcome.size, dtype=np.bool_)
    keep[drop] = False
    exits_linked = np.array([link[2] for link in linked], dtype=np.int64)
    entries_linked = np.array([link[3] for link in linked], dtype=np.int64)
    n = len(linked)
    return Cases(
        outcome=np.concatenate(
            [cases.outcome[keep], np.full(n, OUTCOME_CODE[Outcome.OTHER_DOCUMENT], np.int64)]
        ),
        pair=np.concatenate([cases.pair[keep], data.pair[exits_linked]]),
        first=np.concatenate([cases.first[keep], exits_linked]),
        second=np.concatenate([cases.second[keep], entries_linked]),
        bits=np.concatenate([cases.bits[keep], np.zeros(n, np.int64)]),
        plausible=np.concatenate([cases.plausible[keep], np.ones(n, np.bool_)]),
    )
