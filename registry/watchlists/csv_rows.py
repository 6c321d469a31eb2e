"""The checks of the data rows of a watchlist CSV file (``csv_files`` reads the file).

Each column's text goes through its ``registry.text`` rule, kinds and actions must be known,
dates ISO (YYYY-MM-DD) and countries 3-letter ICAO codes, then the entry's cross-field rules
apply (``content.content_problems``). A rejected row names every problem found, not only the
first. Photos are checked later, by ``csv_files``, as they are slow.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from registry.models import WATCHLIST_ACTIONS, WATCHLIST_KINDS
from registry.text import TextRefused, TextRule, clean_text, identifier
from registry.watchlists.content import EntryContent, content_problems, watchlist_entry_id
from registry.watchlists.schemas import (
    DOCUMENT_NUMBER,
    EXTERNAL_ID,
    GIVEN_NAMES,
    LISTING_REASON,
    SOURCE,
    SURNAME,
)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNTRY = re.compile(r"^[A-Z]{1,3}<{0,2}$")
_COLUMN_RULES: dict[str, TextRule] = {
    "external_id": EXTERNAL_ID,
    "surname": SURNAME,
    "given_names": GIVEN_NAMES,
    "document_number": DOCUMENT_NUMBER,
    "reason": LISTING_REASON,
    "source": SOURCE,
}
_OTHER_COLUMN = identifier(255)  # kind, action, dates, countries, photo: checked further


class RowRejected(Exception):
    """One data row is rejected; the message says why."""


@dataclass(frozen=True)
class WatchlistRow:
    """A data row that passed every check, ready to import."""

    line: int
    source: str
    external_id: str
    content: EntryContent
    keeps_valid_from: bool
    photo: str | None = None

    @property
    def entry_id(self) -> uuid.UUID:
        return watchlist_entry_id(self.source, self.external_id)


def _optional_text(raw: dict[str, str], column: str) -> str | None:
    """The column's clean text (``registry.text``), None when blank; refused text rejects
    the row, naming the column and the reason."""
    value = raw.get(column, "")
    if not value.strip():
        return None
    try:
        return clean_text(value, _COLUMN_RULES.get(column, _OTHER_COLUMN), column)
    except TextRefused as refused:
        raise RowRejected(f"{column}: {refused.reason}") from refused


def _required_text(raw: dict[str, str], column: str) -> str:
    value = _optional_text(raw, column)
    if value is None:
        raise RowRejected(f"{column}: required")
    return value


def _choice(raw: dict[str, str], column: str, allowed: tuple[str, ...]) -> str:
    value = _required_text(raw, column)
    if value not in allowed:
        raise RowRejected(f"{column}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _date(raw: dict[str, str], column: str) -> date | None:
    value = _optional_text(raw, column)
    if value is None:
        return None
    try:
        if not _ISO_DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError as exc:
        raise RowRejected(f"{column}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _country(raw: dict[str, str], column: str) -> str | None:
    value = _optional_text(raw, column)
    if value is None:
        return None
    value = value.upper()
    if len(value) != 3 or not _COUNTRY.match(value):
        raise RowRejected(f"{column}: {value!r} is not a 3-letter ICAO code")
    return value


def _collect(checks: Sequence[Callable[[], Any]]) -> tuple[list[Any], list[str]]:
    """Run every field check; gather the values and every rejection message."""
    values, problems = [], []
    for check in checks:
        try:
            values.append(check())
        except RowRejected as exc:
            values.append(None)
            problems.append(str(exc))
    return values, problems


def _parse_row(line: int, raw: dict[str, str], today: date) -> WatchlistRow:
    """Every check of one row that needs no photo; raises RowRejected naming all problems."""
    (external_id, kind, action, source, reason, dob, valid_from, valid_to, nat, state), problems = (
        _collect(
            [
                lambda: _required_text(raw, "external_id"),
                lambda: _choice(raw, "kind", WATCHLIST_KINDS),
                lambda: _choice(raw, "action", WATCHLIST_ACTIONS),
                lambda: _required_text(raw, "source"),
                lambda: _required_text(raw, "reason"),
                lambda: _date(raw, "date_of_birth"),
                lambda: _date(raw, "valid_from"),
                lambda: _date(raw, "valid_to"),
                lambda: _country(raw, "nationality"),
                lambda: _country(raw, "issuing_state"),
            ]
        )
    )
    (surname, given, number, photo), more = _collect(
        [
            lambda: _optional_text(raw, "surname") or "",
            lambda: _optional_text(raw, "given_names") or "",
            lambda: _optional_text(raw, "document_number"),
            lambda: _optional_text(raw, "photo"),
        ]
    )
    problems += more
    if problems:
        raise RowRejected("; ".join(problems))
    content = EntryContent(
        kind=kind,
        surname=surname,
        given_names=given,
        date_of_birth=dob,
        nationality=nat,
        issuing_state=state,
        document_number=number,
        reason=reason,
        action=action,
        valid_from=valid_from or today,
        valid_to=valid_to,
    )
    invalid = content_problems(content)
    if invalid:
        raise RowRejected("; ".join(f"{name}: {why}" for name, why in invalid))
    return WatchlistRow(line, source, external_id, content, valid_from is None, photo)


def check_rows(
    header: list[str], records: list[tuple[int, list[str]]], today: date
) -> tuple[list[WatchlistRow], list[tuple[int, str]]]:
    rows, rejected = [], []
    for line, values in records:
        if len(values) != len(header):
            found = f"{len(values)} fields where the header names {len(header)}"
            rejected.append((line, found))
            continue
        try:
            rows.append(_parse_row(line, dict(zip(header, values, strict=True)), today))
        except RowRejected as exc:
            rejected.append((line, str(exc)))
    return rows, rejected
