"""Biometric modality plug-ins discovered through Python entry points.

A modality (face, iris, fingerprint...) is a class registered under the entry-point group
``borderpost.biometrics`` and instantiated without arguments. The contract follows the
spirit of MOSIP's BioAPI (``checkQuality``, ``extractTemplate``, ``match``/identify):

* samples are raw capture bytes (e.g. an encoded photo), templates are opaque bytes;
* ``match`` returns a *similarity score* in ``[0, 1]`` - higher means more alike - and the
  modality's ``match_threshold`` is the score at or above which it declares a match;
* ``identify`` ranks a gallery by that score, best first;
* :func:`assess` gives a sample's quality and template together: through the plug-in's own
  single-pass ``assess`` when it has one (:class:`SinglePassModality`, as ``face`` does: one
  decode, one detection, one encoding), otherwise ``quality`` then ``extract_template``.
  The registry reads every portrait's quality and template this way, from the modality its
  settings name (``registry.photos.face_modality``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from biometrics.quality import QualityReport

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "ENTRY_POINT_GROUP",
    "Assessment",
    "BiometricModality",
    "SinglePassModality",
    "assess",
    "load_modalities",
]

# A sample's quality report and its template (None when none can be extracted).
Assessment = tuple[QualityReport, bytes | None]

ENTRY_POINT_GROUP = "borderpost.biometrics"

logger = logging.getLogger(__name__)


@runtime_checkable
class BiometricModality(Protocol):
    """What every biometric plug-in provides.

    Attributes:
        name: the plug-in's name, normally its entry-point name (``"face"``).
        modality: the biometric type in MOSIP/ISO terms (``"FACE"``, ``"IRIS"``, ``"FINGER"``).
        match_threshold: similarity at or above which two templates are a match.
    """

    name: str
    modality: str
    match_threshold: float

    def quality(self, sample: bytes) -> QualityReport:
        """Quality of a raw sample: score 0-100, pass flag and reasons. Never raises for bad
        input; an unusable sample gets score 0 and a reason."""
        ...

    def extract_template(self, sample: bytes) -> bytes | None:
        """A template from a raw sample, or None when none can be extracted."""
        ...

    def match(self, a: bytes, b: bytes) -> float:
        """1:1 similarity of two templates in ``[0, 1]`` (1 = identical)."""
        ...

    def identify(
        self, probe: bytes, gallery: Mapping[str, bytes], k: int
    ) -> list[tuple[str, float]]:
        """1:N: the ``k`` most similar gallery entries as ``(id, similarity)``, best first."""
        ...


@runtime_checkable
class SinglePassModality(BiometricModality, Protocol):
    """A modality that assesses a sample in one pass (optional: see :func:`assess`)."""

    def assess(self, sample: bytes, *, decoded: Image.Image | None = None) -> Assessment:
        """``(quality(sample), extract_template(sample))`` computed together, without
        working on the sample twice. ``decoded``, when given, is ``sample`` already decoded
        by ``biometrics.imaging.decode_image`` within the caller's limits: an image modality
        analyses it instead of decoding ``sample`` again; others ignore it."""
        ...


def assess(
    modality: BiometricModality, sample: bytes, *, decoded: Image.Image | None = None
) -> Assessment:
    """Quality and template of ``sample``: the modality's own single pass if it has one,
    else its ``quality`` and ``extract_template`` (``decoded`` is then unused)."""
    if isinstance(modality, SinglePassModality):
        return modality.assess(sample, decoded=decoded)
    return modality.quality(sample), modality.extract_template(sample)


def _instantiate(entry_point: EntryPoint) -> BiometricModality | None:
    """Load and build one plug-in; log and return None if anything goes wrong."""
    try:
        factory = entry_point.load()
        instance = factory() if callable(factory) else factory
    except Exception:  # a broken third-party plug-in must not take the registry down
        logger.warning("biometric plug-in %r failed to load", entry_point.name, exc_info=True)
        return None
    if not isinstance(instance, BiometricModality):
        logger.warning(
            "biometric plug-in %r (%s) does not implement BiometricModality; skipped",
            entry_point.name,
            entry_point.value,
        )
        return None
    return instance


def load_modalities(group: str = ENTRY_POINT_GROUP) -> dict[str, BiometricModality]:
    """Instantiate every plug-in registered under ``group``, keyed by entry-point name.

    Broken or non-conforming plug-ins are skipped with a warning; when two distributions
    register the same name, the first one found on ``sys.path`` wins.
    """
    modalities: dict[str, BiometricModality] = {}
    for entry_point in entry_points(group=group):
        if entry_point.name in modalities:
            logger.warning(
                "duplicate biometric plug-in %r (%s) ignored", entry_point.name, entry_point.value
            )
            continue
        instance = _instantiate(entry_point)
        if instance is not None:
            modalities[entry_point.name] = instance
    return modalities
