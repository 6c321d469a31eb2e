"""The one enforcement function of the bilateral exchange, ``filter_record``: only the fields an
agreement allows leave, pseudonymised as it says; and a property test over generated
agreements and records: nothing outside the agreement ever leaves.
"""

from __future__ import annotations

import copy
import json
import re
import string
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.names import name_key, normalise_document_number, normalise_name
from sync.exchange.enforcement import ID_FIELDS, filter_record
from sync.exchange.model import PSEUDONYMISABLE, RECORD_TYPES, Agreement
from sync.exchange.parsing import load_agreement
from sync.exchange.pseudonyms import document_message
from tests.support.agreement_texts import BASE, KEY, mac, ref, to_toml

# ------------------------------------------------------------------------------------------
# filter_record
# ------------------------------------------------------------------------------------------
AGREEMENT = load_agreement(to_toml(BASE))


def test_filter_record_keeps_only_allowed_fields() -> None:
    crossing = {
        "id": "c1",
        "post": "MR-GOGUI",
        "direction": "exit",
        "occurred_at": "2026-03-01T08:00:00+00:00",
        "officer_id": "o1",
        "remarks": "nervous",
        "receipt": "BP1:...",
        "anything": "else",
    }
    out = filter_record(AGREEMENT, "crossing", crossing, key=KEY)
    assert out == {
        "id": ref("c1"),
        "post": "MR-GOGUI",
        "direction": "exit",
        "occurred_at": "2026-03-01T08:00:00+00:00",
    }


def test_filter_record_pseudonymises_documents_and_names() -> None:
    document = {
        "id": "d1",
        "issuing_state": "MRT",
        "document_type": "P",
        "number": "A 12-345",
        "number_norm": "A12345",
        "raw_mrz": "P<MRTOULD<AHMED<<MOHAMED...",
        "expiry_date": "2030-01-01",
    }
    out = filter_record(AGREEMENT, "travel_document", document, key=KEY)
    assert out == {
        "id": ref("d1"),
        "issuing_state": "MRT",
        "document_type": "P",
        "number": mac("document", "MRT", "A12345"),
        "expiry_date": "2030-01-01",
    }
    traveller = {"id": "t1", "surname": "Ould Ahmed", "given_names": "Mohamed", "sex": "M"}
    binding = document_message("MRT", "A12345")
    out = filter_record(AGREEMENT, "traveller", traveller, key=KEY, document=binding)
    assert out is not None
    surname, given = normalise_name("OULD AHMAD"), normalise_name("Mohammed")
    assert out["surname"] == mac("traveller.surname", "MRT", "A12345", surname)
    assert out["given_names"] == mac("traveller.given_names", "MRT", "A12345", given)
    assert "Ahmed" not in json.dumps(out) and "Mohamed" not in json.dumps(out)


def test_a_page_cache_changes_no_output() -> None:
    """The send path's per-page cache (blinded messages and pseudonymous ids) gives the
    same bundles as no cache, for a traveller seen twice and ids that recur."""
    binding = document_message("MRT", "A12345")
    rows = [
        ("crossing", {"id": "c1", "traveller_id": "t1", "document_id": "d1", "post": "MR-GOGUI"}),
        ("traveller", {"id": "t1", "surname": "Ould Ahmed", "given_names": "Mohamed"}),
        (
            "travel_document",
            {"id": "d1", "traveller_id": "t1", "issuing_state": "MRT", "number": "A12345"},
        ),
        ("crossing", {"id": "c2", "traveller_id": "t1", "document_id": "d1", "post": "MR-GOGUI"}),
        ("traveller", {"id": "t1", "surname": "Ould Ahmed", "given_names": "Mohamed"}),
    ]
    cache: dict[str, str] = {}
    for record_type, row in rows:
        cached = filter_record(AGREEMENT, record_type, row, key=KEY, document=binding, cache=cache)
        plain = filter_record(AGREEMENT, record_type, row, key=KEY, document=binding)
        assert cached == plain
    assert cache["t1"] == ref("t1") and cache["d1"] == ref("d1")


def test_filter_record_refuses_unshared_types() -> None:
    for record_type in ("photo", "protection_referral", "officer", "audit_event", "alert"):
        assert filter_record(AGREEMENT, record_type, {"id": "x"}, key=KEY) is None


