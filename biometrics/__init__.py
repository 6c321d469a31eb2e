"""Borderpost biometrics: safe image decoding, face quality, templates and 1:N search.

A pure library (numpy, Pillow, dlib via face_recognition) with no web or database imports.
dlib and its models are loaded lazily, the first time a face engine is built.
``evaluate_directory`` is re-exported lazily so ``python -m biometrics.evaluate`` runs cleanly.
"""

from typing import Any

from biometrics.engine import (
    TEMPLATE_BYTES,
    TEMPLATE_DIM,
    FaceBox,
    FaceEngine,
    Landmarks,
    decode_template,
    encode_template,
)
from biometrics.face import DlibFaceEngine, PortraitAnalysis, analyse_portrait, get_engine
from biometrics.imaging import ImageRejected, decode_image, downscale, to_jpeg
from biometrics.index import BandThresholds, Candidate, FaceIndex
from biometrics.plugins import (
    ENTRY_POINT_GROUP,
    BiometricModality,
    SinglePassModality,
    load_modalities,
)
from biometrics.quality import QualityGate, QualityReason, QualityReport, QualityThresholds

__all__ = [
    "ENTRY_POINT_GROUP",
    "TEMPLATE_BYTES",
    "TEMPLATE_DIM",
    "BandThresholds",
    "BiometricModality",
    "Candidate",
    "DlibFaceEngine",
    "FaceBox",
    "FaceEngine",
    "FaceIndex",
    "ImageRejected",
    "Landmarks",
    "PortraitAnalysis",
    "QualityGate",
    "QualityReason",
    "QualityReport",
    "QualityThresholds",
    "SinglePassModality",
    "analyse_portrait",
    "decode_image",
    "decode_template",
    "downscale",
    "encode_template",
    "evaluate_directory",
    "get_engine",
    "load_modalities",
    "to_jpeg",
]


def __getattr__(name: str) -> Any:
    if name == "evaluate_directory":
        from biometrics.evaluate import evaluate_directory

        return evaluate_directory
    raise AttributeError(f"module 'biometrics' has no attribute {name!r}")
