"""Data-sharing agreements: parsing, signatures, validity, description, pseudonyms and the
one enforcement function ``filter_record`` (with a property test over generated records and
agreements)."""

from __future__ import annotations

import base64
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
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.names import name_key, normalise_document_number, normalise_name
from registry.receipts import public_key_to_text
from sync.exchange.enforcement import ID_FIELDS, filter_record
from sync.exchange.model import (
    PSEUDONYMISABLE,
    RECORD_TYPES,
    Agreement,
    AgreementError,
    canonical_content,
    purge_before,
)
from sync.exchange.parsing import load_agreement
from sync.exchange.pseudonyms import (
    BlindingKey,
    decode_element,
    document_message,
    element_message,
    pseudonymous_id,
    read_blinding_key,
    write_blinding_key,
)
from sync.exchange.report import CLEAR, PSEUDONYMISED, check_report, describe
from sync.exchange.signing import agreement_status, sign_agreement, signature_valid

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "agreements" / "mr-ml-2026.toml"
MR_KEY = Ed25519PrivateKey.generate()
ML_KEY = Ed25519PrivateKey.generate()
KEY = BlindingKey(bytes(range(31)) + b"\x01")
PARTNER_KEY = BlindingKey(bytes(range(1, 32)) + b"\x02")
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
    "daily_hit_budget": 100,
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


def mac(*parts: str, key: BlindingKey = KEY) -> str:
    """The documented blinded element ``H(bp2|parts)^a``, computed independently of the
    module and of libsodium: SHA-512 of ``bp3|x25519|`` and the message reduced mod 2^255-19,
    then OpenSSL's X25519 with ``HMAC-SHA256(scalar, "bp2|exchange")``, unpadded base64url."""
    message = "|".join(("bp2", *parts)).encode()
    u = int.from_bytes(hashlib.sha512(b"bp3|x25519|" + message).digest(), "little") % (2**255 - 19)
    scalar = hmac.new(key.scalar, b"bp2|exchange", hashlib.sha256).digest()
    blinded = X25519PrivateKey.from_private_bytes(scalar).exchange(
        X25519PublicKey.from_public_bytes(u.to_bytes(32, "little"))
    )
    return base64.urlsafe_b64encode(blinded).rstrip(b"=").decode()


def ref(value: Any, key: BlindingKey = KEY, agreement_id: str = "MR-ML-2026") -> str:
    """The documented pseudonymous id of one of our ids."""
    ids_key = hmac.new(key.scalar, f"bp2|ids|{agreement_id}".encode(), hashlib.sha256).digest()
    return hmac.new(ids_key, str(value).encode(), hashlib.sha256).hexdigest()[:32]


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
    assert agreement.pseudonymised >= {"travel_document.number", "traveller.name_key"}
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
        (_set("daily_hit_budget", 0), "daily_hit_budget"),
        (_set("daily_blinding_budget", "many"), "daily_blinding_budget"),
        (_set("detail_fields", {"photo": ["sha256"]}), "detail_fields.photo"),
        (_set("detail_fields", {"crossing": ["colour"]}), "detail_fields.crossing.colour"),
        (_set("detail_fields", {"crossing": ["post"]}), "detail_fields.crossing.post"),
        (_set("detail_fields", {"crossing": "remarks"}), "detail_fields.crossing"),
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
    out = filter_record(agreement, "protection_referral", referral, key=KEY)
    assert out == {"id": ref("r1"), "crossing_id": ref("c1"), "category": "unaccompanied_minor"}
    photo = {"sha256": "ab" * 32, "width": 480, "face_encoding": "00ff"}
    out = filter_record(agreement, "photo", photo, key=KEY)
    assert out == {"sha256": "ab" * 32, "width": 480}


def test_clear_fields_are_allowed_when_nothing_they_reveal_is_pseudonymised() -> None:
    def change(data: dict[str, Any]) -> None:
        data["pseudonymised"] = ["traveller.name_key"]
        data["record_types"]["traveller"] = ["id", "name_key", "surname_ar"]

    agreement = load_agreement(variant(change))
    row = {"id": "t1", "surname": "Ould Ahmed", "given_names": "Mohamed", "surname_ar": "ولد"}
    out = filter_record(agreement, "traveller", row, key=KEY)
    assert out == {
        "id": ref("t1"),
        "name_key": mac("person", name_key("Ould Ahmed", "Mohamed")),
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
        report = check_report(text, today=TODAY, key_available=True)
        assert report["exchange_allowed"] is False and report["in_force"] is False
    example = check_report(EXAMPLE, today=TODAY, key_available=True)
    assert any("example host" in p for p in example["problems"])


def test_a_revoked_version_is_not_in_force() -> None:
    agreement = load_agreement(signed(to_toml(BASE)))
    revoked = "on 2026-05-01 by MRT: breach"
    assert agreement_status(agreement, TODAY, revoked=revoked) == (False, [f"revoked: {revoked}"])
    text = signed(to_toml(BASE))
    report = check_report(
        text,
        today=TODAY,
        key_available=True,
        revocations={("MR-ML-2026", 1): revoked},
    )
    assert report["revoked"] == revoked and report["exchange_allowed"] is False
    later = check_report(
        text, today=TODAY, key_available=True, revocations={("MR-ML-2026", 2): revoked}
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
    path = tmp_path / "agreement.toml"
    path.write_text(signed(to_toml(data)), encoding="utf-8")

    good = check_report(path, today=TODAY, key_available=True, key=KEY)
    json.dumps(good)  # JSON-able
    assert good["valid"] and good["in_force"] and good["exchange_allowed"]
    assert good["problems"] == [] and good["errors"] == []
    assert good["agreement"]["id"] == "MR-ML-2026"
    assert good["agreement"]["daily_hit_budget"] == 100
    assert all(p["signature_valid"] for p in good["agreement"]["parties"])
    assert good["shares"] == describe(load_agreement(path))

    no_key = check_report(path, today=TODAY, key_available=False)
    assert no_key["in_force"] and not no_key["exchange_allowed"]
    assert no_key["problems"] == ["this node's blinding key for the agreement is not configured"]

    expired = check_report(path, today=date(2030, 1, 1), key_available=True)
    assert not expired["exchange_allowed"] and expired["problems"] == ["expired on 2026-12-31"]


def test_check_report_on_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(variant(_set("retention_days", 0)), encoding="utf-8")
    report = check_report(path, today=TODAY, key_available=True)
    assert not report["valid"] and not report["exchange_allowed"]
    assert report["errors"][0]["field"] == "retention_days"


def test_check_report_warns_about_clear_identifying_fields() -> None:
    text = variant(_set("pseudonymised", ["travel_document.number"]))
    report = check_report(text, today=TODAY, key_available=True)
    assert "traveller.surname is identifying and shared in clear" in report["warnings"]
    assert report["file"] is None


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
            if isinstance(clear, str) and set(clear) - set(string.hexdigits.lower()):
                assert clear not in value
