"""Name search recall and precision on a ground truth (issue 16).

A few hundred travellers are generated from name parts whose every spelling is known: each
part has its passport spellings (MOHAMED, MOHAMMED, MUHAMMAD...), spellings with accents
(Traoré, Keïta, Dembélé), local transliterations (Weld for Ould, Mennt for Mint, Fatimetou for
Fatima) and, where one exists, its Arabic script. Each traveller is stored under one passport
spelling, as the MRZ gives it. Queries take any non-empty subset of a traveller's parts, in
any order, each in another spelling: surname alone, given name alone, two parts reversed,
with accents, transliterated, in Arabic.

Relevant answers of a query: every traveller whose parts include all the queried parts (by
identity, not spelling). Recall at rank 10 = relevant answers in the first 10 results /
min(relevant, 10); precision = relevant answers among the results returned (at most 10).

Ours: what the post's ``search_by_name`` runs (candidates by ``names.candidate_patterns``,
here matched in Python with the same LIKE semantics, ranked by ``names.rank_by_query``) over
the name keys stored by a migrated SQLite post; the same ranking serves HQ.
Baseline, in the same run on the same keys: the search before issue 16
(rapidfuzz ``token_sort_ratio`` of the whole key, cutoff 80). Target: recall at 10 >= 99%.

Usage: .venv/bin/python bench/names.py [--travellers 400] [--queries 1000] [--seed 16]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process
from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.db import Database  # noqa: E402
from registry.migrate import upgrade_database  # noqa: E402
from registry.models import Traveller, utcnow  # noqa: E402
from registry.names import candidate_patterns, name_key, query_form, rank_by_query  # noqa: E402
from registry.settings import Settings  # noqa: E402

RECALL_TARGET = 0.99
RANK = 10

# part id -> (passport spellings, other spellings a person may type or say, Arabic script)
SURNAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "traore": (("TRAORE",), ("Traoré", "Traore", "TRAORÉ"), ""),
    "diallo": (("DIALLO",), ("Diallo", "Dialo", "Djallo"), ""),
    "keita": (("KEITA",), ("Keïta", "Keita", "Keyta"), ""),
    "dembele": (("DEMBELE",), ("Dembélé", "Dembele", "Dembelé"), ""),
    "coulibaly": (("COULIBALY",), ("Coulibaly", "Kulibali", "Couloubaly"), ""),
    "sissoko": (("SISSOKO",), ("Sissoko", "Sisoko"), ""),
    "kone": (("KONE",), ("Koné", "Kone"), ""),
    "toure": (("TOURE",), ("Touré", "Toure", "Turé"), ""),
    "camara": (("CAMARA",), ("Camara", "Kamara"), ""),
    "ndiaye": (("NDIAYE",), ("N'Diaye", "Ndiaye", "N'DIAYE"), ""),
    "sow": (("SOW",), ("Sow", "SOW"), ""),
    "ba": (("BA",), ("Bâ", "Ba"), ""),
    "salem": (("SALEM",), ("Salem", "Saalem"), "سالم"),
    "sidi": (("SIDI",), ("Sidi", "Sidy"), "سيدي"),
    "ahmed": (("AHMED", "AHMAD"), ("Ahmed", "Ahmad", "Ahmet"), "أحمد"),
    "cheikh": (("CHEIKH",), ("Cheikh", "Sheikh", "Cheick"), "الشيخ"),
    "mahmoud": (("MAHMOUD",), ("Mahmoud", "Mahmud"), "محمود"),
}
GIVEN: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "mohamed": (
        ("MOHAMED", "MOHAMMED", "MUHAMMAD"),
        ("Mohamed", "Mohammed", "Muhammad", "Mouhamed", "Mohamad"),
        "محمد",
    ),
    "fatima": (("FATIMA", "FATIMATA"), ("Fatimetou", "Fatma", "Fatoumata", "Fatima"), "فاطمة"),
    "aicha": (("AICHA", "AISHA"), ("Aïcha", "Aicha", "Aichetou", "Aisha"), "عائشة"),
    "moussa": (("MOUSSA",), ("Moussa", "Musa", "Mousa"), "موسى"),
    "seydou": (("SEYDOU",), ("Seydou", "Seidou"), ""),
    "oumar": (("OUMAR", "OMAR"), ("Oumar", "Omar", "Umar"), "عمر"),
    "awa": (("AWA",), ("Awa", "Awá"), ""),
    "kalifa": (("KALIFA",), ("Kalifa", "Khalifa"), ""),
    "ibrahim": (("IBRAHIM", "IBRAHIMA"), ("Ibrahim", "Brahim", "Ibrahima"), "إبراهيم"),
    "youssouf": (("YOUSSOUF",), ("Youssouf", "Yusuf", "Youssef"), "يوسف"),
    "abdallahi": (("ABDALLAHI",), ("Abdallahi", "Abdellahi", "Abdoulaye"), "عبدالله"),
    "mariam": (("MARIAM", "MARIEM"), ("Mariam", "Meriem", "Maryam"), "مريم"),
    "kadiatou": (("KADIATOU",), ("Kadiatou", "Kadiatu"), ""),
    "boubacar": (("BOUBACAR",), ("Boubacar", "Aboubakar", "Abubakar"), "أبوبكر"),
    "hawa": (("HAWA",), ("Hawa", "Hawaa"), ""),
}
# filiation particles: part of a Moorish name, never an identity on their own
PARTICLES = {
    "ould": ("OULD", ("Weld", "Ould", "O."), "ولد"),
    "mint": ("MINT", ("Mennt", "Mint", "Bint"), "منت"),
}


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    surname_parts: tuple[str, ...]  # part ids
    given_parts: tuple[str, ...]
    surname: str  # as on the passport
    given_names: str
    particle: str | None

    @property
    def parts(self) -> frozenset[str]:
        return frozenset(self.surname_parts + self.given_parts)


def make_people(count: int, rng: random.Random) -> list[Person]:
    people = []
    for _ in range(count):
        moorish = rng.random() < 0.35
        surname_parts = tuple(
            rng.sample(sorted(SURNAMES), 1 if not moorish else rng.choice((1, 2)))
        )
        given_parts = tuple(rng.sample(sorted(GIVEN), rng.choice((1, 1, 2, 2, 3))))
        particle = rng.choice(("ould", "mint")) if moorish else None
        surname_words = [rng.choice(SURNAMES[p][0]) for p in surname_parts]
        if particle:
            surname_words.insert(0, PARTICLES[particle][0])
        people.append(
            Person(
                id=uuid.uuid4(),
                surname_parts=surname_parts,
                given_parts=given_parts,
                surname=" ".join(surname_words),
                given_names=" ".join(rng.choice(GIVEN[p][0]) for p in given_parts),
                particle=particle,
            )
        )
    return people


def spoken(part: str, rng: random.Random, *, arabic: bool) -> str:
    table = SURNAMES if part in SURNAMES else GIVEN
    passport, typed, script = table[part]
    if arabic and script:
        return script
    return rng.choice(typed + passport)


@dataclass(frozen=True)
class Query:
    text: str
    parts: frozenset[str]
    kind: str


def make_queries(people: list[Person], count: int, rng: random.Random) -> list[Query]:
    queries = []
    kinds = ("surname", "given", "subset", "all_reversed", "arabic")
    for n in range(count):
        person = rng.choice(people)
        kind = kinds[n % len(kinds)]
        parts = list(person.surname_parts + person.given_parts)
        if kind == "surname":
            chosen = list(person.surname_parts)
        elif kind == "given":
            chosen = [rng.choice(person.given_parts)]
        elif kind == "subset":
            chosen = rng.sample(parts, rng.randint(1, len(parts)))
        else:
            chosen = list(reversed(parts))
        words = [spoken(p, rng, arabic=kind == "arabic") for p in chosen]
        if person.particle and kind in ("surname", "all_reversed") and rng.random() < 0.7:
            words.insert(0, rng.choice(PARTICLES[person.particle][1]))
        queries.append(Query(" ".join(words), frozenset(chosen), kind))
    return queries


def legacy_rank(key: str, keys: list[str], limit: int) -> list[tuple[int, float]]:
    """The post's name search before issue 16: the whole key, token_sort_ratio, cutoff 80."""
    scored = process.extract(
        key, keys, scorer=fuzz.token_sort_ratio, score_cutoff=80.0, limit=limit
    )
    return [(index, score) for _, score, index in scored]


