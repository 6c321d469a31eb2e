"""The discrepancies of a reconciliation: which crossings are involved, and why, in words.

``describe_discrepancies`` turns every case that is neither matched nor pending into a
``Discrepancy`` naming the posts, the crossings on each side and a reason a liaison officer
can act on (``"our exit at MR-GOGUI on 2026-03-01 08:00 UTC: no partner entry at ML-GOGUI
within 24h"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from sync.reconcile.model import (
    PSEUDONYM_CODES,
    Discrepancy,
    FactTable,
    IntArray,
    Outcome,
    ReconcileConfig,
    is_pseudonym,
)
from sync.reconcile.pairing import MISMATCH_FIELDS, OUTCOME_CODE, Cases, Combined

# Outcomes of a case that is a pair (the others are one crossing, or a duplicate).
PAIR_OUTCOMES: Final = (
    Outcome.MATCHED,
    Outcome.DATA_MISMATCH,
    Outcome.TIMING_ANOMALY,
    Outcome.OTHER_DOCUMENT,
)


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
        data: Combined,
        ours: FactTable,
        theirs: FactTable,
        pairs: Sequence[tuple[str, str]],
        config: ReconcileConfig,
    ) -> None:
        self.data = data
        self.our_ids, self.their_ids = ours.ids, theirs.ids
        self.pairs = pairs
        _, self.window, self.travel, self.skew, _ = config.seconds()
        self.name_is_person = config.name_is_person
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
        names = [name for bit, name in enumerate(MISMATCH_FIELDS) if bits >> bit & 1]
        if self.name_is_person and "name" in names and len(names) > 1:
            names.remove("name")  # the person element differs because of the others
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
        column = MISMATCH_FIELDS.index(name)
        left, right = self.attributes_of[ours][column], self.attributes_of[theirs][column]
        if name == "nationality":
            names = self.data.nationalities
            if is_pseudonym(names[left]) or is_pseudonym(names[right]):
                return "nationality (pseudonyms differ)"
            return f"nationality (ours {names[left]}, theirs {names[right]})"
        if left >= PSEUDONYM_CODES or right >= PSEUDONYM_CODES:
            return f"{name} (pseudonyms differ)"
        ours_date, theirs_date = date.fromordinal(left), date.fromordinal(right)
        return f"{name} (ours {ours_date.isoformat()}, theirs {theirs_date.isoformat()})"

    def other_document(self, exit_index: int, entry_index: int) -> Discrepancy:
        delta = self.time_of[entry_index] - self.time_of[exit_index]
        reason = (
            f"{self.side(exit_index)} exit at {self.post(exit_index)} on "
            f"{_stamp(self.time_of[exit_index])} and {self.side(entry_index)} entry at "
            f"{self.post(entry_index)} {_duration(delta)} later: same name, birth date and "
            "nationality, different documents"
        )
        indices = sorted((exit_index, entry_index))
        return self.build(Outcome.OTHER_DOCUMENT, indices, reason, ("document",))

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


def describe_discrepancies(
    data: Combined,
    cases: Cases,
    ours: FactTable,
    theirs: FactTable,
    pairs: Sequence[tuple[str, str]],
    config: ReconcileConfig,
) -> list[Discrepancy]:
    """Every case that is neither matched nor pending, as a ``Discrepancy`` with its reason;
    sorted by pair, time, kind and ids."""
    describer = _Describer(data, ours, theirs, pairs, config)
    code = {c: o for o, c in OUTCOME_CODE.items()}
    paired = np.isin(cases.outcome, [OUTCOME_CODE[o] for o in PAIR_OUTCOMES])
    partner = np.full(describer.data.times.size, -1, dtype=np.int64)
    partner[cases.first[paired]] = cases.second[paired]
    partner[cases.second[paired]] = cases.first[paired]
    wanted = np.flatnonzero(
        ~np.isin(cases.outcome, [OUTCOME_CODE[Outcome.MATCHED], OUTCOME_CODE[Outcome.PENDING]])
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
        elif kind is Outcome.OTHER_DOCUMENT:
            out.append(describer.other_document(first, second))
        else:
            out.append(describer.unpaired(kind, first))
    out.sort(key=lambda d: (d.pair, d.at, d.kind.value, d.our_ids, d.their_ids))
    return out
