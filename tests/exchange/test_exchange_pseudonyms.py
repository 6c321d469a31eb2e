"""Pseudonyms of the bilateral exchange: blinded elements that follow the specification (checked
against an independent computation), commute between the two sides' keys, bind traveller
values to their document, and pseudonymous ids keyed per agreement; the blinding key file.
"""

from __future__ import annotations

import base64
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from registry.names import name_key
from sync.exchange.pseudonyms import (
    BlindingKey,
    _x25519,
    decode_element,
    document_message,
    element_message,
    pseudonymous_id,
    read_blinding_key,
    write_blinding_key,
)
from tests.support.agreement_texts import KEY, PARTNER_KEY, mac, ref


# ------------------------------------------------------------------------------------------
# pseudonyms
# ------------------------------------------------------------------------------------------
def test_document_pseudonym_follows_the_specification() -> None:
    row = {"number": "a12-345", "issuing_state": "mrt"}
    blinded = element("travel_document.number", row)
    assert blinded == mac("document", "MRT", "A12345")
    decode_element(blinded)  # a valid blinded element


def element(qualified: str, row: dict[str, Any], key: BlindingKey = KEY, **kw: Any) -> str | None:
    message = element_message(qualified, row, **{"document": None, **kw})
    return key.blind_message(message) if message else None


def test_same_document_typed_differently_gives_the_same_pseudonym() -> None:
    ours = element("travel_document.number", {"number": "A 12-345", "issuing_state": "MRT"})
    theirs = element("travel_document.number", {"number": "A12345", "issuing_state": "MRT<"})
    assert ours == theirs
    other = element("travel_document.number", {"number": "A12345", "issuing_state": "MLI"})
    assert other != ours
    other_key = element(
        "travel_document.number", {"number": "A12345", "issuing_state": "MRT"}, PARTNER_KEY
    )
    assert other_key != ours


def test_blinding_commutes_so_both_sides_reach_the_same_key() -> None:
    """H(x)^a then ^b equals H(x)^b then ^a: the double-blinded keys both sides compare."""
    row = {"number": "A12345", "issuing_state": "MRT"}
    ours, theirs = (
        element("travel_document.number", row),
        element("travel_document.number", row, PARTNER_KEY),
    )
    assert ours is not None and theirs is not None
    assert PARTNER_KEY.reblind(ours) == KEY.reblind(theirs)
    with pytest.raises(ValueError):
        KEY.reblind("A" * 43)  # not a group element
    with pytest.raises(ValueError):
        KEY.reblind(base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode())  # identity
    with pytest.raises(ValueError):
        KEY.reblind("_" * 43)  # not canonical: 2^256 - 1 is not below 2^255 - 19
    one = (1).to_bytes(32, "little")
    with pytest.raises(ValueError):
        KEY.reblind(base64.urlsafe_b64encode(one).rstrip(b"=").decode())  # small order


def test_x25519_follows_rfc_7748() -> None:
    """The ladder the exchange uses gives RFC 7748's test vector (section 5.2), and a
    low-order input is refused rather than blinded to all-zero."""
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    expected = "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    assert _x25519(scalar, u).hex() == expected
    with pytest.raises(ValueError, match="small order"):
        _x25519(scalar, bytes(32))


def test_same_name_written_differently_gives_the_same_person() -> None:
    one = element("traveller.name_key", {"surname": "Ould Ahmed", "given_names": "Mohamed"})
    two = element("traveller.name_key", {"surname": "MOHAMMED", "given_names": "ould ahmad"})
    assert one == two == mac("person", name_key("Ould Ahmed", "Mohamed"))
    row = {"surname": "Ould Ahmed", "given_names": "Mohamed", "date_of_birth": "1980-01-01"}
    person = element("traveller.name_key", row, person=frozenset({"date_of_birth"}))
    assert person == mac("person", name_key("Ould Ahmed", "Mohamed"), "1980-01-01")


def test_traveller_values_are_bound_to_the_document() -> None:
    row = {"date_of_birth": date(1980, 1, 1), "nationality": "MLI"}
    doc_a = document_message("MLI", "A1")
    doc_b = document_message("MLI", "B2")
    on_a = element("traveller.date_of_birth", row, document=doc_a)
    assert on_a == mac("traveller.date_of_birth", "MLI", "A1", "1980-01-01")
    assert on_a != element("traveller.date_of_birth", row, document=doc_b)
    assert element("traveller.nationality", row, document=doc_a) == mac(
        "traveller.nationality", "MLI", "A1", "MLI"
    )


def test_nothing_to_pseudonymise_gives_none() -> None:
    assert element("traveller.surname", {"surname": None}) is None
    assert element("traveller.surname", {"surname": " - "}) is None
    assert element("travel_document.number", {"number": "A123"}) is None
    assert element("travel_document.number", {"number": "--", "issuing_state": "MRT"}) is None


def test_pseudonymous_ids_are_keyed_per_agreement() -> None:
    assert pseudonymous_id(KEY, "MR-ML-2026", "c1") == ref("c1")
    assert pseudonymous_id(KEY, "MR-ML-2027", "c1") != ref("c1")
    assert pseudonymous_id(PARTNER_KEY, "MR-ML-2026", "c1") != ref("c1")
    assert pseudonymous_id(KEY, "MR-ML-2026", None) is None


def test_write_and_read_blinding_key(tmp_path: Path) -> None:
    path = tmp_path / "agreement.key"
    key = write_blinding_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert read_blinding_key(path) == key
    with pytest.raises(FileExistsError):
        write_blinding_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        read_blinding_key(path)
    short = tmp_path / "short.key"
    short.write_text("abcd")
    os.chmod(short, 0o600)
    with pytest.raises(ValueError):
        read_blinding_key(short)
    with pytest.raises(ValueError):
        BlindingKey(bytes(32))
