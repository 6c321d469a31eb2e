"""Portrait quality gate for photos captured at the desk.

Pure numpy: it takes an RGB array, the detected face boxes and (optionally) landmarks of the
single face and returns a :class:`QualityReport` with a 0-100 score, a pass flag and
officer-readable reasons. All pixel thresholds apply at the *analysed* scale (the engine
works on images whose long side is at most 800 px).

Score: 100 minus the weight of every failing check (each check counted once):
``face_cut_off`` 55, ``not_frontal`` 12, sharpness (``too_blurry``/``too_noisy``) 10,
exposure (``underexposed``/``overexposed``) 10, ``face_too_small`` 8, ``not_centred`` 5.
A face cut off by the frame therefore always scores below the default pass score of 50 as
soon as anything else is wrong, and no face / several faces score 0. ``passed`` requires no
reasons at all *and* ``score >= pass_score``. Overriding a failed gate is the registry's job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from biometrics.engine import FaceBox, Landmarks

__all__ = ["CHECK_WEIGHTS", "QualityGate", "QualityReason", "QualityReport", "QualityThresholds"]

# Check group -> weight in the 0-100 score; the reason codes of each group are listed below.
CHECK_WEIGHTS: dict[str, int] = {
    "cut_off": 55,
    "frontal": 12,
    "sharpness": 10,
    "exposure": 10,
    "size": 8,
    "centred": 5,
}
_GROUP_OF_CODE: dict[str, str] = {
    "face_cut_off": "cut_off",
    "not_frontal": "frontal",
    "too_blurry": "sharpness",
    "too_noisy": "sharpness",
    "underexposed": "exposure",
    "overexposed": "exposure",
    "face_too_small": "size",
    "not_centred": "centred",
}
_SHARPNESS_SIDE = 128  # face crops are resampled to this size before measuring sharpness
_DARK_LEVEL = 5
_BRIGHT_LEVEL = 250


@dataclass(frozen=True, slots=True)
class QualityReason:
    """One failed check: a stable ``code`` and a message an officer can act on."""

    code: str
    message: str


@dataclass(slots=True)
class QualityReport:
    """Outcome of the quality gate; ``metrics`` holds the measured values."""

    score: int
    passed: bool
    reasons: list[QualityReason] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return [reason.code for reason in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """Limits of the quality gate (pixel values at the analysed scale)."""

    pass_score: int = 50
    min_face_width_px: int = 80
    min_sharpness: float = 30.0
    max_sharpness: float = 4000.0
    min_brightness: float = 50.0
    max_brightness: float = 205.0
    max_clipped_fraction: float = 0.25
    max_yaw_ratio: float = 0.30
    max_roll_deg: float = 15.0
    max_centre_offset_x: float = 0.25
    max_centre_offset_y: float = 0.40
    max_outside_fraction: float = 0.02


def _grey(pixels: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB uint8 array, as float32."""
    rgb = pixels.astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 3x3 (4-neighbour) Laplacian over the interior of ``grey``."""
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    g = grey.astype(np.float32, copy=False)
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def _face_crop(image: np.ndarray, box: FaceBox) -> np.ndarray:
    """Greyscale pixels of the part of ``box`` inside the image."""
    height, width = image.shape[:2]
    inside = box.clipped(width, height)
    return _grey(image[inside.top : inside.bottom, inside.left : inside.right])


def _normalised_sharpness(face_grey: np.ndarray) -> float:
    """Laplacian variance after resampling the face to a fixed size (scale independent)."""
    if face_grey.size == 0:
        return 0.0
    resized = Image.fromarray(np.ascontiguousarray(face_grey, dtype=np.float32)).resize(
        (_SHARPNESS_SIDE, _SHARPNESS_SIDE), Image.Resampling.BILINEAR
    )
    return laplacian_variance(np.asarray(resized))


class QualityGate:
    """Applies :class:`QualityThresholds` to one analysed portrait."""

    def __init__(self, thresholds: QualityThresholds | None = None) -> None:
        self.thresholds = thresholds or QualityThresholds()

    def assess(
        self,
        image: np.ndarray,
        faces: Sequence[FaceBox],
        landmarks: Landmarks | None = None,
    ) -> QualityReport:
        """Run every check on ``image`` given its detected ``faces``.

        ``landmarks`` belong to the single face; without them the frontal check is skipped.
        """
        metrics: dict[str, float] = {"face_count": float(len(faces))}
        if len(faces) != 1:
            return self._count_failure(len(faces), metrics)
        box = faces[0]
        reasons: list[QualityReason] = []
        reasons += self._check_cut_off(image, box, landmarks, metrics)
        reasons += self._check_size(box, metrics)
        face_grey = _face_crop(image, box)
        reasons += self._check_sharpness(face_grey, metrics)
        reasons += self._check_exposure(face_grey, metrics)
        reasons += self._check_centred(image, box, metrics)
        if landmarks is not None:
            reasons += self._check_frontal(landmarks, metrics)
        return self._report(reasons, metrics)

    def _report(self, reasons: list[QualityReason], metrics: dict[str, float]) -> QualityReport:
        failed_groups = {_GROUP_OF_CODE[reason.code] for reason in reasons}
        score = 100 - sum(CHECK_WEIGHTS[group] for group in failed_groups)
        score = max(0, min(100, score))
        passed = not reasons and score >= self.thresholds.pass_score
        return QualityReport(score=score, passed=passed, reasons=reasons, metrics=metrics)

    @staticmethod
    def _count_failure(count: int, metrics: dict[str, float]) -> QualityReport:
        if count == 0:
            reason = QualityReason("no_face", "no face found; exactly one is required")
        else:
            reason = QualityReason(
                "multiple_faces", f"{count} faces found; exactly one is required"
            )
        return QualityReport(score=0, passed=False, reasons=[reason], metrics=metrics)

    def _check_cut_off(
        self,
        image: np.ndarray,
        box: FaceBox,
        landmarks: Landmarks | None,
        metrics: dict[str, float],
    ) -> list[QualityReason]:
        height, width = image.shape[:2]
        outside = box.outside_fraction(width, height)
        points = landmarks.points if landmarks is not None else ()
        off_frame = sum(1 for x, y in points if not (0 <= x < width and 0 <= y < height))
        metrics["outside_fraction"] = round(outside, 4)
        metrics["landmarks_outside"] = float(off_frame)
        if outside <= self.thresholds.max_outside_fraction and off_frame == 0:
            return []
        return [
            QualityReason(
                "face_cut_off",
                f"the face is partly outside the photo ({outside:.0%} of the face area, "
                f"{off_frame} landmarks off-frame); the whole face must be visible",
            )
        ]

    def _check_size(self, box: FaceBox, metrics: dict[str, float]) -> list[QualityReason]:
        metrics["face_width_px"] = float(box.width)
        minimum = self.thresholds.min_face_width_px
        if box.width >= minimum:
            return []
        return [
            QualityReason(
                "face_too_small",
                f"the face is {box.width} px wide; at least {minimum} px is required "
                "(move the traveller closer to the camera)",
            )
        ]

    def _check_sharpness(
        self, face_grey: np.ndarray, metrics: dict[str, float]
    ) -> list[QualityReason]:
        sharpness = _normalised_sharpness(face_grey)
        metrics["sharpness"] = round(sharpness, 2)
        limits = self.thresholds
        if sharpness < limits.min_sharpness:
            message = f"the face is blurred (sharpness {sharpness:.0f} < {limits.min_sharpness:g})"
            return [QualityReason("too_blurry", message)]
        if sharpness > limits.max_sharpness:
            message = f"the image is noisy (sharpness {sharpness:.0f} > {limits.max_sharpness:g})"
            return [QualityReason("too_noisy", message)]
        return []

    def _check_exposure(
        self, face_grey: np.ndarray, metrics: dict[str, float]
    ) -> list[QualityReason]:
        if face_grey.size == 0:
            brightness, dark, bright = 0.0, 1.0, 0.0
        else:
            brightness = float(face_grey.mean())
            dark = float(np.mean(face_grey <= _DARK_LEVEL))
            bright = float(np.mean(face_grey >= _BRIGHT_LEVEL))
        metrics["brightness"] = round(brightness, 2)
        metrics["clipped_dark"] = round(dark, 4)
        metrics["clipped_bright"] = round(bright, 4)
        limits = self.thresholds
        if brightness < limits.min_brightness or dark > limits.max_clipped_fraction:
            message = (
                f"the face is too dark (mean {brightness:.0f}, {dark:.0%} black pixels); add light"
            )
            return [QualityReason("underexposed", message)]
        if brightness > limits.max_brightness or bright > limits.max_clipped_fraction:
            message = (
                f"the face is too bright (mean {brightness:.0f}, {bright:.0%} white pixels); "
                "reduce light or glare"
            )
            return [QualityReason("overexposed", message)]
        return []

    def _check_centred(
        self, image: np.ndarray, box: FaceBox, metrics: dict[str, float]
    ) -> list[QualityReason]:
        height, width = image.shape[:2]
        cx, cy = box.centre
        dx = (cx - width / 2.0) / width
        dy = (cy - height / 2.0) / height
        metrics["centre_offset_x"] = round(dx, 4)
        metrics["centre_offset_y"] = round(dy, 4)
        metrics["centre_offset"] = round(max(abs(dx), abs(dy)), 4)
        limits = self.thresholds
        if abs(dx) <= limits.max_centre_offset_x and abs(dy) <= limits.max_centre_offset_y:
            return []
        return [
            QualityReason(
                "not_centred",
                f"the face is off-centre ({dx:+.0%} horizontally, {dy:+.0%} vertically)",
            )
        ]

    def _check_frontal(
        self, landmarks: Landmarks, metrics: dict[str, float]
    ) -> list[QualityReason]:
        yaw, roll = pose_from_landmarks(landmarks)
        metrics["yaw_ratio"] = round(yaw, 4)
        metrics["roll_deg"] = round(roll, 2)
        limits = self.thresholds
        if abs(yaw) <= limits.max_yaw_ratio and abs(roll) <= limits.max_roll_deg:
            return []
        return [
            QualityReason(
                "not_frontal",
                f"the head is turned or tilted (turn {yaw:+.2f}, tilt {roll:+.0f}°); "
                "ask the traveller to look straight at the camera",
            )
        ]


def pose_from_landmarks(landmarks: Landmarks) -> tuple[float, float]:
    """``(yaw_ratio, roll_deg)`` from the eye centres and the nose tip.

    ``roll_deg`` is the angle of the eye line against the horizontal. ``yaw_ratio`` is the
    offset of the nose tip from the eye midpoint *along the eye line* divided by the
    inter-eye distance (0 for a frontal face; about +/-0.5 for a strong profile), which keeps
    it independent of roll. Degenerate eyes give an infinite yaw.
    """
    lx, ly = landmarks.left_eye
    rx, ry = landmarks.right_eye
    ex, ey = rx - lx, ry - ly
    distance = math.hypot(ex, ey)
    if distance < 1.0:
        return math.inf, 0.0
    roll = math.degrees(math.atan2(ey, ex))
    mx, my = (lx + rx) / 2.0, (ly + ry) / 2.0
    nx, ny = landmarks.nose_tip
    yaw = ((nx - mx) * ex + (ny - my) * ey) / (distance * distance)
    return yaw, roll
