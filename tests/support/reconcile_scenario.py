"""A reconciliation scenario with known ground truth for every outcome."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sync.reconcile.model import CrossingFact, ReconcileConfig

GOGUI = ("MR-GOGUI", "ML-GOGUI")


KOBENI = ("MR-KOBENI", "ML-NIORO")


PAIRS = [GOGUI, KOBENI]


AS_OF = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


CONFIG = ReconcileConfig(as_of=AS_OF)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def fact(
    ident: str, post: str, direction: str, when: datetime, doc: str, **kw: object
) -> CrossingFact:
    return CrossingFact(ident, post, direction, when, doc, **kw)  # type: ignore[arg-type]


def our_exit(ident: str, when: datetime, doc: str, **kw: object) -> CrossingFact:
    return fact(ident, "MR-GOGUI", "exit", when, doc, **kw)


def their_entry(ident: str, when: datetime, doc: str, **kw: object) -> CrossingFact:
    return fact(ident, "ML-GOGUI", "entry", when, doc, **kw)


def their_exit(ident: str, when: datetime, doc: str, **kw: object) -> CrossingFact:
    return fact(ident, "ML-NIORO", "exit", when, doc, **kw)


def our_entry(ident: str, when: datetime, doc: str, **kw: object) -> CrossingFact:
    return fact(ident, "MR-KOBENI", "entry", when, doc, **kw)


PERSON = {
    "nationality": "MRT",
    "date_of_birth": date(1990, 1, 1),
    "document_expiry": date(2030, 6, 30),
    "name_pseudonym": "n-1",
}


# Ground truth: id -> what must happen to it.
OURS = [
    our_exit("o-matched", at(1, 8), "A", **PERSON),
    our_exit("o-missing", at(1, 9), "B"),
    our_exit("o-forged", at(2, 10), "C", **PERSON),
    our_exit("o-dup-first", at(2, 11), "D"),
    our_exit("o-dup-second", at(2, 11, 3), "D"),
    our_exit("o-skew-ok", at(3, 12), "E"),
    our_exit("o-skew-bad", at(3, 14), "F"),
    our_exit("o-pending", at(10, 6), "G"),
    our_exit("o-slow", at(4, 8), "H"),
    our_exit("o-commuter-1", at(5, 8), "J"),
    our_exit("o-commuter-2", at(6, 7, 50), "J"),
    our_entry("o-in-matched", at(5, 10, 30), "K"),
    our_entry("o-in-no-exit", at(6, 10), "L"),
    our_entry("o-in-dup-first", at(6, 10, 30), "M"),
    our_entry("o-in-dup-second", at(6, 10, 31), "M"),
    our_exit("o-twice-1", at(7, 9), "N"),
    our_exit("o-twice-2", at(7, 9, 2), "N"),
    our_exit("o-nat", at(7, 15), "P", nationality="MRT"),
    fact("o-unpaired-post", "MR-NKC", "exit", at(6, 10), "Z"),
    our_entry("o-in-pending", at(10, 1), "Q"),
]


THEIRS = [
    their_entry("t-matched", at(1, 8, 20), "A", **PERSON),
    their_entry("t-forged", at(2, 10, 15), "C", **(PERSON | {"date_of_birth": "1985-06-15"})),
    their_entry("t-dup", at(2, 11, 20), "D"),
    their_entry("t-skew-ok", at(3, 11, 55), "E"),  # 5 min before the exit: tolerated
    their_entry("t-skew-bad", at(3, 12, 30), "F"),  # 90 min before the exit
    their_entry("t-slow", at(4, 23), "H"),  # 15 h after the exit
    their_entry("t-commuter-2", at(6, 8), "J"),
    their_exit("t-out-matched", at(5, 10), "K"),
    their_exit("t-out-dup", at(6, 10), "M"),
    their_entry("t-nat", at(7, 15, 30), "P", nationality="SEN"),
]
