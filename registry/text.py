"""Clean text: the ONE rule deciding which text a node accepts from a person, at every entry
point (API schemas, web forms, CLI, watchlist CSV import, the login username before it is
audited).

``clean_text(value, rule, field)`` returns the text as it will be stored, or raises
``TextRefused`` naming the field and a stable reason code (the pages translate the code, the
API answers a 4xx problem naming the field: ``registry.problems``).

What is refused, and why:

- **NUL and the other C0/C1 control characters** (``U+0000``-``U+001F``, ``U+007F``-``U+009F``)
  and the line/paragraph separators ``U+2028``/``U+2029``. PostgreSQL refuses NUL in text, so
  one NUL stored at a post would stop its sync at national; the others have no meaning in a
  register. Only multi-line free text (``PARAGRAPHS``: remarks, notes, reasons, the raw MRZ)
  keeps line breaks and tabs; ``\\r\\n`` and a lone ``\\r`` become ``\\n``.
- **Format characters** (Unicode category Cf): bidi embeddings, overrides and isolates
  (``U+202A``-``U+202E``, ``U+2066``-``U+2069``), zero-width space and joiners, the BOM, soft
  hyphen... They are invisible and make two different stored names look alike, or reorder what
  an officer reads. Refused in names, identifiers and usernames. In free text (``LINE`` and
  ``PARAGRAPHS``) one exception is kept, on purpose minimal: ZERO WIDTH NON-JOINER ``U+200C``,
  which Persian and some Arabic-script writing use between letters of one word. Everything else
  of category Cf, including the left-to-right/right-to-left marks, is refused there too.
- **Lone surrogates** (category Cs) cannot be encoded as UTF-8 at all; **noncharacters**
  (``U+FDD0``-``U+FDEF`` and the last two code points of every plane) are reserved for internal
  use; **private-use characters** (category Co) carry no agreed meaning, and are refused in
  names and identifiers.

Stored text is NFC-normalised, then stripped of surrounding white space; every length is
checked AFTER that, and so are the lengths of the forms derived from it and stored beside it
(``derived``): a person name's matching key (``registry.names.name_key``, NFKC) and a document
number's ``number_norm``. NFKC can multiply a length by 18 (``U+FDFA`` becomes 18 characters),
so a 30-character surname could derive a 510-character key. Rather than widen the columns to
an unbounded worst case, the rule refuses such input with ``derived_too_long``. Each name
part has its own key budget (``SURNAME_KEY_MAX`` + 1 + ``GIVEN_NAMES_KEY_MAX`` = the 400 of
``name_key``), so a part accepted alone always fits, whatever the other part is: twice the
stored length of every part, which covers any real name (an Arabic letter transliterates to
at most two Latin letters).

``text_problem(value, max_length)`` is the cheap predicate for text that arrives already
normalised (records received from another node): it says what is wrong, or None.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from registry.names import name_key, normalise_document_number

__all__ = [
    "CODES",
    "DOCUMENT_NUMBER_NORM_MAX",
    "GIVEN_NAMES_KEY_MAX",
    "NAME_KEY_MAX",
    "SURNAME_KEY_MAX",
    "Derived",
    "TextKind",
    "TextRefused",
    "TextRule",
    "clean_optional",
    "clean_text",
    "document_number_rule",
    "free_line",
    "given_names_rule",
    "identifier",
    "paragraphs",
    "parse_refusal",
    "person_name",
    "surname_rule",
    "text_problem",
]

TextKind = Literal["name", "identifier", "line", "paragraphs"]

NAME_KEY_MAX = 400  # traveller.name_key, watchlist_entry.name_key
SURNAME_KEY_MAX = 160
GIVEN_NAMES_KEY_MAX = NAME_KEY_MAX - SURNAME_KEY_MAX - 1  # 239: one space joins the parts
DOCUMENT_NUMBER_NORM_MAX = 40  # travel_document.number_norm, watchlist_entry.number_norm

ZERO_WIDTH_NON_JOINER = "\u200c"
_MULTILINE_KINDS = frozenset({"paragraphs"})
_FREE_TEXT_KINDS = frozenset({"line", "paragraphs"})

# Reason codes (stable: the pages' catalogues translate them; see registry/web/messages.py).
CODES: dict[str, str] = {
    "not_text": "must be text",
    "control_character": "contains a control character ({char})",
    "line_break": "must stay on one line ({char})",
    "format_character": "contains an invisible formatting character ({char}), such as a "
    "direction override or a zero-width space",
    "surrogate": "contains an invalid character ({char})",
    "noncharacter": "contains a Unicode noncharacter ({char})",
    "private_use": "contains a private-use character ({char})",
    "required": "is required",
    "too_short": "needs at least {limit} characters",
    "too_long": "is longer than {limit} characters once normalised",
    "derived_too_long": "is too long once normalised for matching ({derived} over {limit} "
    "characters)",
}

# ASCII fast path: the characters refused in single-line and in multi-line text.
_ASCII_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f]")
_ASCII_CONTROL_PARAGRAPHS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_ENDINGS = re.compile(r"\r\n?")


@dataclass(frozen=True)
class Derived:
    """A form computed from the text and stored beside it, with its column's size."""

    name: str
    form: Callable[[str], str]
    max_length: int