def candidates(query: tuple[str, ...], keys: list[str]) -> list[int]:
    """The SQL candidate filter of the post's search (``candidate_patterns``), in Python."""
    patterns = candidate_patterns(query)
    exact = {p for p in patterns if "%" not in p}
    inner = [p.strip("%") for p in patterns if p.startswith("%") and p.endswith("%")]
    heads = [p[:-1] for p in patterns if not p.startswith("%") and p.endswith("%")]
    tails = [p[1:] for p in patterns if p.startswith("%") and not p.endswith("%")]
    return [
        i
        for i, key in enumerate(keys)
        if key in exact
        or any(t in key for t in inner)
        or any(key.startswith(h) for h in heads)
        or any(key.endswith(t) for t in tails)
    ]


def legacy_candidates(query_key: str, keys: list[str]) -> list[int]:
    """The candidate filter before issue 16: any query token of 3+ letters, anywhere."""
    tokens = [t for t in query_key.split() if len(t) >= 3] or query_key.split()
    return [i for i, key in enumerate(keys) if any(t in key for t in tokens)]


@dataclass
class Figures:
    recall: float
    precision: float
    by_kind: dict[str, float]


def evaluate(people: list[Person], queries: list[Query], results: list[list[int]]) -> Figures:
    recalls, precisions, kinds = [], [], {}
    for query, found in zip(queries, results, strict=True):
        relevant = {i for i, p in enumerate(people) if query.parts <= p.parts}
        top = found[:RANK]
        recall = len(relevant & set(top)) / min(len(relevant), RANK)
        recalls.append(recall)
        precisions.append(len(relevant & set(top)) / len(top) if top else 1.0)
        kinds.setdefault(query.kind, []).append(recall)
    return Figures(
        sum(recalls) / len(recalls),
        sum(precisions) / len(precisions),
        {k: sum(v) / len(v) for k, v in kinds.items()},
    )


