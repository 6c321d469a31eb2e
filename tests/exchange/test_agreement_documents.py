"""Data-sharing agreements as documents: parsing (every field named when invalid), signatures
by both parties and validity (revocations, tampering, new versions, the validity window), the
description of what is shared and how, and the check report an operator reads.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.names import name_key
from registry.receipts import public_key_to_text
from sync.exchange.enforcement import filter_record
from sync.exchange.model import RECORD_TYPES, AgreementError, canonical_content, purge_before
from sync.exchange.parsing import load_agreement
from sync.exchange.report import CLEAR, PSEUDONYMISED, check_report, describe
from sync.exchange.signing import agreement_status, sign_agreement, signature_valid
from tests.support.agreement_texts import (
    BASE,
    EXAMPLE,
    KEY,
    ML_KEY,
    MR_KEY,
    TODAY,
    mac,
    ref,
    signed,
    to_toml,
    variant,
)


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
