"""The vocabularies are spelled once (``registry.vocabulary``): the models' tuples, the
request schemas and the pages' labels all follow them, so a code added there cannot be
left without its label, its validation or its place in the model."""

from __future__ import annotations

import msgspec
import pytest

from registry import models, vocabulary
from registry.crossings.schemas import RegistrationRequest
from registry.officers.schemas import OfficerCreate
from registry.watchlists import pages as watchlist_pages
from registry.watchlists.schemas import AlertFigures
from registry.web import messages

LABELS = {
    vocabulary.Role: messages.ROLE_NAMES,
    vocabulary.Direction: messages.DIRECTIONS,
    vocabulary.Decision: messages.DECISIONS,
    vocabulary.Mode: messages.MODES,
    vocabulary.Sex: messages.SEXES,
    vocabulary.ReferralCategory: messages.REFERRAL_CATEGORIES,
    vocabulary.ReferralStatus: messages.REFERRAL_STATUSES,
    vocabulary.ReferralOutcome: messages.REFERRAL_OUTCOMES,
    vocabulary.AlertEvidence: messages.EVIDENCE,
    vocabulary.WatchlistAction: messages.WATCHLIST_ACTIONS,
    vocabulary.WatchlistKind: watchlist_pages.KIND_NAMES,
}
TUPLES = {
    vocabulary.Role: models.ROLES,
    vocabulary.Direction: models.DIRECTIONS,
    vocabulary.Decision: models.DECISIONS,
    vocabulary.Mode: models.MODES,
    vocabulary.ReferralCategory: models.REFERRAL_CATEGORIES,
    vocabulary.ReferralStatus: models.REFERRAL_STATUSES,
    vocabulary.ReferralOutcome: models.REFERRAL_OUTCOMES,
    vocabulary.WatchlistKind: models.WATCHLIST_KINDS,
    vocabulary.WatchlistAction: models.WATCHLIST_ACTIONS,
    vocabulary.AlertEvidence: models.ALERT_EVIDENCE,
    vocabulary.AlertOutcome: models.ALERT_OUTCOMES,
}


@pytest.mark.parametrize("vocab", list(LABELS), ids=lambda v: v.__name__)
def test_every_code_has_its_label_and_no_label_lacks_a_code(vocab: type) -> None:
    assert set(LABELS[vocab]) == set(vocab)


@pytest.mark.parametrize("vocab", list(TUPLES), ids=lambda v: v.__name__)
def test_the_models_tuples_are_the_vocabularies(vocab: type) -> None:
    assert TUPLES[vocab] == tuple(vocab)
    assert all(isinstance(code, str) for code in TUPLES[vocab])


def test_a_member_is_its_code_everywhere_a_code_goes() -> None:
    assert vocabulary.Direction.ENTRY == "entry" and f"{vocabulary.Role.HQ_ANALYST}" == "hq_analyst"
    assert msgspec.json.encode({"d": vocabulary.Decision.REFUSED}) == b'{"d":"refused"}'
    assert "exit" in models.DIRECTIONS and messages.DIRECTIONS["exit"] == "Exit"


def test_the_schemas_decode_codes_into_members_and_refuse_the_rest() -> None:
    request = msgspec.json.decode(b'{"direction": "exit", "mode": "car"}', type=RegistrationRequest)
    assert request.direction is vocabulary.Direction.EXIT and request.mode is vocabulary.Mode.CAR
    assert request.decision is vocabulary.Decision.CLEARED
    with pytest.raises(msgspec.ValidationError, match="direction"):
        msgspec.json.decode(b'{"direction": "sideways"}', type=RegistrationRequest)
    with pytest.raises(msgspec.ValidationError, match="role"):
        msgspec.json.decode(
            b'{"username": "awa", "full_name": "Awa", "role": "king", "password": "x" }',
            type=OfficerCreate,
        )


def test_the_alert_figures_answer_names_every_kind_of_evidence() -> None:
    """``/api/alerts/figures`` answers ``AlertFigures``, one field per kind of evidence in
    the vocabulary's order (the figures are counted per member of ``AlertEvidence``), then
    those of the other biometric modalities."""
    assert AlertFigures.__struct_fields__ == (*vocabulary.AlertEvidence, "modalities")


def test_an_alert_of_another_biometric_modality_is_named_in_every_language() -> None:
    """Evidence outside the vocabulary is a biometric plug-in's name: the pages say so in the
    reader's language (``messages.evidence_text``), and name the vocabulary's as before."""
    from registry.web.i18n import gettext_for

    expected = {"fr": "Biométrie : iris", "ar": "القياسات الحيوية: iris", "en": "Biometric: iris"}
    for lang, text in expected.items():
        assert messages.evidence_text("iris", gettext_for(lang)) == text
    assert messages.evidence_text("face", gettext_for("fr")) == "Visage"