def test_filter_record_rechecks_flags_on_hand_made_agreements() -> None:
    hand_made = Agreement(
        **{
            **{f: getattr(AGREEMENT, f) for f in AGREEMENT.__dataclass_fields__},
            "record_types": {
                "protection_referral": frozenset({"id"}),
                "photo": frozenset({"sha256"}),
                "crossing": frozenset({"id", "post"}),
                "travel_document": frozenset({"number", "number_norm"}),
            },
            "pseudonymised": frozenset({"travel_document.number", "crossing.post"}),
        }
    )
    assert filter_record(hand_made, "protection_referral", {"id": 1}, key=KEY) is None
    assert filter_record(hand_made, "photo", {"sha256": "ab"}, key=KEY) is None
    # a pseudonymised field without a pseudonym rule, and a clear field that reveals a
    # pseudonymised one, are dropped rather than sent in clear
    crossing = filter_record(hand_made, "crossing", {"id": 1, "post": "X"}, key=KEY)
    assert crossing == {"id": ref(1)}
    document = {"number": "A1", "number_norm": "A1", "issuing_state": "MRT"}
    out = filter_record(hand_made, "travel_document", document, key=KEY)
    assert out == {"number": mac("document", "MRT", "A1")}


# ------------------------------------------------------------------------------------------
# the property: nothing outside the agreement ever leaves
# ------------------------------------------------------------------------------------------
VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", "123", " - ", "<<<"]),  # nothing left after normalisation
    st.text(max_size=24),
    st.text(alphabet="AB12 -<", max_size=12),
    st.sampled_from(["Mohamed Ould Ahmed", "MOHAMMED OULD AHMED", "A 12-345", "MRT"]),
    st.integers(),
    st.booleans(),
    st.dates(),
)
REVEALS = {
    "travel_document.number_norm": {"travel_document.number"},
    "travel_document.raw_mrz": {
        "travel_document.number",
        "travel_document.expiry_date",
        "traveller.surname",
        "traveller.given_names",
        "traveller.date_of_birth",
        "traveller.nationality",
    },
    "crossing.receipt": {"travel_document.number"},
    "traveller.name_key": {"traveller.surname", "traveller.given_names"},
    "traveller.surname_ar": {"traveller.surname"},
    "traveller.given_names_ar": {"traveller.given_names"},
}


@st.composite
def agreements(draw: st.DrawFn) -> Agreement:
    data = copy.deepcopy(BASE)
    data["share_photos"] = draw(st.booleans())
    data["share_protection_referrals"] = draw(st.booleans())
    record_types: dict[str, list[str]] = {}
    for record_type in sorted(RECORD_TYPES):
        if record_type == "photo" and not data["share_photos"]:
            continue
        if record_type == "protection_referral" and not data["share_protection_referrals"]:
            continue
        if draw(st.booleans()):
            fields = sorted(RECORD_TYPES[record_type])
            record_types[record_type] = draw(
                st.lists(st.sampled_from(fields), min_size=1, unique=True)
            )
    if not record_types:
        record_types["crossing"] = ["id"]
    candidates = sorted(
        name
        for name in PSEUDONYMISABLE
        if name.partition(".")[2] in record_types.get(name.partition(".")[0], [])
    )
    pseudonymised = draw(st.lists(st.sampled_from(candidates), unique=True)) if candidates else []
    for record_type, fields in record_types.items():
        kept = [
            f
            for f in fields
            if f"{record_type}.{f}" in pseudonymised
            or not REVEALS.get(f"{record_type}.{f}", set()) & set(pseudonymised)
        ]
        record_types[record_type] = kept or [
            "id" if "id" in RECORD_TYPES[record_type] else "sha256"
        ]
    data["record_types"] = record_types
    data["pseudonymised"] = pseudonymised
    detail: dict[str, list[str]] = {}
    for record_type, fields in record_types.items():
        rest = sorted(RECORD_TYPES[record_type] - set(fields))
        if rest and draw(st.booleans()):
            detail[record_type] = draw(st.lists(st.sampled_from(rest), min_size=1, unique=True))
    if detail:
        data["detail_fields"] = detail
    return load_agreement(to_toml(data))


