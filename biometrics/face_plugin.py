"""The ``face`` biometric plug-in: :class:`BiometricModality` on dlib + :class:`FaceIndex`.

Samples are encoded photos (JPEG/PNG/WebP); templates are the 128 float32 values of the face
encoding, little-endian (512 bytes, ``biometrics.engine.encode_template``). Similarity is
``1 - euclidean distance`` clipped to ``[0, 1]``, so the usual ``face_recognition`` tolerance
of 0.6 is a similarity of 0.4.

:meth:`FaceModality.assess` is the one pass the registry runs on a portrait
(``biometrics.face.analyse_image``): downscale to the engine's working size (800 px), HOG
detection with its score cut-off, landmarks and the quality gate, and one encoding when exactly
one face is found.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image

from biometrics.engine import TEMPLATE_BYTES, decode_template, encode_template
from biometrics.face import DlibFaceEngine, analyse_image, get_engine
from biometrics.imaging import ImageRejected, decode_image
from biometrics.index import BandThresholds, FaceIndex
from biometrics.plugins import Assessment
from biometrics.quality import QualityReason, QualityReport

# The template codec lives in biometrics.engine; it is re-exported here as the plug-in's own.
__all__ = ["TEMPLATE_BYTES", "FaceModality", "decode_template", "encode_template"]


def similarity_from_distance(distance: float) -> float:
    """Map a Euclidean distance to a similarity score in ``[0, 1]``."""
    return float(min(1.0, max(0.0, 1.0 - distance)))


class FaceModality:
    """Face recognition plug-in (entry point ``face`` in group ``borderpost.biometrics``)."""

    name = "face"
    modality = "FACE"

    def __init__(
        self,
        engine: DlibFaceEngine | None = None,
        *,
        match_distance: float = 0.6,
        bands: BandThresholds | None = None,
    ) -> None:
        self._engine = engine
        self.match_distance = match_distance
        self.match_threshold = similarity_from_distance(match_distance)
        self.bands = bands or BandThresholds(low=match_distance)

    @property
    def engine(self) -> DlibFaceEngine:
        """The dlib engine, loaded on first use so discovering plug-ins stays cheap."""
        if self._engine is None:
            self._engine = get_engine()
        return self._engine

    def assess(self, sample: bytes, *, decoded: Image.Image | None = None) -> Assessment:
        """Quality and template of a photo in one decode/detect/encode pass.

        ``decoded`` is ``sample`` already decoded by ``biometrics.imaging.decode_image``
        (within the caller's limits and working size): it is analysed as it is and ``sample``
        is not decoded again. Undecodable input scores 0 and has no template. The template
        is set whenever exactly one face is found, even if the gate failed (an officer may
        override the gate)."""
        if decoded is None:
            try:
                decoded = decode_image(sample)
            except ImageRejected as exc:
                reason = QualityReason("invalid_image", f"{exc.reason}: {exc.message}")
                return QualityReport(score=0, passed=False, reasons=[reason], metrics={}), None
        analysis = analyse_image(decoded, engine=self.engine)
        encoding = analysis.encoding
        return analysis.quality, encode_template(encoding) if encoding is not None else None

    def quality(self, sample: bytes) -> QualityReport:
        """Portrait quality of an encoded photo; undecodable input scores 0."""
        return self.assess(sample)[0]

    def extract_template(self, sample: bytes) -> bytes | None:
        """Template of the single face in the photo; None if undecodable or not one face."""
        return self.assess(sample)[1]

    def match(self, a: bytes, b: bytes) -> float:
        """Similarity of two templates (``1 - distance``, clipped to ``[0, 1]``)."""
        distance = float(np.linalg.norm(decode_template(a) - decode_template(b)))
        return similarity_from_distance(distance)

    def identify(
        self, probe: bytes, gallery: Mapping[str, bytes], k: int
    ) -> list[tuple[str, float]]:
        """Top ``k`` gallery entries by similarity, best first."""
        if k < 1 or not gallery:
            return []
        query = decode_template(probe)
        index = FaceIndex.from_pairs(
            ((key, decode_template(value)) for key, value in gallery.items()), bands=self.bands
        )
        hits = index.search(query, k=k)
        return [(hit.template_id, similarity_from_distance(hit.distance)) for hit in hits]
