"""Translatable words of the pages that come from the services as codes: roles, directions,
decisions, check and quality codes, desk instructions, sync warnings and flash messages.

Services speak English and stable codes; the pages translate the codes, and fall back to
the service's English message for a code they do not know.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from registry.vocabulary import (
    AlertEvidence,
    Decision,
    Direction,
    Mode,
    ReferralCategory,
    ReferralOutcome,
    ReferralStatus,
    Role,
    Sex,
    WatchlistAction,
)
from registry.watchlists.policy import INSTRUCTIONS
from registry.web.i18n import N_

Gettext = Callable[[str], str]

ROLE_NAMES: dict[Role, str] = {
    Role.OFFICER: N_("Border officer"),
    Role.SUPERVISOR: N_("Supervisor"),
    Role.PROTECTION: N_("Protection officer"),
    Role.HQ_ANALYST: N_("HQ analyst"),
    Role.LIAISON: N_("Liaison officer"),
    Role.ADMIN: N_("Administrator"),
}
DIRECTIONS: dict[Direction, str] = {Direction.ENTRY: N_("Entry"), Direction.EXIT: N_("Exit")}
DECISIONS: dict[Decision, str] = {
    Decision.CLEARED: N_("Cleared"),
    Decision.REFERRED: N_("Referred"),
    Decision.REFUSED: N_("Refused"),
}
MODES: dict[Mode, str] = {
    Mode.FOOT: N_("On foot"),
    Mode.CAR: N_("Car"),
    Mode.BUS: N_("Bus"),
    Mode.TRUCK: N_("Truck"),
    Mode.MOTORCYCLE: N_("Motorcycle"),
    Mode.ANIMAL: N_("Animal"),
    Mode.BOAT: N_("Boat"),
    Mode.OTHER: N_("Other"),
}
SEXES: dict[Sex, str] = {Sex.M: N_("Male"), Sex.F: N_("Female"), Sex.X: N_("Unspecified")}
PURPOSES = {
    "tourism": N_("Tourism"),
    "business": N_("Business"),
    "family": N_("Family visit"),
    "work": N_("Work"),
    "trade": N_("Trade"),
    "transit": N_("Transit"),
    "studies": N_("Studies"),
    "medical": N_("Medical care"),
    "pastoral": N_("Pastoral movement"),
    "return": N_("Return home"),
}
# The terms of a data-sharing agreement as the admin and liaison pages show them
# (sync.exchange.report.describe: how a field is shared, the agreement's settings, purposes).
AGREEMENT_TERMS = {
    "clear": N_("in clear"),
    "pseudonymised (blinded, X25519)": N_("pseudonymised (blinded with each country's own key)"),
    "not shared": N_("not shared"),
    "shared": N_("shared"),
    "photos": N_("Photos"),
    "protection_referrals": N_("Protection referrals"),
    "note_text": N_("Free text of liaison notes"),
    "retention_days": N_("Retention"),
    "purposes": N_("Purposes"),
    "daily_blinding_budget": N_("Records of the partner blinded per day, at most"),
    "daily_hit_budget": N_("Hit/no-hit questions answered per day, at most"),
    "records": N_("records"),
    "queries": N_("questions"),
    "validity": N_("Validity"),
    "(agreement)": N_("(agreement)"),
    "border_management": N_("Border management"),
    "document_fraud_detection": N_("Document fraud detection"),
    "migration_statistics": N_("Migration statistics"),
    "days": N_("days"),
}

# What the agreement shares, by record type and field (sync.exchange.model.RECORD_TYPES; a
# test checks that every shareable field has its name here).
AGREEMENT_RECORDS = {
    "crossing": N_("Crossing"),
    "traveller": N_("Traveller"),
    "travel_document": N_("Travel document"),
    "photo": N_("Photo"),
    "protection_referral": N_("Protection referral"),
}
AGREEMENT_FIELDS = {
    "id": N_("Identifier"),
    "origin": N_("Node of origin"),
    "post": N_("Post"),
    "direction": N_("Direction"),
    "occurred_at": N_("Time of the crossing"),
    "officer_id": N_("Officer (identifier)"),
    "traveller_id": N_("Traveller (identifier)"),
    "document_id": N_("Document (identifier)"),
    "crossing_id": N_("Crossing (identifier)"),
    "photo_sha256": N_("Photo fingerprint"),
    "mode": N_("Mode of travel"),
    "vehicle_plate": N_("Vehicle plate"),
    "purpose": N_("Purpose of travel"),
    "destination": N_("Destination"),
    "guardian_crossing_id": N_("Guardian's crossing"),
    "companions": N_("Companions"),
    "decision": N_("Decision"),
    "remarks": N_("Remarks"),
    "checks": N_("Warnings"),
    "stay_allowed_until": N_("Stay allowed until"),
    "closes_crossing_id": N_("Entry it closes"),
    "overstay_days": N_("Days overstayed"),
    "version": N_("Version"),
    "supersedes": N_("Version it corrects"),
    "correction_reason": N_("Reason for the correction"),
    "receipt": N_("Receipt"),
    "recorded_at": N_("Time recorded"),
    "created_at": N_("Time recorded"),
    "surname": N_("Surname"),
    "given_names": N_("Given names"),
    "surname_ar": N_("Surname (Arabic script)"),
    "given_names_ar": N_("Given names (Arabic script)"),
    "name_key": N_("Name key (for matching)"),
    "date_of_birth": N_("Date of birth"),
    "sex": N_("Sex"),
    "nationality": N_("Nationality"),
    "issuing_state": N_("Issuing state"),
    "document_type": N_("Document type"),
    "number": N_("Document number"),
    "number_norm": N_("Document number (for matching)"),
    "expiry_date": N_("Expiry date"),
    "issue_date": N_("Issue date"),
    "raw_mrz": N_("MRZ as read"),
    "mrz_checks": N_("MRZ checks"),
    "quality_score": N_("Quality score"),
    "quality": N_("Quality report"),
    "face_encoding": N_("Face template"),
    "size_bytes": N_("Size (bytes)"),
    "width": N_("Width (pixels)"),
    "height": N_("Height (pixels)"),
    "sha256": N_("Fingerprint (SHA-256)"),
    "category": N_("Category"),
    "note": N_("Note"),
    "created_by": N_("Reporting officer"),
}


def agreement_name(record_type: str, field: str, _: Gettext) -> tuple[str, str]:
    """A row of what an agreement shares, named in the reader's language: the record type
    and the field (``*``: the whole record); an unknown name as written."""
    record = _(AGREEMENT_RECORDS[record_type]) if record_type in AGREEMENT_RECORDS else None
    if record is None:
        return agreement_term(record_type, _), agreement_term(field, _)
    return record, _(AGREEMENT_FIELDS[field]) if field in AGREEMENT_FIELDS else field


# Why an agreement is not in force (``sync.exchange.signing.agreement_status``, which the
# CLI prints in English): each shape, with its values, in the reader's language.
AGREEMENT_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"revoked: (?P<detail>.+)"), N_("Revoked: %(detail)s")),
    (
        re.compile(r"parties\[\d+\]\.url: must be https:// .*"),
        N_(
            "A party's address must be https:// between the two countries (plain http only "
            "with BORDERPOST_AGREEMENT_DEVELOPMENT_URLS)"
        ),
    ),
    (
        re.compile(
            r"parties\[\d+\]\.url: (?P<host>\S+) is an example host: put the real address "
            r"of (?P<node>.+)"
        ),
        N_("%(host)s is an example address: put the real address of %(node)s"),
    ),
    (
        re.compile(r"not yet valid: in force from (?P<day>\S+)"),
        N_("Not yet valid: in force from %(day)s"),
    ),
    (re.compile(r"expired on (?P<day>\S+)"), N_("Expired on %(day)s")),
    (re.compile(r"not signed by (?P<party>.+)"), N_("Not signed by %(party)s")),
    (
        re.compile(r"the signature of (?P<party>.+) does not verify"),
        N_("The signature of %(party)s does not verify"),
    ),
)


def agreement_problem(problem: str, _: Gettext, day: Callable[[str], str]) -> str:
    """One of ``agreement_status``'s problems in the reader's language (days through
    ``day``, the pages' format); an unknown one as written."""
    for pattern, message in AGREEMENT_PROBLEMS:
        match = pattern.fullmatch(problem)
        if match:
            values = match.groupdict()
            if "day" in values:
                values["day"] = day(values["day"])
            return _(message) % values
    return problem


def agreement_term(value: str, _: Gettext) -> str:
    """An agreement term in the reader's language: a known term, a list of purposes, or a
    number of days; anything else (a key id, dates) as written."""
    if value in AGREEMENT_TERMS:
        return _(AGREEMENT_TERMS[value])
    number, _space, unit = value.partition(" ")
    if number.isdigit() and unit in ("days", "records", "queries"):
        return f"{number} {_(AGREEMENT_TERMS[unit])}"
    if ", " in value and all(part in AGREEMENT_TERMS for part in value.split(", ")):
        return ", ".join(_(AGREEMENT_TERMS[part]) for part in value.split(", "))
    return value


REFERRAL_CATEGORIES: dict[ReferralCategory, str] = {
    ReferralCategory.TRAFFICKING_SUSPECTED: N_("Suspected trafficking"),
    ReferralCategory.UNACCOMPANIED_MINOR: N_("Unaccompanied minor"),
    ReferralCategory.SEPARATED_MINOR: N_("Separated minor"),
    ReferralCategory.OTHER_VULNERABILITY: N_("Other vulnerability"),
}
REFERRAL_STATUSES: dict[ReferralStatus, str] = {
    ReferralStatus.OPEN: N_("Awaiting follow-up"),
    ReferralStatus.IN_FOLLOW_UP: N_("In follow-up"),
    ReferralStatus.CLOSED: N_("Closed"),
}
REFERRAL_OUTCOMES: dict[ReferralOutcome, str] = {
    ReferralOutcome.PROTECTED: N_("Protected (shelter or care arranged)"),
    ReferralOutcome.HANDED_TO_SERVICES: N_("Handed to social services"),
    ReferralOutcome.REUNITED_WITH_FAMILY: N_("Reunited with family"),
    ReferralOutcome.NO_PROTECTION_NEED: N_("No protection need found"),
    ReferralOutcome.LOST_CONTACT: N_("Contact lost"),
}
EVIDENCE: dict[AlertEvidence, str] = {
    AlertEvidence.DOCUMENT: N_("Document"),
    AlertEvidence.NAME_DOB: N_("Name and birth date"),
    AlertEvidence.FACE: N_("Face"),
}
# the evidence of an alert raised by another biometric modality: its plug-in's name
BIOMETRIC_EVIDENCE = N_("Biometric: %(modality)s")
FACE_BANDS = {
    "HIGH": N_("strong match"),
    "MEDIUM": N_("probable match"),
    "LOW": N_("weak match"),
    "NONE": N_("no match"),
}
WATCHLIST_ACTIONS: dict[WatchlistAction, str] = {
    WatchlistAction.REFER_SECONDARY: N_("Refer to secondary inspection"),
    WatchlistAction.NOTIFY: N_("Notify"),
    WatchlistAction.PROTECT: N_("Protect"),
}
# The audit log in words, for the supervisor's view of an officer's actions.
AUDIT_ACTIONS = {
    "create": N_("Created"),
    "read": N_("Opened"),
    "search": N_("Searched"),
    "correct": N_("Corrected"),
    "update": N_("Changed"),
    "adjudicate": N_("Adjudicated"),
    "annotate": N_("Annotated"),
    "export": N_("Exported"),
    "import": N_("Imported"),
    "statistics": N_("Read statistics"),
    "login": N_("Logged in"),
    "logout": N_("Logged out"),
    "logout_idle": N_("Logged out after idling"),
    "login_failed": N_("Failed log-in"),
    "login_locked": N_("Log-in locked"),
    "set_password": N_("Changed a password"),
    "set_language": N_("Changed the language"),
    "activate": N_("Reactivated"),
    "deactivate": N_("Deactivated"),
    "revoke": N_("Revoked"),
    "release": N_("Released"),
    "reconcile": N_("Reconciled"),
    "hit_query": N_("Asked the partner"),
    "detail_request": N_("Asked for details"),
}
AUDIT_RECORDS = {
    "crossing": N_("Crossing"),
    "traveller": N_("Traveller"),
    "photo": N_("Photo"),
    "alert": N_("Alert"),
    "protection_referral": N_("Protection referral"),
    "officer": N_("Account"),
    "officer_activity": N_("Officers' activity"),
    "watchlist_entry": N_("Watchlist entry"),
    "statistic": N_("Statistics"),
    "document": N_("By document"),
    "name": N_("By name"),
    "range": N_("By period"),
    "open_stays": N_("Open stays"),
    "overstays": N_("Overstayers"),
    "stay_rules": N_("Stay rules"),
    "agreement": N_("Agreement"),
    "discrepancy": N_("Discrepancy"),
    "hit_query": N_("Hit/no-hit query"),
    "reconciliation": N_("Reconciliation"),
    "sync_peer": N_("Post"),
}
AUDIT_PURPOSES = {
    "registration": N_("Registration"),
    "registration_replay": N_("Registration"),
    "desk_check": N_("Check at the desk"),
    "correction": N_("Correction"),
    "search": N_("Search"),
    "history": N_("Traveller history"),
    "view": N_("Consultation"),
    "versions": N_("Consultation"),
    "receipt_html": N_("Receipt"),
    "authentication": N_("Log-in"),
    "account_management": N_("Account management"),
    "supervision": N_("Supervision"),
    "alert_review": N_("Alert adjudication"),
    "protection": N_("Protection"),
    "watchlist_management": N_("Watchlist management"),
    "watchlist_import": N_("Watchlist import"),
    "watchlist_export": N_("Watchlist export"),
    "statistics": N_("Statistics"),
    "hq_timeline": N_("Timeline"),
    "liaison": N_("Liaison"),
    "sync": N_("Sync"),
    "exchange": N_("Exchange with the partner"),
}
INSTRUCTION_TEXT = {
    INSTRUCTIONS["refer_secondary"]: N_("Refer to secondary inspection"),
    INSTRUCTIONS["protect"]: N_("Refer to the protection officer"),
    INSTRUCTIONS["notify"]: N_("Process as usual: the listing's owner is notified"),
}
CHECK_TEXT = {
    "mrz_check_digit_failed": N_("Check digit does not match"),
    "mrz_invalid_date": N_("Not a valid date"),
    "mrz_bad_country_code": N_("Unknown country code"),
    "mrz_invalid_sex": N_("Invalid sex code"),
    "mrz_invalid_characters": N_("Invalid characters in the MRZ"),
    "mrz_document_expired": N_("Document expired"),
    "mrz_mismatch": N_("Typed value differs from the MRZ"),
    "document_expired": N_("Document expired"),
    "document_not_yet_valid": N_("Document not yet valid"),
    "document_dates_inconsistent": N_("Expiry date is not after the issue date"),
    "birth_date_in_future": N_("Date of birth is in the future"),
    "minor_without_guardian": N_("Minor: link the guardian's crossing"),
    "previous_entry_not_closed": N_("Previous entry has no recorded exit"),
    "stay_allowance_used": N_("No days left under the allowed-stay rule"),
    "exit_without_entry": N_("No open entry recorded for this traveller"),
    "overstay": N_("Overstay"),
    "photo_quality_override": N_("Photo accepted by officer override"),
    "photo_refused": N_("Photo refused: retake it, or give the reason for accepting it"),
    "name_mismatch": N_("Typed name differs from the MRZ name"),
    "check_digit_failed": N_("Check digit does not match"),
    "invalid_date": N_("Not a valid date"),
    "bad_country_code": N_("Unknown country code"),
    "invalid_sex": N_("Invalid sex code"),
    "invalid_characters": N_("Invalid characters in the MRZ"),
    "wrong_line_count": N_("Wrong number of MRZ lines"),
    "wrong_line_length": N_("Wrong MRZ line length"),
    "unknown_format": N_("Unknown MRZ format"),
}
QUALITY_TEXT = {
    "no_face": N_("No face found"),
    "multiple_faces": N_("More than one face"),
    "face_cut_off": N_("Face partly outside the photo"),
    "face_too_small": N_("Face too small: come closer"),
    "too_blurry": N_("Photo too blurry"),
    "too_noisy": N_("Photo too noisy"),
    "underexposed": N_("Photo too dark"),
    "overexposed": N_("Photo too bright"),
    "not_centred": N_("Face not centred"),
    "not_frontal": N_("Head turned or tilted: face the camera"),
}
FLASH = {
    "adjudicated": N_("The alert has been adjudicated."),
    "officer_created": N_("The account has been created."),
    "officer_deactivated": N_("The account has been deactivated; its sessions are revoked."),
    "officer_activated": N_("The account has been reactivated."),
    "login_unlocked": N_("The login lockout has been lifted."),
    "peer_approved": N_("The post has been approved."),
    "peer_revoked": N_("The post has been revoked."),
    "peer_removed": N_("The post has been removed."),
    "quarantine_retried": N_("The record has been stored; it has left the quarantine."),
    "quarantine_discarded": N_("The record has been discarded; it stays listed as discarded."),
    "quarantine_kept": N_("The record is still refused; it stays in quarantine."),
    "language_saved": N_("Language saved."),
    "crossing_corrected": N_("The correction has been saved as a new version."),
    "referral_attached": N_("The protection officer has been alerted: referral attached."),
    "follow_up_added": N_("The follow-up has been added to the case."),
    "case_closed": N_("The case has been closed."),
    "password_changed": N_("Your password has been changed; your other sessions have ended."),
    "password_reset": N_(
        "The password has been reset; the officer must choose a new one at the next login."
    ),
    "logged_out": N_("You have been logged out."),
    "note_saved": N_("The note has been added; it travels to the partner."),
    "released": N_("The details have been released to the partner."),
    "refused": N_("The request for details has been refused."),
}
SYNC_NOT_ENROLLED = N_("This post is not enrolled with a national node: records stay here.")
SYNC_NEVER = N_("This post has never synchronised with the national node.")
SYNC_OFFLINE = N_(
    "No successful sync for %(days)s days (limit %(limit)s days); %(backlog)s records wait."
)
SYNC_QUARANTINED = N_(
    "National could not store %(count)s records of this post and holds them in quarantine: "
    "%(records)s. Tell the national administrator."
)
UNKNOWN = N_("Unknown")
# Fields of the pages' forms and query strings, as an error page names them.
FIELD_NAMES = {
    "date_of_birth": N_("Date of birth"),
    "date_from": N_("From"),
    "date_to": N_("To"),
    "as_of": N_("As of"),
    "since": N_("From"),
    "until": N_("To"),
    "day_from": N_("From"),
    "day_to": N_("To"),
    "issuing_state": N_("Issuing state"),
    "number": N_("Document number"),
    "name": N_("Name"),
    "offset": N_("Page"),
    "kind": N_("Show"),
    "post": N_("Post"),
    "nationality": N_("Nationality"),
    "username": N_("Username"),
    "photo": N_("Photo"),
    "file": N_("File"),
    "body": N_("Request"),
    "traveller_id": N_("Traveller"),
}
# Clean-text refusals (registry.text codes); the field name stays as the API names it.
TEXT_REFUSED_IN = N_("Invalid text in %(field)s: %(reason)s")
TEXT_REFUSALS = {
    "not_text": N_("must be text"),
    "control_character": N_("contains a control character (%(char)s)"),
    "line_break": N_("must stay on one line (%(char)s)"),
    "format_character": N_(
        "contains an invisible formatting character (%(char)s), such as a direction override "
        "or a zero-width space"
    ),
    "surrogate": N_("contains an invalid character (%(char)s)"),
    "noncharacter": N_("contains a Unicode noncharacter (%(char)s)"),
    "private_use": N_("contains a private-use character (%(char)s)"),
    "required": N_("is required"),
    "too_short": N_("needs at least %(limit)s characters"),
    "too_long": N_("is longer than %(limit)s characters once normalised"),
    "derived_too_long": N_(
        "is too long once normalised for matching (%(derived)s over %(limit)s characters)"
    ),
}


def text_refusal_text(param: dict[str, str], _: Gettext) -> str:
    """The translated reason of a clean-text refusal (an ``invalid_params`` entry with a
    ``code``), or the service's English reason for anything else."""
    code = param.get("code")
    if code not in TEXT_REFUSALS:
        return param.get("reason", "")
    values = {name: param.get(name, "") for name in ("char", "limit", "derived")}
    return _(TEXT_REFUSALS[code]) % values


def text_refused_text(param: dict[str, str], _: Gettext) -> str:
    """A whole sentence for a clean-text refusal, naming the field."""
    return _(TEXT_REFUSED_IN) % {"field": param["name"], "reason": text_refusal_text(param, _)}


def label(table: Mapping[Any, str], code: str | None, _: Gettext) -> str:
    """The translated name of a code, or the code itself when the table lacks it (a
    vocabulary's table is keyed by its ``StrEnum`` members, which equal their codes)."""
    if code is None:
        return ""
    return _(table[code]) if code in table else str(code)


def evidence_text(code: str, _: Gettext) -> str:
    """What matched for an alert, in the reader's language: a vocabulary code's name, or for
    another biometric modality (its plug-in's entry-point name), "Biometric: <name>"."""
    if code in EVIDENCE:
        return _(EVIDENCE[code])  # type: ignore[index]
    return _(BIOMETRIC_EVIDENCE) % {"modality": code}


def check_text(code: str, fallback: str, _: Gettext) -> str:
    return _(CHECK_TEXT[code]) if code in CHECK_TEXT else fallback


def instruction_text(instruction: str, _: Gettext) -> str:
    return _(INSTRUCTION_TEXT[instruction]) if instruction in INSTRUCTION_TEXT else instruction


def flash_message(code: str | None, _: Gettext) -> str:
    return _(FLASH[code]) if code in FLASH else ""


def sync_warning_text(banner: dict[str, Any], _: Gettext) -> str:
    """The banner's text: the offline warning, then what national holds in quarantine."""
    texts = [_offline_text(banner, _)] if banner.get("warning") else []
    if quarantined := banner.get("quarantined"):
        records = ", ".join(
            f"{q['record_type']} {q['record_id']} ({q['reason']})" for q in quarantined[:3]
        )
        texts.append(_(SYNC_QUARANTINED) % {"count": len(quarantined), "records": records})
    return " ".join(texts)


def _offline_text(banner: dict[str, Any], _: Gettext) -> str:
    warning = banner.get("warning") or ""
    if warning.startswith("not enrolled"):
        return _(SYNC_NOT_ENROLLED)
    if warning == "never synced":
        return _(SYNC_NEVER)
    days = banner.get("days")
    return _(SYNC_OFFLINE) % {
        "days": int(days) if days is not None else "?",
        "limit": banner.get("limit"),
        "backlog": banner.get("backlog"),
    }


# Why a portrait was refused (registry.photos.PhotoRefused.reason), in the officer's language.
PHOTO_REFUSED = N_("Photo refused")
PHOTO_REFUSALS = {
    "empty": N_("The photo file is empty."),
    "too_large_bytes": N_("The photo file is too large."),
    "too_many_pixels": N_(
        "The photo is too large: at most %(side)s pixels a side and %(megapixels)s megapixels."
    ),
    "not_an_image": N_("This file is not a photo."),
    "unsupported_type": N_("This image format is not accepted: send a JPEG, PNG or WebP photo."),
    "unsupported_mode": N_(
        "Black-and-white (1-bit), 16-bit and other unusual images are not accepted: "
        "send an ordinary colour or greyscale photo."
    ),
    "corrupt": N_("The photo file is damaged."),
    "busy": N_("The post is busy with other photos: send this one again in a moment."),
}


def photo_refusal_text(reason: str, settings: Any, _: Gettext) -> str:
    """Why a portrait was refused, for the desk (``settings`` gives the size limits)."""
    if reason not in PHOTO_REFUSALS:
        return _(PHOTO_REFUSED)
    return _(PHOTO_REFUSALS[reason]) % {
        "side": settings.max_photo_side,
        "megapixels": round(settings.max_photo_pixels / 1_000_000, 1),
    }