@dataclass(frozen=True)
class TextRule:
    """What one field accepts: its kind, its lengths (after NFC) and its derived forms."""

    kind: TextKind
    max_length: int
    min_length: int = 0
    derived: tuple[Derived, ...] = field(default=())


class TextRefused(ValueError):
    """Text refused for one field: ``code`` is a key of ``CODES``; ``char`` names the
    offending character (``U+0000``), ``limit`` the length it exceeds or misses.

    ``str()`` is ``"`field`: reason [code]"``, so the field and the code survive msgspec,
    which wraps a ``__post_init__`` error into its own message (``registry.problems`` reads
    them back with ``parse_refusal``)."""

    def __init__(
        self,
        field: str,
        code: str,
        *,
        char: str | None = None,
        limit: int | None = None,
        derived: str | None = None,
    ) -> None:
        self.field = field
        self.code = code
        self.char = char
        self.limit = limit
        self.derived = derived
        super().__init__(f"`{field}`: {self.reason} [{code}]")

    @property
    def reason(self) -> str:
        """The English reason, without the field name."""
        return CODES[self.code].format(char=self.char, limit=self.limit, derived=self.derived)

    def params(self) -> dict[str, str]:
        """The values the translated message needs (all text)."""
        values = {"char": self.char, "limit": self.limit, "derived": self.derived}
        return {key: str(value) for key, value in values.items() if value is not None}

    def renamed(self, field: str) -> TextRefused:
        """The same refusal for a field known under another name (``traveller.surname``)."""
        return TextRefused(field, self.code, char=self.char, limit=self.limit, derived=self.derived)


_REFUSAL = re.compile(r"`([^`]+)`: .* \[([a-z_]+)\]")


def parse_refusal(message: str) -> tuple[str, str] | None:
    """(field, code) of a ``TextRefused`` message, also when msgspec appended its path."""
    match = _REFUSAL.match(message)
    if match is None or match.group(2) not in CODES:
        return None
    return match.group(1), match.group(2)


def _code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def _is_noncharacter(point: int) -> bool:
    return 0xFDD0 <= point <= 0xFDEF or (point & 0xFFFE) == 0xFFFE


def _char_problem(char: str, kind: str) -> str | None:
    """The reason code a single non-ASCII character is refused for in ``kind``, or None."""
    category = unicodedata.category(char)
    if category == "Cc":
        return "control_character"
    if char in "\u2028\u2029":
        return "control_character" if kind in _MULTILINE_KINDS else "line_break"
    if category == "Cf":
        if char == ZERO_WIDTH_NON_JOINER and kind in _FREE_TEXT_KINDS:
            return None
        return "format_character"
    if category == "Cs":
        return "surrogate"
    if _is_noncharacter(ord(char)):
        return "noncharacter"
    if category == "Co" and kind not in _FREE_TEXT_KINDS:
        return "private_use"
    return None