async def stored_keys(people: list[Person]) -> list[str]:
    """Store the travellers on a migrated SQLite post and read their name keys back."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), node_code="MR-GOGUI", role="post")
        db = Database(settings)
        await upgrade_database(db.engine)
        rows = [
            {
                "id": p.id,
                "origin": "MR-GOGUI",
                "surname": p.surname,
                "given_names": p.given_names,
                "name_key": name_key(p.surname, p.given_names),
                "date_of_birth": None,
                "sex": "X",
                "nationality": "MRT",
                "created_at": utcnow(),
            }
            for p in people
        ]
        async with db.write_transaction() as session:
            await session.execute(insert(Traveller), rows)
        async with db.session() as session:
            stored = dict((await session.execute(select(Traveller.id, Traveller.name_key))).all())
        await db.dispose()
    return [stored[p.id] for p in people]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--travellers", type=int, default=400)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    people = make_people(args.travellers, rng)
    queries = make_queries(people, args.queries, rng)
    keys = asyncio.run(stored_keys(people))
    ours, baseline = [], []
    for query in queries:
        key, form = name_key(query.text, ""), query_form(query.text)
        pool = candidates(form, keys)
        ranked = rank_by_query(form, [keys[i] for i in pool], limit=50)
        ours.append([pool[i] for i, _ in ranked])
        before = legacy_candidates(key, keys)
        baseline.append([before[i] for i, _ in legacy_rank(key, [keys[i] for i in before], 50)])
    new, old = evaluate(people, queries, ours), evaluate(people, queries, baseline)
    print(f"name search: {len(people)} travellers, {len(queries)} queries (seed {args.seed})")
    print(f"  {'':14} {'ours':>8} {'before':>8}")
    print(f"  {'recall@10':14} {new.recall:8.1%} {old.recall:8.1%}")
    print(f"  {'precision@10':14} {new.precision:8.1%} {old.precision:8.1%}")
    for kind in new.by_kind:
        print(f"  {'  ' + kind:14} {new.by_kind[kind]:8.1%} {old.by_kind[kind]:8.1%}")
    ok = new.recall >= RECALL_TARGET
    print(f"  recall@10 {new.recall:.1%} >= {RECALL_TARGET:.0%}: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
