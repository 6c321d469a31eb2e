"""The face-engine contract: face boxes, landmarks and the ``FaceEngine`` protocol.

Any face back end (dlib today, something else tomorrow) implements :class:`FaceEngine` on
8-bit RGB ``numpy`` arrays of shape ``(height, width, 3)``. Templates are 128 float32 values
compared by Euclidean distance (smaller means more alike), stored and sent as 128 little-endian
float32 values (512 bytes): :func:`encode_template` and :func:`decode_template` are the one
codec of that form, used by the face plug-in, the registry's photos and its watchlists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from biometrics.quality import QualityReport

__all__ = [
    "TEMPLATE_BYTES",
    "TEMPLATE_DIM",
    "FaceBox",
    "FaceEngine",
    "Landmarks",
    "Point",
    "as_rgb_array",
    "decode_template",
    "encode_template",
]

TEMPLATE_DIM = 128
_TEMPLATE_DTYPE = np.dtype("<f4")
TEMPLATE_BYTES = TEMPLATE_DIM * _TEMPLATE_DTYPE.itemsize

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


def encode_template(vector: np.ndarray) -> bytes:
    """Serialise a 128-value encoding as little-endian float32 bytes (the stored form)."""
    values = np.asarray(vector, dtype=_TEMPLATE_DTYPE).reshape(-1)
    if values.shape != (TEMPLATE_DIM,):
        raise ValueError(f"a face template has {TEMPLATE_DIM} values, got {values.shape[0]}")
    return values.tobytes()


def decode_template(template: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """A template as a float32 vector of 128 finite values: bytes made by
    :func:`encode_template` are parsed, an encoding already in memory is checked."""
    if isinstance(template, bytes | bytearray | memoryview):
        data = bytes(template)
        if len(data) != TEMPLATE_BYTES:
            raise ValueError(f"a face template is {TEMPLATE_BYTES} bytes, got {len(data)}")
        vector = np.frombuffer(data, dtype=_TEMPLATE_DTYPE).astype(np.float32)
    else:
        vector = np.array(template, dtype=np.float32).reshape(-1)  # a copy
        if vector.shape != (TEMPLATE_DIM,):
            raise ValueError(f"a face template has {TEMPLATE_DIM} values, got {vector.shape[0]}")
    if not np.all(np.isfinite(vector)):
        raise ValueError("face template contains NaN or infinity")
    return vector
