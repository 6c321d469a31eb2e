"""dlib/face_recognition implementation of the face engine and the portrait pipeline.

Scale decision: detection, landmarks and quality metrics always run at the *analysis scale*
(long side at most ``max_side`` = 800 px). Arrays larger than that are downscaled internally
and boxes are mapped back, so every box returned is in the coordinates of the array the
caller passed, and quality thresholds mean the same thing whatever the camera resolution.
:func:`analyse_portrait` downscales once up front, so the whole pipeline (including the
encoding) works on the downscaled image; the 128-D encoder looks at a 150x150 face chip, so
encoding at the downscaled size loses nothing for faces of useful size.

Detection uses dlib's HOG detector directly (the one ``face_recognition`` wraps) because it
exposes a confidence score: detections scoring below ``min_detection_score`` are dropped
(dlib's own cut-off is 0; real faces in our test photos score 0.9-2.2 while HOG false
positives on clothing score around 0.1). Landmarks (68-point model) and encodings come from
``face_recognition``. dlib objects are not documented as thread-safe, so each engine
serialises its dlib calls with a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from biometrics.engine import TEMPLATE_DIM, FaceBox, Landmarks, Point, as_rgb_array
from biometrics.imaging import decode_image, downscale
from biometrics.quality import QualityGate, QualityReport

__all__ = ["DlibFaceEngine", "PortraitAnalysis", "analyse_portrait", "get_engine"]

DEFAULT_MAX_SIDE = 800
DEFAULT_MIN_DETECTION_SCORE = 0.5


@dataclass(slots=True)
class PortraitAnalysis:
    """Result of :func:`analyse_portrait`.

    ``image_size`` is the decoded photo's ``(width, height)``; ``analysed_size`` the size the
    pipeline worked at and ``scale`` the factor between them. ``faces`` are in analysed
    coordinates. ``encoding`` is set whenever exactly one face was found, even if the quality
    gate failed (an officer may override the gate).
    """

    faces_found: int
    quality: QualityReport
    encoding: np.ndarray | None
    image_size: tuple[int, int]
    analysed_size: tuple[int, int] = (0, 0)
    scale: float = 1.0
    faces: list[FaceBox] = field(default_factory=list)


def _shrink_array(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale an RGB array so its long side is at most ``max_side``."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image, 1.0
    small, scale = downscale(Image.fromarray(image), max_side)
    return np.asarray(small), scale


def _landmarks_from_dict(parts: dict[str, list[tuple[int, int]]]) -> Landmarks:
    """Build :class:`Landmarks` from one ``face_recognition.face_landmarks`` entry."""

    def mean_point(points: list[tuple[int, int]]) -> Point:
        xs, ys = zip(*points, strict=True)
        return (float(np.mean(xs)), float(np.mean(ys)))

    nose = parts["nose_tip"]
    every: tuple[Point, ...] = tuple(
        (float(x), float(y)) for points in parts.values() for x, y in points
    )
    return Landmarks(
        left_eye=mean_point(parts["left_eye"]),
        right_eye=mean_point(parts["right_eye"]),
        nose_tip=(float(nose[len(nose) // 2][0]), float(nose[len(nose) // 2][1])),
        points=every,
    )


class DlibFaceEngine:
    """:class:`~biometrics.engine.FaceEngine` on dlib's HOG detector and ResNet encoder."""

    def __init__(
        self,
        *,
        number_of_times_to_upsample: int = 1,
        max_side: int = DEFAULT_MAX_SIDE,
        min_detection_score: float = DEFAULT_MIN_DETECTION_SCORE,
        num_jitters: int = 1,
        gate: QualityGate | None = None,
    ) -> None:
        if number_of_times_to_upsample < 0 or max_side <= 0 or num_jitters < 1:
            raise ValueError(
                "need number_of_times_to_upsample >= 0, max_side > 0, num_jitters >= 1"
            )
        # Heavy imports (dlib models load at import time) are deferred until an engine is built.
        import dlib
        import face_recognition
        from PIL import ImageFile

        # face_recognition switches Pillow to accept truncated images for the whole process;
        # decoding untrusted uploads must keep refusing them.
        ImageFile.LOAD_TRUNCATED_IMAGES = False

        self.number_of_times_to_upsample = number_of_times_to_upsample
        self.max_side = max_side
        self.min_detection_score = min_detection_score
        self.num_jitters = num_jitters
        self.gate = gate or QualityGate()
        self._fr: Any = face_recognition
        self._detector: Any = dlib.get_frontal_face_detector()
        self._lock = threading.Lock()

    # -- FaceEngine -------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """Faces in ``image`` (largest first), in ``image`` coordinates."""
        pixels = as_rgb_array(image)
        small, scale = _shrink_array(pixels, self.max_side)
        boxes = self._detect_analysed(small)
        if scale == 1.0:
            return boxes
        return [box.scaled(1.0 / scale) for box in boxes]

    def quality(self, image: np.ndarray, box: FaceBox | None = None) -> QualityReport:
        """Quality report at analysis scale; ``box`` (in ``image`` coordinates) skips detection."""
        pixels = as_rgb_array(image)
        small, scale = _shrink_array(pixels, self.max_side)
        faces = [box.scaled(scale)] if box is not None else self._detect_analysed(small)
        return self.assess(small, faces)

    def encode(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        """128 float32 values describing the face in ``box``."""
        pixels = as_rgb_array(image)
        with self._lock:
            encodings = self._fr.face_encodings(
                pixels, [box.css()], num_jitters=self.num_jitters, model="small"
            )
        vector = np.asarray(encodings[0], dtype=np.float32)
        if vector.shape != (TEMPLATE_DIM,):
            raise RuntimeError(f"unexpected encoding shape {vector.shape}")
        return vector

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        """Euclidean distance between two templates."""
        va = np.asarray(a, dtype=np.float64).reshape(-1)
        vb = np.asarray(b, dtype=np.float64).reshape(-1)
        if va.shape != vb.shape:
            raise ValueError(f"template shapes differ: {va.shape} vs {vb.shape}")
        return float(np.linalg.norm(va - vb))

    # -- extras -----------------------------------------------------------------------------
    def landmarks(self, image: np.ndarray, box: FaceBox) -> Landmarks:
        """68-point landmarks of the face in ``box`` reduced to what the gate needs."""
        pixels = as_rgb_array(image)
        with self._lock:
            found = self._fr.face_landmarks(pixels, [box.css()], model="large")
        return _landmarks_from_dict(found[0])

    def assess(
        self, image: np.ndarray, faces: list[FaceBox], gate: QualityGate | None = None
    ) -> QualityReport:
        """Run ``gate`` (default: the engine's) on an analysis-scale image and its faces."""
        pixels = as_rgb_array(image)
        marks = self.landmarks(pixels, faces[0]) if len(faces) == 1 else None
        return (gate or self.gate).assess(pixels, faces, marks)

    def _detect_analysed(self, image: np.ndarray) -> list[FaceBox]:
        """Run the HOG detector on an already-downscaled image."""
        with self._lock:
            rects, scores, _ = self._detector.run(image, self.number_of_times_to_upsample, 0.0)
        boxes = [
            FaceBox(
                top=rect.top(),
                right=rect.right(),
                bottom=rect.bottom(),
                left=rect.left(),
                confidence=float(score),
            )
            for rect, score in zip(rects, scores, strict=True)
            if score >= self.min_detection_score
        ]
        return sorted(boxes, key=lambda box: box.area, reverse=True)


_engine: DlibFaceEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> DlibFaceEngine:
    """The shared default engine, built on first use (loading dlib models takes a while)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = DlibFaceEngine()
    return _engine


def analyse_portrait(
    data: bytes,
    *,
    engine: DlibFaceEngine | None = None,
    gate: QualityGate | None = None,
) -> PortraitAnalysis:
    """Decode ``data`` safely, downscale, detect, gate and (for exactly one face) encode.

    Raises:
        biometrics.imaging.ImageRejected: when the bytes are not an acceptable image.
    """
    return analyse_image(decode_image(data), engine=engine, gate=gate)


def analyse_image(
    decoded: Image.Image,
    *,
    engine: DlibFaceEngine | None = None,
    gate: QualityGate | None = None,
) -> PortraitAnalysis:
    """Like ``analyse_portrait`` for an image already decoded by ``decode_image``."""
    engine = engine or get_engine()
    small, scale = downscale(decoded, engine.max_side)
    pixels = np.asarray(small)
    faces = engine.detect(pixels)
    report = engine.assess(pixels, faces, gate)
    encoding = engine.encode(pixels, faces[0]) if len(faces) == 1 else None
    return PortraitAnalysis(
        faces_found=len(faces),
        quality=report,
        encoding=encoding,
        image_size=decoded.size,
        analysed_size=small.size,
        scale=scale,
        faces=faces,
    )
