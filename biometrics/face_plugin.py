"""The ``face`` biometric plug-in: :class:`BiometricModality` on dlib + :class:`FaceIndex`.

Samples are encoded photos (JPEG/PNG/WebP); templates are the 128 float32 values of the face
encoding, little-endian (512 bytes). Similarity is ``1 - euclidean distance`` clipped to
``[0, 1]``, so the usual ``face_recognition`` tolerance of 0.6 is a similarity of 0.4.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from biometrics.engine import TEMPLATE_DIM
from biometrics.face import DlibFaceEngine, analyse_portrait, get_engine
from biometrics.imaging import ImageRejected
from biometrics.index import BandThresholds, FaceIndex
from biometrics.quality import QualityReason, QualityReport

__all__ = ["TEMPLATE_BYTES", "FaceModality", "decode_template", "encode_template"]

_TEMPLATE_DTYPE = np.dtype("<f4")
TEMPLATE_BYTES = TEMPLATE_DIM * _TEMPLATE_DTYPE.itemsize


def encode_template(vector: np.ndarray) -> bytes:
    """Serialise a 128-value encoding as little-endian float32 bytes."""
    values = np.asarray(vector, dtype=_TEMPLATE_DTYPE).reshape(-1)
    if values.shape != (TEMPLATE_DIM,):
        raise ValueError(f"a face template has {TEMPLATE_DIM} values, got {values.shape[0]}")
    return values.tobytes()


def decode_template(template: bytes) -> np.ndarray:
    """Parse bytes made by :func:`encode_template` back into a float32 vector."""
    if len(template) != TEMPLATE_BYTES:
        raise ValueError(f"a face template is {TEMPLATE_BYTES} bytes, got {len(template)}")
    vector = np.frombuffer(template, dtype=_TEMPLATE_DTYPE).astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise ValueError("face template contains NaN or infinity")
    return vector


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

    def quality(self, sample: bytes) -> QualityReport:
        """Portrait quality of an encoded photo; undecodable input scores 0."""
        try:
            return analyse_portrait(sample, engine=self.engine).quality
        except ImageRejected as exc:
            reason = QualityReason("invalid_image", f"{exc.reason}: {exc.message}")
            return QualityReport(score=0, passed=False, reasons=[reason], metrics={})

    def extract_template(self, sample: bytes) -> bytes | None:
        """Template of the single face in the photo; None if undecodable or not one face."""
        try:
            analysis = analyse_portrait(sample, engine=self.engine)
        except ImageRejected:
            return None
        if analysis.encoding is None:
            return None
        return encode_template(analysis.encoding)

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
