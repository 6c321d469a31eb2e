"""column sizes that fit normalised text

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 20:40:00.000000

No column changes size, by decision (issue 12, ``registry/text.py``). Every text a person
enters goes through ``registry.text.clean_text``, which checks its length AFTER NFC and the
lengths of the forms derived from it, against the very columns they are stored in:

- stored text (``traveller.surname`` 120, ``crossing.remarks`` 2000, ``officer.full_name``
  200...): the request limits equal the column sizes, and they now apply to the NFC form, so
  a text that NFC lengthens (``U+FB2C`` is 3 characters under NFC) is refused, not stored
  over its column;
- ``traveller.name_key`` and ``watchlist_entry.name_key`` (400, NFKC): each name part has its
  own budget of the key (surname 160, given names 239, one space between), twice the stored
  length of the part, enough for any real name; NFKC ligatures such as ``U+FDFA`` (18
  characters each) are refused with ``derived_too_long`` instead of widening the key to an
  unbounded worst case (a key longer than 2,700 bytes would not even fit a PostgreSQL btree
  index entry);
- ``travel_document.number_norm`` and ``watchlist_entry.number_norm`` (40): a typed number is
  ASCII (request pattern), and the watchlist CSV's number is refused when its normalised form
  (``ß`` -> ``SS``) would not fit.

The property tests (``tests/domain/test_text.py``) show that any accepted input fits every
column it reaches, and ``tests/hostile_input/test_clean_text.py`` stores generated accepted
names and remarks on SQLite and PostgreSQL. The revision stays in the chain, empty, so that
0009-0012 keep their fixed ids; nothing touches national's partitioned ``crossing`` table.
"""

from collections.abc import Sequence

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to alter: see the module docstring."""


def downgrade() -> None:
    """Nothing was altered."""
