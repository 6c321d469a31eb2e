"""Data-sharing agreements: parsing, signatures, validity, description, pseudonyms and the
one enforcement function ``filter_record`` (with a property test over generated records and
agreements)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import re
import string
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.names import name_key, normalise_document_number, normalise_name
from registry.receipts import public_key_to_text
from sync.exchange.enforcement import filter_record
from sync.exchange.model import (
    PSEUDONYMISABLE,
    RECORD_TYPES,
    Agreement,
    AgreementError,
    canonical_content,
    purge_before,
)
from sync.exchange.parsing import load_agreement
from sync.exchange.pseudonyms import key_check, pseudonym, read_hmac_key
from sync.exchange.report import CLEAR, PSEUDONYMISED, check_report, describe
from sync.exchange.signing import agreement_status, sign_agreement, signature_valid

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "agreements" / "mr-ml-2026.toml"
MR_KEY = Ed25519PrivateKey.generate()
ML_KEY = Ed25519PrivateKey.generate()
HMAC_KEY = bytes(range(32))
OTHER_HMAC_KEY = bytes(range(1, 33))
TODAY = date(2026, 6, 1)

BASE: dict[str, Any] = {
    "id": "MR-ML-2026",
    "version": 1,
    "title": "test agreement",
    "valid_from": date(2026, 1, 1),
    "valid_to": date(2026, 12, 31),
    "purposes": ["border_management", "migration_statistics"],
    "retention_days": 180,
    "share_photos": False,
    "share_protection_referrals": False,
    "hmac_key_id": "mr-ml-2026-k1",
    "pseudonymised": ["travel_document.number", "traveller.surname", "traveller.given_names"],
    "parties": [
        {
            "country": "MRT",
            "node": "MR-NATIONAL",
            "url": "https://borderpost.police.gov.mr",
            "public_key": public_key_to_text(MR_KEY.public_key()),
        },
        {
            "country": "MLI",
            "node": "ML-NATIONAL",
            "url": "https://borderpost.police.gouv.ml",
            "public_key": public_key_to_text(ML_KEY.public_key()),
        },
    ],
    "paired_posts": [
        {"MRT": "MR-GOGUI", "MLI": "ML-GOGUI"},
        {"MRT": "MR-KOBENI", "MLI": "ML-NIORO"},
    ],
    "record_types": {
        "crossing": ["id", "post", "direction", "occurred_at", "mode", "decision", "document_id"],
        "traveller": ["id", "surname", "given_names", "nationality", "sex", "date_of_birth"],
        "travel_document": ["id", "issuing_state", "document_type", "number", "expiry_date"],
    },
}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | date):
        return value.isoformat() if isinstance(value, date) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return json.dumps(value)


def to_toml(data: dict[str, Any]) -> str:
    """A tiny TOML writer for the shapes an agreement uses."""
    lines: list[str] = []
    arrays: dict[str, list[dict[str, Any]]] = {}
    tables: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            tables[key] = value
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays[key] = value
        else:
            lines.append(f"{key} = {_value(value)}")
    for key, items in arrays.items():
        for item in items:
            lines.append(f"\n[[{key}]]")
            lines += [f"{k} = {_value(v)}" for k, v in item.items()]
    for key, table in tables.items():
        lines.append(f"\n[{key}]")
        lines += [f"{k} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def variant(change: Callable[[dict[str, Any]], None]) -> str:
    data = copy.deepcopy(BASE)
    change(data)
    return to_toml(data)


def signed(text: str, *keys: tuple[str, Ed25519PrivateKey]) -> str:
    for party, key in keys or (("MRT", MR_KEY), ("MLI", ML_KEY)):
        text = sign_agreement(text, party, key)
    return text


def mac(*parts: str, key: bytes = HMAC_KEY) -> str:
    """The documented pseudonym, computed independently of the module."""
    return hmac.new(key, "|".join(("bp1", *parts)).encode(), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------------------
# parsing
# ------------------------------------------------------------------------------------------
def test_valid_agreement_parses() -> None:
    agreement = load_agreement(to_toml(BASE))
    assert agreement.id == "MR-ML-2026" and agreement.version == 1
    assert [p.country for p in agreement.parties] == ["MRT", "MLI"]
    assert agreement.paired_posts == (("MR-GOGUI", "ML-GOGUI"), ("MR-KOBENI", "ML-NIORO"))
    assert agreement.pairs_for("MRT") == agreement.paired_posts
    assert agreement.pairs_for("ML-NATIONAL") == (
        ("ML-GOGUI", "MR-GOGUI"),
        ("ML-NIORO", "MR-KOBENI"),
    )
    assert agreement.partner_of("MRT").node == "ML-NATIONAL"
    assert agreement.record_types["travel_document"] == frozenset(
        BASE["record_types"]["travel_document"]
    )
    assert agreement.pseudonymised == frozenset(BASE["pseudonymised"])
    assert agreement.share_photos is False and agreement.share_protection_referrals is False
    assert agreement.signatures == {}
    assert len(agreement.content_sha256) == 64


def test_defaults_for_optional_flags() -> None:
    def drop(data: dict[str, Any]) -> None:
        for key in ("share_photos", "share_protection_referrals", "title", "pseudonymised"):
            del data[key]

    agreement = load_agreement(variant(drop))
    assert agreement.share_photos is False and agreement.share_protection_referrals is False
    assert agreement.pseudonymised == frozenset()


def test_load_from_path_and_str_path(tmp_path: Path) -> None:
    path = tmp_path / "agreement.toml"
    path.write_text(to_toml(BASE), encoding="utf-8")
    assert load_agreement(path).id == load_agreement(str(path)).id == "MR-ML-2026"


def test_example_file_is_valid_but_not_in_force() -> None:
    agreement = load_agreement(EXAMPLE)
    assert ("MR-KOBENI", "ML-NIORO") in agreement.pairs_for("MRT")
    assert agreement.pseudonymised >= {"travel_document.number", "traveller.surname"}
    in_force, problems = agreement_status(agreement, TODAY)
    assert not in_force
    assert "not signed by MRT (MR-NATIONAL)" in problems
    assert "not signed by MLI (ML-NATIONAL)" in problems


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        keys = path.split("/")
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        last = keys[-1]
        if value is _DELETE:
            del target[last]
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


_DELETE = object()
OTHER_KEY = public_key_to_text(Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_set("id", _DELETE), "id"),
        (_set("id", "bad id!"), "id"),
        (_set("colour", "blue"), "colour"),
        (_set("version", 0), "version"),
        (_set("version", "1"), "version"),
        (_set("version", True), "version"),
        (_set("valid_from", "2026-01-01"), "valid_from"),
        (_set("valid_to", date(2025, 12, 31)), "valid_to"),
        (_set("valid_to", _DELETE), "valid_to"),
        (_set("retention_days", 0), "retention_days"),
        (_set("retention_days", 5000), "retention_days"),
        (_set("retention_days", True), "retention_days"),
        (_set("purposes", []), "purposes"),
        (_set("purposes", ["a", "a"]), "purposes"),
        (_set("hmac_key_id", _DELETE), "hmac_key_id"),
        (_set("hmac_key_check", "XYZ"), "hmac_key_check"),
        (_set("share_photos", "yes"), "share_photos"),
        (_set("parties", _DELETE), "parties"),
        (lambda d: d["parties"].pop(), "parties"),
        (_set("parties/0/colour", "blue"), "parties[0].colour"),
        (_set("parties/0/country", "Mauritania"), "parties[0].country"),
        (_set("parties/0/node", "mr national"), "parties[0].node"),
        (_set("parties/0/url", "ftp://example.mr"), "parties[0].url"),
        (_set("parties/1/public_key", "not-a-key"), "parties[1].public_key"),
        (_set("parties/1/public_key", _DELETE), "parties[1].public_key"),
        (_set("parties/1/country", "MRT"), "parties[1].country"),
        (
            _set("parties/1/public_key", public_key_to_text(MR_KEY.public_key())),
            "parties[1].public_key",
        ),  # fmt: skip
        (_set("paired_posts", []), "paired_posts"),
        (_set("paired_posts/0/SEN", "SN-ROSSO"), "paired_posts[0].SEN"),
        (_set("paired_posts/0/MLI", _DELETE), "paired_posts[0].MLI"),
        (_set("paired_posts/1/MRT", "MR-GOGUI"), "paired_posts[1].MRT"),
        (_set("paired_posts/1/MRT", "mr gogui"), "paired_posts[1].MRT"),
        (_set("record_types/officer", ["id"]), "record_types.officer"),
        (_set("record_types/crossing", ["id", "colour"]), "record_types.crossing.colour"),
        (_set("record_types/crossing", []), "record_types.crossing"),
        (_set("record_types", {}), "record_types"),
        (
            _set("record_types/traveller", ["id", "surname"]),
            "pseudonymised.traveller.given_names",
        ),
        (
            _set("pseudonymised", ["crossing.post"]),
            "pseudonymised.crossing.post",
        ),
        (
            _set("record_types/travel_document", ["id", "issuing_state", "number", "number_norm"]),
            "record_types.travel_document.number_norm",
        ),
        (
            _set("record_types/travel_document", ["id", "issuing_state", "number", "raw_mrz"]),
            "record_types.travel_document.raw_mrz",
        ),
        (
            _set("record_types/traveller", ["id", "surname", "given_names", "name_key"]),
            "record_types.traveller.name_key",
        ),
        (
            _set("record_types/crossing", ["id", "receipt"]),
            "record_types.crossing.receipt",
        ),
        (
            _set("record_types/protection_referral", ["id", "category"]),
            "record_types.protection_referral",
        ),
        (_set("record_types/photo", ["sha256"]), "record_types.photo"),
        (_set("signatures", {"SEN": "x"}), "signatures.SEN"),
        (_set("signatures", {"MRT": "AAAA"}), "signatures.MRT"),
        (_set("signatures", {"MRT": "not base64 !"}), "signatures.MRT"),
    ],
)
def test_invalid_agreements_name_the_field(
    change: Callable[[dict[str, Any]], None], field: str
) -> None:
    with pytest.raises(AgreementError) as caught:
        load_agreement(variant(change))
    assert caught.value.field == field, caught.value


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AgreementError) as caught:
        load_agreement("id = \n[[[")
    assert caught.value.field == "toml"
    with pytest.raises(AgreementError) as caught:
        load_agreement(tmp_path / "missing.toml")
    assert caught.value.field == "file"


def test_flags_allow_photos_and_referrals() -> None:
    def change(data: dict[str, Any]) -> None:
        data["share_photos"] = True
        data["share_protection_referrals"] = True
        data["record_types"]["photo"] = ["sha256", "width"]
        data["record_types"]["protection_referral"] = ["id", "crossing_id", "category"]

    agreement = load_agreement(variant(change))
    referral = {"id": "r1", "crossing_id": "c1", "category": "unaccompanied_minor", "note": "x"}
    out = filter_record(agreement, "protection_referral", referral, hmac_key=HMAC_KEY)
    assert out == {"id": "r1", "crossing_id": "c1", "category": "unaccompanied_minor"}
    photo = {"sha256": "ab" * 32, "width": 480, "face_encoding": "00ff"}
    out = filter_record(agreement, "photo", photo, hmac_key=HMAC_KEY)
    assert out == {"sha256": "ab" * 32, "width": 480}


def test_clear_fields_are_allowed_when_nothing_they_reveal_is_pseudonymised() -> None:
    def change(data: dict[str, Any]) -> None:
        data["pseudonymised"] = ["traveller.name_key"]
        data["record_types"]["traveller"] = ["id", "name_key", "surname_ar"]

    agreement = load_agreement(variant(change))
    row = {"id": "t1", "surname": "Ould Ahmed", "given_names": "Mohamed", "surname_ar": "ولد"}
    out = filter_record(agreement, "traveller", row, hmac_key=HMAC_KEY)
    assert out == {
        "id": "t1",
        "name_key": mac("name_key", name_key("Ould Ahmed", "Mohamed")),
        "surname_ar": "ولد",
    }


# ------------------------------------------------------------------------------------------
# signatures and validity
# ------------------------------------------------------------------------------------------
def test_canonical_content_ignores_layout_and_signatures() -> None:
    data = copy.deepcopy(BASE)
    assert canonical_content(data) == canonical_content(data | {"signatures": {"MRT": "x"}})
    decoded = json.loads(canonical_content(data))
    assert decoded["valid_from"] == "2026-01-01"
    assert list(decoded) == sorted(decoded)


def test_signed_by_both_is_in_force() -> None:
    agreement = load_agreement(signed(to_toml(BASE)))
    assert set(agreement.signatures) == {"MRT", "MLI"}
    assert signature_valid(agreement, "MRT") and signature_valid(agreement, "MLI")
    assert agreement_status(agreement, TODAY) == (True, [])


def test_party_urls_must_be_https_real_hosts_unless_the_development_flag() -> None:
    for url, problem in (
        ("http://borderpost.police.gov.mr", "must be https://"),
        ("https://borderpost.example.mr", "example host"),
        ("https://example.com", "example host"),
        ("https://national.example", "example host"),
    ):
        text = signed(variant(lambda d, url=url: d["parties"][0].__setitem__("url", url)))
        agreement = load_agreement(text)
        in_force, problems = agreement_status(agreement, TODAY)
        assert not in_force and problems[0].startswith("parties[0].url") and problem in problems[0]
        assert agreement_status(agreement, TODAY, development_urls=True) == (True, [])
        report = check_report(text, today=TODAY, hmac_key_available=True)
        assert report["exchange_allowed"] is False and report["in_force"] is False
    example = check_report(EXAMPLE, today=TODAY, hmac_key_available=True)
    assert any("example host" in p for p in example["problems"])


def test_a_revoked_version_is_not_in_force() -> None:
    agreement = load_agreement(signed(to_toml(BASE)))
    revoked = "on 2026-05-01 by MRT: breach"
    assert agreement_status(agreement, TODAY, revoked=revoked) == (False, [f"revoked: {revoked}"])
    text = signed(to_toml(BASE))
    report = check_report(
        text,
        today=TODAY,
        hmac_key_available=True,
        revocations={("MR-ML-2026", 1): revoked},
    )
    assert report["revoked"] == revoked and report["exchange_allowed"] is False
    later = check_report(
        text, today=TODAY, hmac_key_available=True, revocations={("MR-ML-2026", 2): revoked}
    )
    assert later["revoked"] is None and later["exchange_allowed"] is True


def test_revocation_notices_verify_only_for_the_party_and_version_they_name() -> None:
    from datetime import UTC, datetime

    from sync.exchange.signing import revocation_notice, sign_revocation, verify_revocation

    agreement = load_agreement(signed(to_toml(BASE)))
    notice = revocation_notice(agreement, "MRT", datetime(2026, 5, 1, tzinfo=UTC), "breach")
    signature = sign_revocation(notice, MR_KEY)
    decoded = verify_revocation(agreement, notice, signature)
    assert decoded["party"] == "MRT" and decoded["version"] == 1 and decoded["reason"] == "breach"
    with pytest.raises(ValueError):  # signed by the other party's key
        verify_revocation(agreement, notice, sign_revocation(notice, ML_KEY))
    with pytest.raises(ValueError):  # altered after signing
        verify_revocation(agreement, notice.replace(b"breach", b"nothing"), signature)
    other = load_agreement(signed(variant(lambda d: d.__setitem__("version", 2))))
    with pytest.raises(ValueError):  # another version of the agreement
        verify_revocation(other, notice, signature)
    with pytest.raises(ValueError):
        verify_revocation(agreement, b"not json", signature)


def test_one_signature_missing_stops_exchange() -> None:
    agreement = load_agreement(signed(to_toml(BASE), ("MRT", MR_KEY)))
    in_force, problems = agreement_status(agreement, TODAY)
    assert not in_force
    assert problems == ["not signed by MLI (ML-NATIONAL)"]


def test_tampered_content_breaks_both_signatures() -> None:
    text = signed(to_toml(BASE))
    tampered = text.replace("retention_days = 180", "retention_days = 3000")
    assert tampered != text
    agreement = load_agreement(tampered)
    in_force, problems = agreement_status(agreement, TODAY)
    assert not in_force
    assert problems == [
        "the signature of MRT (MR-NATIONAL) does not verify",
        "the signature of MLI (ML-NATIONAL) does not verify",
    ]


def test_comments_and_layout_do_not_break_signatures() -> None:
    text = signed(to_toml(BASE))
    relaid = "# a comment added later\n" + text.replace("version = 1", "version   =   1  # v1")
    assert agreement_status(load_agreement(relaid), TODAY) == (True, [])


def test_signature_from_the_wrong_key_does_not_verify() -> None:
    text = to_toml(BASE)
    forged = sign_agreement(text, "MRT", MR_KEY)
    # graft the MRT signature onto MLI's line: it is not MLI's key
    signature = re.search(r'\[signatures\]\nMRT = "([^"]+)"', forged)
    assert signature is not None
    grafted = forged + f'MLI = "{signature.group(1)}"\n'
    in_force, problems = agreement_status(load_agreement(grafted), TODAY)
    assert not in_force
    assert problems == ["the signature of MLI (ML-NATIONAL) does not verify"]


def test_sign_agreement_checks_the_key_and_replaces_its_own_line() -> None:
    text = to_toml(BASE)
    with pytest.raises(AgreementError) as caught:
        sign_agreement(text, "MLI", MR_KEY)
    assert caught.value.field == "signatures.MLI"
    with pytest.raises(AgreementError):
        sign_agreement(text, "SEN", MR_KEY)
    once = sign_agreement(text, "MR-NATIONAL", MR_KEY)  # node code works too
    twice = sign_agreement(once, "MRT", MR_KEY)
    assert twice.count("[signatures]") == 1
    assert twice.partition("[signatures]")[2].count("MRT = ") == 1
    assert signature_valid(load_agreement(twice), "MRT")


def test_a_new_version_needs_new_signatures() -> None:
    text = signed(to_toml(BASE))
    bumped = text.replace("version = 1", "version = 2")
    _, problems = agreement_status(load_agreement(bumped), TODAY)
    assert len(problems) == 2
    resigned = signed(bumped)
    assert agreement_status(load_agreement(resigned), TODAY) == (True, [])


@pytest.mark.parametrize(
    ("today", "in_force", "problem"),
    [
        (date(2025, 12, 31), False, "not yet valid: in force from 2026-01-01"),
        (date(2026, 1, 1), True, None),
        (date(2026, 12, 31), True, None),
        (date(2027, 1, 1), False, "expired on 2026-12-31"),
    ],
)
def test_validity_window(today: date, in_force: bool, problem: str | None) -> None:
    agreement = load_agreement(signed(to_toml(BASE)))
    assert agreement_status(agreement, today) == (in_force, [problem] if problem else [])


def test_purge_before() -> None:
    agreement = load_agreement(to_toml(BASE))
    assert purge_before(agreement, date(2026, 7, 1)) == date(2026, 1, 2)


# ------------------------------------------------------------------------------------------
# describe and the check report
# ------------------------------------------------------------------------------------------
def test_describe_lists_every_field_and_setting() -> None:
    rows = describe(load_agreement(to_toml(BASE)))
    table = {(row["record_type"], row["field"]): row["shared_as"] for row in rows}
    assert table[("travel_document", "number")] == PSEUDONYMISED
    assert table[("traveller", "surname")] == PSEUDONYMISED
    assert table[("traveller", "nationality")] == CLEAR
    assert table[("crossing", "direction")] == CLEAR
    assert table[("photo", "*")] == "not shared"
    assert table[("protection_referral", "*")] == "not shared"
    assert table[("(agreement)", "photos")] == "not shared"
    assert table[("(agreement)", "protection_referrals")] == "not shared"
    assert table[("(agreement)", "retention_days")] == "180 days"
    assert table[("(agreement)", "purposes")] == "border_management, migration_statistics"
    shared_fields = [r for r in rows if r["record_type"] in RECORD_TYPES and r["field"] != "*"]
    assert len(shared_fields) == sum(len(v) for v in BASE["record_types"].values())


def test_check_report_allows_exchange_only_when_everything_holds(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["hmac_key_check"] = key_check(HMAC_KEY, data["hmac_key_id"])
    path = tmp_path / "agreement.toml"
    path.write_text(signed(to_toml(data)), encoding="utf-8")

    good = check_report(path, today=TODAY, hmac_key_available=True, hmac_key=HMAC_KEY)
    json.dumps(good)  # JSON-able
    assert good["valid"] and good["in_force"] and good["exchange_allowed"]
    assert good["problems"] == [] and good["errors"] == []
    assert good["agreement"]["id"] == "MR-ML-2026"
    assert all(p["signature_valid"] for p in good["agreement"]["parties"])
    assert good["shares"] == describe(load_agreement(path))

    no_key = check_report(path, today=TODAY, hmac_key_available=False)
    assert no_key["in_force"] and not no_key["exchange_allowed"]
    assert no_key["problems"] == ["the HMAC key mr-ml-2026-k1 is not configured on this node"]

    wrong = check_report(path, today=TODAY, hmac_key_available=True, hmac_key=OTHER_HMAC_KEY)
    assert not wrong["exchange_allowed"]
    assert "does not match hmac_key_check" in wrong["problems"][0]

    expired = check_report(path, today=date(2030, 1, 1), hmac_key_available=True)
    assert not expired["exchange_allowed"] and expired["problems"] == ["expired on 2026-12-31"]


def test_check_report_on_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(variant(_set("retention_days", 0)), encoding="utf-8")
    report = check_report(path, today=TODAY, hmac_key_available=True)
    assert not report["valid"] and not report["exchange_allowed"]
    assert report["errors"][0]["field"] == "retention_days"


def test_check_report_warns_about_clear_identifying_fields() -> None:
    text = variant(_set("pseudonymised", ["travel_document.number"]))
    report = check_report(text, today=TODAY, hmac_key_available=True)
    assert "traveller.surname is identifying and shared in clear" in report["warnings"]
    assert report["file"] is None


# ------------------------------------------------------------------------------------------
# pseudonyms
# ------------------------------------------------------------------------------------------
def test_document_pseudonym_follows_the_specification() -> None:
    assert pseudonym("document_number", "a12-345", hmac_key=HMAC_KEY, issuing_state="mrt") == mac(
        "document_number", "MRT", "A12345"
    )


def test_same_document_typed_differently_gives_the_same_pseudonym() -> None:
    ours = pseudonym("document_number", "A 12-345", hmac_key=HMAC_KEY, issuing_state="MRT")
    theirs = pseudonym("document_number", "A12345", hmac_key=HMAC_KEY, issuing_state="MRT<")
    assert ours == theirs
    other_state = pseudonym("document_number", "A12345", hmac_key=HMAC_KEY, issuing_state="MLI")
    assert other_state != ours
    other_key = pseudonym("document_number", "A12345", hmac_key=OTHER_HMAC_KEY, issuing_state="MRT")
    assert other_key != ours


def test_same_name_written_differently_gives_the_same_pseudonym() -> None:
    ours = pseudonym("name", "Mohamed Ould Ahmed", hmac_key=HMAC_KEY)
    theirs = pseudonym("name", "MOHAMMED OULD AHMED", hmac_key=HMAC_KEY)
    assert ours == theirs == mac("name", normalise_name("Mohamed Ould Ahmed"))
    assert pseudonym("name", "Mohamed O. Ahmad", hmac_key=HMAC_KEY) == ours
    assert pseudonym("name", "Moussa Diallo", hmac_key=HMAC_KEY) != ours


def test_name_key_pseudonym_ignores_the_order_of_name_parts() -> None:
    one = pseudonym("name_key", "Ould Ahmed", given_names="Mohamed", hmac_key=HMAC_KEY)
    two = pseudonym("name_key", "MOHAMMED", given_names="ould ahmad", hmac_key=HMAC_KEY)
    assert one == two


def test_pseudonym_kinds_are_separated() -> None:
    as_name = pseudonym("name", "ABC", hmac_key=HMAC_KEY)
    as_document = pseudonym("document_number", "ABC", hmac_key=HMAC_KEY, issuing_state="MRT")
    assert as_name != as_document


def test_nothing_to_pseudonymise_gives_none() -> None:
    assert pseudonym("name", None, hmac_key=HMAC_KEY) is None
    assert pseudonym("name", " - ", hmac_key=HMAC_KEY) is None
    assert pseudonym("document_number", "A123", hmac_key=HMAC_KEY) is None
    assert pseudonym("document_number", "--", hmac_key=HMAC_KEY, issuing_state="MRT") is None


def test_pseudonym_refuses_short_keys_and_unknown_kinds() -> None:
    with pytest.raises(ValueError):
        pseudonym("name", "Ali", hmac_key=b"short")
    with pytest.raises(ValueError):
        pseudonym("colour", "blue", hmac_key=HMAC_KEY)  # type: ignore[arg-type]


def test_key_check_and_read_hmac_key(tmp_path: Path) -> None:
    assert key_check(HMAC_KEY, "k1") == key_check(HMAC_KEY, "k1") != key_check(HMAC_KEY, "k2")
    assert re.fullmatch(r"[0-9a-f]{16}", key_check(HMAC_KEY, "k1"))
    hex_file = tmp_path / "hex.key"
    hex_file.write_text(HMAC_KEY.hex() + "\n")
    os.chmod(hex_file, 0o600)
    assert read_hmac_key(hex_file) == HMAC_KEY
    b64_file = tmp_path / "b64.key"
    b64_file.write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
    os.chmod(b64_file, 0o600)
    assert read_hmac_key(b64_file) == HMAC_KEY
    os.chmod(hex_file, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        read_hmac_key(hex_file)
    short = tmp_path / "short.key"
    short.write_text("abcd")
    os.chmod(short, 0o600)
    with pytest.raises(ValueError):
        read_hmac_key(short)


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
    out = filter_record(AGREEMENT, "crossing", crossing, hmac_key=HMAC_KEY)
    assert out == {
        "id": "c1",
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
    out = filter_record(AGREEMENT, "travel_document", document, hmac_key=HMAC_KEY)
    assert out == {
        "id": "d1",
        "issuing_state": "MRT",
        "document_type": "P",
        "number": mac("document_number", "MRT", "A12345"),
        "expiry_date": "2030-01-01",
    }
    traveller = {"id": "t1", "surname": "Ould Ahmed", "given_names": "Mohamed", "sex": "M"}
    out = filter_record(AGREEMENT, "traveller", traveller, hmac_key=HMAC_KEY)
    assert out is not None
    assert out["surname"] == pseudonym("name", "OULD AHMAD", hmac_key=HMAC_KEY)
    assert out["given_names"] == pseudonym("name", "Mohammed", hmac_key=HMAC_KEY)
    assert "Ahmed" not in json.dumps(out) and "Mohamed" not in json.dumps(out)


def test_filter_record_refuses_unshared_types() -> None:
    for record_type in ("photo", "protection_referral", "officer", "audit_event", "alert"):
        assert filter_record(AGREEMENT, record_type, {"id": "x"}, hmac_key=HMAC_KEY) is None


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
    assert filter_record(hand_made, "protection_referral", {"id": 1}, hmac_key=HMAC_KEY) is None
    assert filter_record(hand_made, "photo", {"sha256": "ab"}, hmac_key=HMAC_KEY) is None
    # a pseudonymised field without a pseudonym rule, and a clear field that reveals a
    # pseudonymised one, are dropped rather than sent in clear
    crossing = filter_record(hand_made, "crossing", {"id": 1, "post": "X"}, hmac_key=HMAC_KEY)
    assert crossing == {"id": 1}
    document = {"number": "A1", "number_norm": "A1", "issuing_state": "MRT"}
    out = filter_record(hand_made, "travel_document", document, hmac_key=HMAC_KEY)
    assert out == {"number": mac("document_number", "MRT", "A1")}


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
        "traveller.surname",
        "traveller.given_names",
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


def expected_pseudonym(qualified: str, row: dict[str, Any]) -> str | None:
    """The documented pseudonym of a field, from the specification alone."""
    field = qualified.partition(".")[2]
    if qualified == "travel_document.number":
        number, state = row.get("number"), row.get("issuing_state")
        number = normalise_document_number(_text(number)) if number is not None else ""
        state = normalise_document_number(_text(state)) if state is not None else ""
        return mac("document_number", state, number) if number and state else None
    if qualified == "traveller.name_key":
        surname, given = row.get("surname"), row.get("given_names")
        if surname is None and given is None:
            return None
        key = name_key(
            _text(surname) if surname is not None else "",
            _text(given) if given is not None else "",
        )
        return mac("name_key", key) if key else None
    value = row.get(field)
    normalised = normalise_name(_text(value)) if value is not None else ""
    return mac("name", normalised) if normalised else None


HEX64 = re.compile(r"[0-9a-f]{64}")


@settings(max_examples=400, deadline=None)
@given(agreement=agreements(), data=st.data())
def test_nothing_outside_the_agreement_ever_leaves(
    agreement: Agreement, data: st.DataObject
) -> None:
    record_type, row = data.draw(records(agreement))
    out = filter_record(agreement, record_type, row, hmac_key=HMAC_KEY)
    if not agreement.is_shared(record_type):
        assert out is None
        return
    assert out is not None
    allowed = agreement.record_types[record_type]
    assert set(out) <= allowed
    for field, value in out.items():
        qualified = f"{record_type}.{field}"
        if qualified not in agreement.pseudonymised:
            assert value is row[field]
            assert not REVEALS.get(qualified, set()) & agreement.pseudonymised
            continue
        assert value == expected_pseudonym(qualified, row)
        assert value is None or HEX64.fullmatch(value)
        clear = row.get(field)
        if clear is not None and value is not None:
            assert value != clear
            if isinstance(clear, str) and set(clear) - set(string.hexdigits.lower()):
                assert clear not in value
