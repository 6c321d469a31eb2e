"""The matcher's galleries of the node's other biometric modalities (issue 15): each plug-in
identifies the traveller's template of its modality among the entries' templates of it, a
similarity at or above its ``match_threshold`` is a hit named after it, entry versions and
removals update the gallery, and a plug-in that raises is skipped. No plug-in is named by
the code under test: the modalities here are test doubles behind the Protocol."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest

from biometrics.plugins import BiometricModality
from biometrics.quality import QualityReport
from registry.modalities import ModalityTemplate, assess_others
from registry.models import WatchlistEntry
from registry.watchlists.matcher import TravellerProbe, WatchlistMatcher
from tests.support.watchlists import DAY, entry

NOBODY = TravellerProbe(documents=(), name_keys=(), dates_of_birth=(None,))


class Similar:
    """Similarity: the share of equal bytes of two same-length templates."""

    modality = "VEIN"
    match_threshold = 0.75

    def __init__(self, name: str = "vein") -> None:
        self.name = name
        self.calls = 0

    def quality(self, sample: bytes) -> QualityReport:
        return QualityReport(score=len(sample), passed=True, reasons=[], metrics={})

    def extract_template(self, sample: bytes) -> bytes | None:
        return sample[:4] or None

    def match(self, a: bytes, b: bytes) -> float:
        return sum(x == y for x, y in zip(a, b, strict=False)) / max(len(a), len(b), 1)

    def identify(
        self, probe: bytes, gallery: Mapping[str, bytes], k: int
    ) -> list[tuple[str, float]]:
        self.calls += 1
        scored = sorted(
            ((key, self.match(probe, t)) for key, t in gallery.items()), key=lambda x: -x[1]
        )
        return scored[:k]


class Raising(Similar):
    def identify(
        self, probe: bytes, gallery: Mapping[str, bytes], k: int
    ) -> list[tuple[str, float]]:
        raise RuntimeError("identify exploded")

    def extract_template(self, sample: bytes) -> bytes | None:
        raise RuntimeError("extract exploded")


def replace(base: WatchlistEntry, **changes: Any) -> WatchlistEntry:
    """Another version of ``base`` (the same row's values, ``changes`` applied)."""
    return WatchlistEntry(**{**base.model_dump(), **changes})


def templates(name: str, template: bytes) -> dict[str, dict[str, object]]:
    return {name: ModalityTemplate(name, "VEIN", template, 90).as_json()}


def test_a_similarity_at_the_threshold_hits_and_below_it_does_not() -> None:
    vein = Similar()
    listed = replace(entry(surname="X"), modality_templates=templates("vein", b"abcd"))
    matcher = WatchlistMatcher(modalities={"vein": vein})
    matcher.apply(listed)
    hits = matcher.match_traveller(day=DAY, probe=NOBODY, templates={"vein": b"abcz"})
    assert [(h.entry_id, h.evidence, h.score) for h in hits] == [(listed.entry_id, "vein", 75.0)]
    assert matcher.match_traveller(day=DAY, probe=NOBODY, templates={"vein": b"abyz"}) == []
    # the probe of another modality, or none, asks nothing of this one
    assert matcher.match_traveller(day=DAY, probe=NOBODY, templates={"other": b"abcd"}) == []
    assert matcher.match_traveller(day=DAY, probe=NOBODY) == [] and vein.calls == 2


def test_versions_and_removals_update_the_gallery_and_validity_counts() -> None:
    vein = Similar()
    first = replace(entry(surname="X"), modality_templates=templates("vein", b"abcd"))
    matcher = WatchlistMatcher(modalities={"vein": vein})
    matcher.apply(first)
    second = replace(first, id=first.id, version=2, modality_templates=templates("vein", b"wxyz"))
    matcher.apply(second)
    assert matcher.match_traveller(day=DAY, probe=NOBODY, templates={"vein": b"abcd"}) == []
    assert len(matcher.match_traveller(day=DAY, probe=NOBODY, templates={"vein": b"wxyz"})) == 1
    expired = replace(second, version=3, valid_to=date(2021, 1, 1))
    matcher.apply(expired)
    assert matcher.match_traveller(day=DAY, probe=NOBODY, templates={"vein": b"wxyz"}) == []
    removed = replace(second, version=4, active=False)
    matcher.apply(removed)
    assert matcher.match_traveller(day=DAY, probe=NOBODY, templates={"vein": b"wxyz"}) == []
    assert len(matcher) == 0


def test_templates_of_modalities_the_node_does_not_run_are_left_out() -> None:
    listed = replace(entry(surname="X"), modality_templates=templates("palm", b"abcd"))
    matcher = WatchlistMatcher(modalities={"vein": Similar()})
    matcher.apply(listed)
    assert matcher.match_traveller(day=DAY, probe=NOBODY, templates={"palm": b"abcd"}) == []
    broken = replace(entry(surname="Y"), modality_templates={"vein": {"template": "not hex"}})
    matcher.apply(broken)  # a malformed value is no template, and no crash
    assert matcher.match_traveller(day=DAY, probe=NOBODY, templates={"vein": b"abcd"}) == []


def test_a_plugin_that_raises_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    modalities: dict[str, BiometricModality] = {"vein": Similar(), "bad": Raising("bad")}
    listed = replace(
        entry(surname="X"),
        modality_templates={**templates("vein", b"abcd"), **templates("bad", b"abcd")},
    )
    matcher = WatchlistMatcher(modalities=modalities)
    matcher.apply(listed)
    probes = {"vein": b"abcd", "bad": b"abcd"}
    with caplog.at_level(logging.WARNING, logger="borderpost.biometrics"):
        hits = matcher.match_traveller(day=DAY, probe=NOBODY, templates=probes)
        assessed = assess_others(modalities, b"abcdef", decoded=None)
    assert [h.evidence for h in hits] == ["vein"]
    assert [(t.name, t.template, t.quality_score) for t in assessed] == [("vein", b"abcd", 6)]
    assert "'bad' failed to identify" in caplog.text and "'bad' failed on a sample" in caplog.text


def test_the_built_in_face_is_never_another_modality() -> None:
    """With another primary face plug-in in the settings, the built-in ``face`` does not run
    again as a second modality: its alerts' evidence would read as the primary's."""
    from types import SimpleNamespace

    from registry.modalities import discover_modalities, other_modalities

    assert "face" in discover_modalities()
    settings: Any = SimpleNamespace(face_modality="another-face")
    assert "face" not in other_modalities(settings)
