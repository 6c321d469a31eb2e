"""The face-engine contract: face boxes, landmarks and the ``FaceEngine`` protocol.

Any face back end (dlib today, something else tomorrow) implements :class:`FaceEngine` on
8-bit RGB ``numpy`` arrays of shape ``(height, width, 3)``. Templates are 128 float32 values
compared by Euclidean distance (smaller means more alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from biometrics.quality import QualityReport

__all__ = ["TEMPLATE_DIM", "FaceBox", "FaceEngine", "Landmarks", "Point", "as_rgb_array"]

TEMPLATE_DIM = 128

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face rectangle in pixel coordinates (``face_recognition``'s css order).

    Coordinates may lie outside the image when the detector extrapolates a face that is cut
    off by the frame; :meth:`clipped` and :meth:`outside_fraction` deal with that.
    ``confidence`` is the detector's score when available.
    """

    top: int
    right: int
    bottom: int
    left: int
    confidence: float | None = None

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    @property
    def centre(self) -> Point:
        """Centre as ``(x, y)``."""
        return ((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)

    def css(self) -> tuple[int, int, int, int]:
        """``(top, right, bottom, left)`` as used by ``face_recognition``."""
        return (self.top, self.right, self.bottom, self.left)

    def scaled(self, factor: float) -> FaceBox:
        """The same box in an image resized by ``factor``."""
        return FaceBox(
            top=round(self.top * factor),
            right=round(self.right * factor),
            bottom=round(self.bottom * factor),
            left=round(self.left * factor),
            confidence=self.confidence,
        )

    def clipped(self, width: int, height: int) -> FaceBox:
        """The part of the box inside an image of ``width`` x ``height``."""
        return FaceBox(
            top=min(max(self.top, 0), height),
            right=min(max(self.right, 0), width),
            bottom=min(max(self.bottom, 0), height),
            left=min(max(self.left, 0), width),
            confidence=self.confidence,
        )

    def outside_fraction(self, width: int, height: int) -> float:
        """Fraction of the box area lying outside an image of ``width`` x ``height``."""
        if self.area == 0:
            return 1.0
        return 1.0 - self.clipped(width, height).area / self.area


@dataclass(frozen=True, slots=True)
class Landmarks:
    """Facial landmarks needed by the quality gate, in ``(x, y)`` pixel coordinates.

    ``left_eye``/``right_eye`` are the eye centres on the image's left/right side (the
    subject's right/left eye); ``nose_tip`` is the tip of the nose; ``points`` holds every
    landmark the engine produced (used to tell whether the face leaves the frame).
    """

    left_eye: Point
    right_eye: Point
    nose_tip: Point
    points: tuple[Point, ...] = ()


@runtime_checkable
class FaceEngine(Protocol):
    """Detects, assesses, encodes and compares faces in RGB uint8 arrays."""

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """All faces found, largest first, in the coordinates of ``image``."""
        ...

    def quality(self, image: np.ndarray, box: FaceBox | None = None) -> QualityReport:
        """Portrait quality of ``image``; detects faces itself when ``box`` is None."""
        ...

    def encode(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        """A 128-value float32 template of the face in ``box``."""
        ...

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        """Euclidean distance between two templates (0 = identical)."""
        ...


def as_rgb_array(image: np.ndarray) -> np.ndarray:
    """Validate that ``image`` is an ``(h, w, 3)`` uint8 array; return it C-contiguous."""
    if not isinstance(image, np.ndarray):
        raise TypeError("image must be a numpy array")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) uint8 RGB array, got {image.shape} {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("image is empty")
    return np.ascontiguousarray(image)