def _first_problem(value: str, kind: str) -> tuple[str, str] | None:
    """(code, offending character) of the first refused character, or None."""
    multiline = kind in _MULTILINE_KINDS
    control = _ASCII_CONTROL_PARAGRAPHS if multiline else _ASCII_CONTROL_ONE_LINE
    found = control.search(value)
    if found is not None:
        char = found.group()
        code = "line_break" if char in "\n\r" else "control_character"
        return code, char
    if value.isascii():
        return None
    for char in value:
        if char.isascii():
            continue
        problem = _char_problem(char, kind)
        if problem is not None:
            return problem, char
    return None


def clean_text(value: Any, rule: TextRule, field: str) -> str:
    """The text as stored: checked, NFC-normalised, stripped, and within every length.

    Raises ``TextRefused`` naming ``field`` and the first reason found.
    """
    if not isinstance(value, str):
        raise TextRefused(field, "not_text")
    problem = _first_problem(value, rule.kind)
    if problem is not None:
        code, char = problem
        raise TextRefused(field, code, char=_code_point(char))
    text = unicodedata.normalize("NFC", value)
    if rule.kind in _MULTILINE_KINDS:
        text = _LINE_ENDINGS.sub("\n", text)
    text = text.strip()
    if len(text) > rule.max_length:
        raise TextRefused(field, "too_long", limit=rule.max_length)
    if len(text) < rule.min_length:
        if not text:
            raise TextRefused(field, "required")
        raise TextRefused(field, "too_short", limit=rule.min_length)
    for derived in rule.derived:
        if len(derived.form(text)) > derived.max_length:
            raise TextRefused(
                field, "derived_too_long", limit=derived.max_length, derived=derived.name
            )
    return text


def clean_optional(value: str | None, rule: TextRule, field: str) -> str | None:
    """``clean_text`` for an optional field: None stays None."""
    return None if value is None else clean_text(value, rule, field)


def text_problem(value: str, max_length: int, *, kind: TextKind = "line") -> str | None:
    """Cheap check of text received already stored elsewhere (another node's records): the
    reason code if it could not have come through ``clean_text`` with this length, else None.

    No normalisation, no derived forms: one regular-expression scan (plus one pass over the
    characters of non-ASCII text) and a length.
    """
    if not isinstance(value, str):
        return "not_text"
    if len(value) > max_length:
        return "too_long"
    problem = _first_problem(value, kind)
    return problem[0] if problem is not None else None


# ----------------------------------------------------------------------------- rules
def person_name(max_length: int, *, min_length: int = 0, key_max: int | None = None) -> TextRule:
    """A person's name (or part of one); ``key_max`` bounds its share of the name key."""
    derived = (
        (Derived("name_key", lambda text: name_key(text, ""), key_max),)
        if key_max is not None
        else ()
    )
    return TextRule("name", max_length, min_length, derived)


def surname_rule(max_length: int = 120, *, min_length: int = 0) -> TextRule:
    """A surname: its matching key uses at most ``SURNAME_KEY_MAX`` of the name key."""
    return person_name(max_length, min_length=min_length, key_max=SURNAME_KEY_MAX)


def given_names_rule(max_length: int = 200) -> TextRule:
    """Given names: their matching key uses at most ``GIVEN_NAMES_KEY_MAX`` of the name key."""
    return person_name(max_length, key_max=GIVEN_NAMES_KEY_MAX)


def document_number_rule(max_length: int = 40) -> TextRule:
    """A document number as typed; its ``number_norm`` must fit its column too."""
    derived = Derived("number_norm", normalise_document_number, DOCUMENT_NUMBER_NORM_MAX)
    return TextRule("identifier", max_length, 1, (derived,))


def identifier(max_length: int, *, min_length: int = 0) -> TextRule:
    """A username, code, source or external reference: one line, nothing invisible."""
    return TextRule("identifier", max_length, min_length)


def free_line(max_length: int, *, min_length: int = 0) -> TextRule:
    """One line of free text (destination, purpose, override reason...)."""
    return TextRule("line", max_length, min_length)


def paragraphs(max_length: int, *, min_length: int = 0) -> TextRule:
    """Multi-line free text (remarks, notes, reasons): line breaks and tabs allowed."""
    return TextRule("paragraphs", max_length, min_length)
