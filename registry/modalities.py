"""The biometric modalities a node runs: every plug-in of the ``borderpost.biometrics`` entry
point (``biometrics.plugins.load_modalities``), discovered when the node starts.

One of them is the node's *primary* modality, named by ``settings.face_modality``: it runs the
portrait quality gate and gives ``Photo.face_encoding`` (:func:`primary_modality`, used by
``registry.photos.face_modality``). Every other discovered modality (:func:`other_modalities`)
is assessed on the same portrait in the same worker pass (:func:`assess_others`): its template
is stored in ``biometric_template`` beside the photo, and matched against the watchlist's
gallery of that modality (``registry.watchlists.matcher``). A plug-in that raises while
assessing is logged and skipped: it never fails a registration.

Instances are kept for the process, by entry-point name, so a plug-in is built once however
many times discovery runs (one node per process in production; tests start several).
Registry code never names a modality other than through these functions and the Protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from biometrics.plugins import BiometricModality, assess, load_modalities
from registry.settings import SettingsError
from registry.vocabulary import AlertEvidence

if TYPE_CHECKING:
    from PIL import Image

    from registry.settings import Settings

log = logging.getLogger("borderpost.biometrics")

# The longest entry-point name a node runs: it is stored as biometric_template.modality and
# as the evidence of an alert (both 40 characters).
MAX_NAME = 40
# The evidence of the registry's own matches: never the name of another modality's alerts.
RESERVED_NAMES = frozenset(evidence.value for evidence in AlertEvidence)
_INSTANCES: dict[str, BiometricModality] = {}  # by entry-point name, built once per process
_discovered: dict[str, BiometricModality] = {}  # what the latest discovery found


@dataclass(frozen=True)
class ModalityTemplate:
    """One non-primary modality's assessment of a portrait: its entry-point ``name``, its
    type (``BiometricModality.modality``), the template and the sample's quality score."""

    name: str
    modality_type: str
    template: bytes
    quality_score: int

    def as_json(self) -> dict[str, Any]:
        """How a watchlist entry version keeps it (``WatchlistEntry.modality_templates``)."""
        return {
            "modality_type": self.modality_type,
            "template": self.template.hex(),
            "quality_score": self.quality_score,
        }


def discover_modalities() -> dict[str, BiometricModality]:
    """Every installed modality, by entry-point name (instances kept from earlier
    discoveries); remembered as the process's current set (:func:`other_modalities`)."""
    global _discovered
    found = load_modalities()
    for name in [name for name in found if len(name) > MAX_NAME]:
        log.warning("biometric plug-in %r: a name has at most %d characters", name, MAX_NAME)
        del found[name]
    _discovered = {name: _INSTANCES.setdefault(name, found[name]) for name in found}
    return dict(_discovered)


def primary_modality(settings: Settings) -> BiometricModality:
    """The modality named by ``settings.face_modality`` (discovering the installed ones if it
    was never loaded); SettingsError when no plug-in of that name is installed."""
    name = settings.face_modality
    modality = _INSTANCES.get(name)
    if modality is None:
        installed = discover_modalities()
        if name not in installed:
            raise SettingsError(
                f"BORDERPOST_FACE_MODALITY {name!r} is not an installed biometric plug-in "
                f"(entry points in group borderpost.biometrics: "
                f"{', '.join(sorted(installed)) or 'none'})"
            )
        modality = installed[name]
    return modality


def start_modalities(settings: Settings) -> BiometricModality:
    """At a node's start: discover every installed modality, and return the primary one
    (SettingsError if it is not installed)."""
    discover_modalities()
    return primary_modality(settings)


def other_modalities(settings: Settings) -> dict[str, BiometricModality]:
    """The discovered modalities other than the primary one, by entry-point name. A plug-in
    named like a kind of alert evidence (``AlertEvidence``: the built-in ``face`` when the
    settings name another primary) is left out: its alerts could not be told from those."""
    return {
        name: modality
        for name, modality in _discovered.items()
        if name != settings.face_modality and name not in RESERVED_NAMES
    }


def assess_others(
    others: Mapping[str, BiometricModality], sample: bytes, *, decoded: Image.Image | None
) -> tuple[ModalityTemplate, ...]:
    """Each modality's template of ``sample`` (``decoded``: the image already decoded, for a
    modality that reads images). A modality that raises is logged and skipped; one that
    extracts no template gives nothing. CPU-bound: call it in the worker thread."""
    found = []
    for name, modality in others.items():
        try:
            report, template = assess(modality, sample, decoded=decoded)
        except Exception:  # noqa: BLE001 - a third-party plug-in must not fail a registration
            log.warning("biometric plug-in %r failed on a sample; skipped", name, exc_info=True)
            continue
        if template is not None:
            kind = str(modality.modality)[:20]
            found.append(ModalityTemplate(name, kind, template, report.score))
    return tuple(found)
