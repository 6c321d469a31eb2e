"""Crossing pairing between two countries: each exit must meet the partner's entry.

Pure functions over in-memory facts (no database, no HTTP). The national node loads both
sides' crossings for a period (plus ``window`` of margin on both ends), turns them into
``CrossingFact`` values (or a columnar ``FactTable``) and calls ``reconcile``
(``sync.reconcile.service`` does that; ``sync.reconcile.report`` presents the result).

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
* ``other_document``: 4. after the rules above, an exit and an entry left unpaired (or
  pending) in the same flow whose person pseudonyms agree (same name, birth date and
  nationality) but whose documents differ, with ``-clock_skew_tolerance <= d <= window``:
  linked, nearest entry first, as one case (the traveller changed documents on the way).

With ``config.name_is_person`` the name pseudonym is the person element: a data mismatch
names the name only when birth date and nationality (compared on their own) agree.

``match_rate`` is ``matched / (cases - pending)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sync.reconcile.discrepancies import describe_discrepancies
from sync.reconcile.model import (
    OUTCOMES,
    CrossingFact,
    FactTable,
    IntArray,
    Outcome,
    ReconcileConfig,
    ReconcileResult,
)
from sync.reconcile.pairing import (
    OUTCOME_CODE,
    Cases,
    combine,
    link_other_documents,
    pair_crossings,
)


def _table(facts: Sequence[CrossingFact] | FactTable, pseudonyms: dict[str, int]) -> FactTable:
    return facts if isinstance(facts, FactTable) else FactTable.from_facts(facts, pseudonyms)


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    result = tuple((str(ours), str(theirs)) for ours, theirs in pairs)
    for side in (0, 1):
        posts = [pair[side] for pair in result]
        if len(set(posts)) != len(posts):
            raise ValueError("a post may appear in only one pair")
    return result


def _count(cases: Cases, n_pairs: int) -> IntArray:
    width = len(OUTCOMES)
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
    pseudonyms: dict[str, int] = {}  # one numbering of pseudonymised dates for both sides
    our_table, their_table = _table(ours, pseudonyms), _table(theirs, pseudonyms)
    data = combine(our_table, their_table, pairs)
    cases = link_other_documents(data, pair_crossings(data, config), config)
    discrepancies = describe_discrepancies(data, cases, our_table, their_table, pairs, config)
    per_pair = _count(cases, len(pairs))
    matched = cases.outcome == OUTCOME_CODE[Outcome.MATCHED]
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
        counts={o: int(per_pair[:, OUTCOME_CODE[o]].sum()) for o in OUTCOMES},
        counts_by_pair={
            pair: {o: int(per_pair[i, OUTCOME_CODE[o]]) for o in OUTCOMES}
            for i, pair in enumerate(pairs)
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
