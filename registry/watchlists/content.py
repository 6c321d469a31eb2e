"""What a watchlist entry version says, and the checks and keys that go with it. No I/O.

``EntryContent`` is what a version says about the listed person or document. ``entry_id`` is
``uuid5(source, external_id)`` (``watchlist_entry_id``), so re-importing a source's list finds
the entries it created before; entries created over the API get a generated ``external_id``.
``source`` and ``external_id`` never change. ``build_version`` makes the row of a version with
its matching keys (``registry.names``); face templates are stored as 128 little-endian float32
values (the one codec, ``biometrics.engine.encode_template``/``decode_template``), beside the
small listed portrait they were taken from (``registry.photos.listed_portrait``), shown to the
supervisor of a face alert. The templates the node's other biometric modalities took from
the same portrait (``registry.modalities.ModalityTemplate.as_json``, by entry-point name) are
part of the version too (``modality_templates``), so a new version keeps them as it keeps the
face template.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from biometrics.engine import TEMPLATE_BYTES, TEMPLATE_DIM
from registry.models import WATCHLIST_ACTIONS, WATCHLIST_KINDS, Officer, WatchlistEntry
from registry.names import name_key, normalise_document_number
from registry.problems import Problem
from registry.watchlists.policy import PROTECT
from registry.watchlists.schemas import WatchlistEntryCreate

WATCHLIST_NAMESPACE = uuid.UUID("6f1c1f8e-4f0b-5b7e-9a57-2b6f0d6a7c31")


@dataclass(frozen=True)
class EntryContent:
    """What a version says about the listed person or document (identity fields aside)."""

    kind: str
    surname: str
    given_names: str
    date_of_birth: date | None
    nationality: str | None
    issuing_state: str | None
    document_number: str | None
    reason: str
    action: str
    valid_from: date
    valid_to: date | None
    active: bool = True
    face_template: bytes | None = None
    listed_portrait: bytes | None = None
    # the other modalities' templates of the same portrait (registry.modalities)
    modality_templates: dict[str, Any] | None = None


CONTENT_FIELDS = tuple(f.name for f in fields(EntryContent))


def watchlist_entry_id(source: str, external_id: str) -> uuid.UUID:
    """The stable logical id of the entry a source lists under ``external_id``."""
    return uuid.uuid5(WATCHLIST_NAMESPACE, f"{source.strip()}\n{external_id.strip()}")


def scoped_entry_id(source: str, external_id: str, action: str) -> uuid.UUID:
    """The id of an entry created over the API when ``watchlist_entry_id`` is taken by an
    entry its creator may not manage: one id per managing role (protect, or the others)."""
    scope = "protect" if action == PROTECT else "supervised"
    return uuid.uuid5(WATCHLIST_NAMESPACE, f"{source.strip()}\n{external_id.strip()}\n{scope}")


def content_of(entry: WatchlistEntry) -> EntryContent:
    return EntryContent(**{name: getattr(entry, name) for name in CONTENT_FIELDS})


def content_from_create(data: WatchlistEntryCreate, today: date) -> EntryContent:
    return EntryContent(
        kind=data.kind,
        surname=data.surname.strip(),
        given_names=data.given_names.strip(),
        date_of_birth=data.date_of_birth,
        nationality=data.nationality,
        issuing_state=data.issuing_state,
        document_number=_blank_to_none(data.document_number),
        reason=data.reason.strip(),
        action=data.action,
        valid_from=data.valid_from or today,
        valid_to=data.valid_to,
    )


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def content_problems(content: EntryContent) -> list[tuple[str, str]]:
    """Cross-field rules of an entry, as (field, reason) pairs; empty when it is valid."""
    problems: list[tuple[str, str]] = []
    if content.kind not in WATCHLIST_KINDS:
        problems.append(("kind", f"must be one of {', '.join(WATCHLIST_KINDS)}"))
    if content.action not in WATCHLIST_ACTIONS:
        problems.append(("action", f"must be one of {', '.join(WATCHLIST_ACTIONS)}"))
    if not content.reason.strip():
        problems.append(("reason", "give the reason for the listing"))
    problems += _identity_problems(content)
    if content.valid_to is not None and content.valid_to < content.valid_from:
        problems.append(("valid_to", "the validity ends before it starts (valid_from)"))
    if content.face_template is not None and len(content.face_template) != TEMPLATE_BYTES:
        problems.append(("photo", f"a face template has {TEMPLATE_DIM} float32 values"))
    return problems


def _identity_problems(content: EntryContent) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    number = content.document_number
    if content.kind == "person" and not content.surname.strip():
        problems.append(("surname", "a person entry needs a surname"))
    elif content.kind == "person" and not name_key(content.surname, content.given_names):
        problems.append(("surname", "the name has no letters"))
    if content.kind == "document" and not number:
        problems.append(("document_number", "a document entry needs the document number"))
    if number and not normalise_document_number(number):
        problems.append(("document_number", "the number has no letters or digits"))
    if number and not content.issuing_state:
        problems.append(("issuing_state", "a document number needs its issuing state"))
    return problems


def refuse_if_invalid(content: EntryContent) -> None:
    """422 naming every problem of ``content_problems``, the first as the main field."""
    problems = content_problems(content)
    if problems:
        (first_field, first_reason), *rest = problems
        raise Problem(
            422,
            "Invalid watchlist entry",
            field=first_field,
            detail=first_reason,
            invalid_params=[{"name": name, "reason": reason} for name, reason in rest],
        )


def build_version(
    content: EntryContent,
    *,
    entry_id: uuid.UUID,
    version: int,
    origin: str,
    external_id: str,
    source: str,
    officer: Officer | None,
    change_reason: str,
) -> WatchlistEntry:
    """A new entry row for ``content``, with its matching keys computed."""
    number = content.document_number
    return WatchlistEntry(
        entry_id=entry_id,
        version=version,
        origin=origin,
        external_id=external_id,
        source=source,
        name_key=name_key(content.surname, content.given_names) if content.surname else "",
        number_norm=normalise_document_number(number) if number else None,
        created_by=officer.id if officer else None,
        change_reason=change_reason,
        **{name: getattr(content, name) for name in CONTENT_FIELDS},
    )
