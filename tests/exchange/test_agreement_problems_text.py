"""Why an agreement is not in force reaches the national admin's page in the reader's
language: every problem ``agreement_status`` can give maps to a catalogue message."""

from __future__ import annotations

from datetime import date
from functools import partial
from pathlib import Path

import pytest

from registry.web.i18n import format_day, gettext_for
from registry.web.messages import agreement_problem
from sync.exchange.parsing import load_agreement
from sync.exchange.signing import agreement_status

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "agreements" / "mr-ml-2026.toml"


def _status_problems(today: date, revoked: str | None = None) -> list[str]:
    return agreement_status(load_agreement(EXAMPLE), today, revoked=revoked)[1]


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_every_problem_of_the_example_agreement_is_translated(lang: str) -> None:
    _ = gettext_for(lang)
    day = partial(format_day, lang)
    problems = [
        *_status_problems(date(2025, 6, 1), revoked="2026-03-01 by MLI"),
        *_status_problems(date(2028, 6, 1)),
        "the signature of MLI (ML-NATIONAL) does not verify",
    ]
    shapes = {p.split(" ")[0] for p in problems}
    assert {"revoked:", "parties[0].url:", "not", "expired", "the"} <= shapes
    for problem in problems:
        text = agreement_problem(problem, _, day)
        assert text != problem, problem  # a catalogue message, not the English as written
    french = agreement_problem(
        "expired on 2027-12-31", gettext_for("fr"), partial(format_day, "fr")
    )
    assert french == "Expiré le 31/12/2027"
    assert agreement_problem("not signed by MRT (MR-NATIONAL)", _, day).count("MRT (MR-NATIONAL)")


def test_an_unknown_problem_is_shown_as_written() -> None:
    assert agreement_problem("something new", gettext_for("fr"), str) == "something new"