@st.composite
def records(draw: st.DrawFn, agreement: Agreement) -> tuple[str, dict[str, Any]]:
    """Mostly a record of a shared type with every real field (some dropped) plus extra
    keys; sometimes a record of any type, or of a type that does not exist."""
    shared = sorted(agreement.record_types)
    anything = [*sorted(RECORD_TYPES), "officer", "audit_event", ""]
    record_type = draw(st.one_of(st.sampled_from(shared), st.sampled_from(anything)))
    known = sorted(RECORD_TYPES.get(record_type, frozenset({"id"})))
    row = draw(st.dictionaries(st.text(max_size=10), VALUES, max_size=5))
    row |= draw(st.fixed_dictionaries({name: VALUES for name in known}))
    for name in draw(st.lists(st.sampled_from(known), max_size=3)):
        row.pop(name, None)
    return record_type, row


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def expected_pseudonym(
    qualified: str, row: dict[str, Any], person: frozenset[str] = frozenset()
) -> str | None:
    """The documented blinded element of a field (no document binding), from the
    specification alone."""
    field = qualified.partition(".")[2]
    if qualified == "travel_document.number":
        number, state = row.get("number"), row.get("issuing_state")
        number = normalise_document_number(_text(number)) if number is not None else ""
        state = normalise_document_number(_text(state)) if state is not None else ""
        return mac("document", state, number) if number and state else None
    if qualified == "traveller.name_key":
        surname, given = row.get("surname"), row.get("given_names")
        key = name_key(
            _text(surname) if surname is not None else "",
            _text(given) if given is not None else "",
        )
        extras = [(_day(row[f]) if row.get(f) is not None else "") for f in sorted(person)]
        return mac("person", key, *extras) if key else None
    value = row.get(field)
    if value is None:
        return None
    if field in ("surname", "given_names", "surname_ar", "given_names_ar"):
        text = normalise_name(_text(value))
    elif field == "nationality":
        text = normalise_document_number(_text(value))
    else:
        text = _day(value).strip()
    return mac(qualified, "-", text) if text else None


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else _text(value)


BLINDED = re.compile(r"[A-Za-z0-9_-]{43}")
HEX_DIGITS = frozenset(string.hexdigits.lower())


@settings(max_examples=400, deadline=None)
@given(agreement=agreements(), data=st.data(), tier=st.sampled_from(["bulk", "detail"]))
def test_nothing_outside_the_agreement_ever_leaves(
    agreement: Agreement, data: st.DataObject, tier: Any
) -> None:
    """Bulk carries only ``record_types``; the detail tier (an approved release) adds only
    ``detail_fields``, in clear; pseudonymised fields never leave in clear in either."""
    record_type, row = data.draw(records(agreement))
    out = filter_record(agreement, record_type, row, key=KEY, tier=tier)
    if not agreement.is_shared(record_type):
        assert out is None
        return
    assert out is not None
    bulk = agreement.record_types[record_type]
    detail = agreement.detail_fields.get(record_type, frozenset())
    assert set(out) <= (bulk | detail if tier == "detail" else bulk)
    assert not detail & bulk
    for field, value in out.items():
        qualified = f"{record_type}.{field}"
        if field in detail:  # released on approval only, in clear (ids pseudonymous)
            assert tier == "detail"
            if field in ID_FIELDS:
                assert value == (None if row[field] is None else ref(row[field]))
            else:
                assert value is row[field]
            continue
        if qualified not in agreement.pseudonymised:
            assert not REVEALS.get(qualified, set()) & agreement.pseudonymised
            if field in ID_FIELDS:  # our ids leave only as pseudonymous ids
                assert value == (None if row[field] is None else ref(row[field]))
            else:
                assert value is row[field]
            continue
        assert value == expected_pseudonym(qualified, row, agreement.person_fields())
        assert value is None or BLINDED.fullmatch(value)
        clear = row.get(field)
        if clear is not None and value is not None:
            assert value != clear
            # the clear text never shows inside the blinded value (a value of a few
            # characters may turn up in 43 random base64url ones by chance: not checked)
            if isinstance(clear, str) and len(clear) >= 6 and set(clear) - HEX_DIGITS:
                assert clear not in value
