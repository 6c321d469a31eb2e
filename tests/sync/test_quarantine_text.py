"""National's text checks before COPY (``sync.quarantine``): the byte-level column test
agrees with the per-value rule on any text, and a column names exactly its bad rows."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.quarantine import _REFUSED_TEXT, bad_text_rows, holds_refused_text

ANY_TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), max_size=40
)  # surrogates included: a decoder may hand them over


@given(ANY_TEXT)
@settings(max_examples=2000)
def test_the_byte_test_agrees_with_the_rule_on_any_text(text: str) -> None:
    assert holds_refused_text(text) == bool(_REFUSED_TEXT.search(text))


def test_every_refused_character_is_found_among_arabic_and_emoji() -> None:
    for code in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F):
        assert holds_refused_text(f"محمد{chr(code)}🙂 ÉLISE"), hex(code)
    for allowed in ("\t", "\n", "\r", "ولد أحمد", "ÉLISE 🙂", "\u0085", "\u2028", ""):
        assert not holds_refused_text(allowed), repr(allowed)


def test_a_column_names_only_its_bad_rows() -> None:
    surnames = ["DIALLO", "KEITA\x00", None, "محمد", "SOW\x7f", "X" * 121]
    columns = {"surname": surnames, "given_names": ["A"] * len(surnames)}
    bad = bad_text_rows("traveller", list(columns), columns.__getitem__)
    assert sorted(bad) == [1, 4, 5]
    assert "control character" in bad[1] and "control character" in bad[4]
    assert "121 characters" in bad[5]
    # lengths the decoder already held are not measured again: a column whose only fault
    # is an over-long value passes (a real decoder would have refused it)
    long_only = {"surname": ["DIALLO", "X" * 121]}
    assert bad_text_rows("traveller", ["surname"], long_only.__getitem__) == {
        1: "traveller.surname: 121 characters, over the column's 120"
    }
    assert not bad_text_rows("traveller", ["surname"], long_only.__getitem__, lengths_checked=True)
