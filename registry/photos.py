"""Traveller photos: decoded safely, re-encoded to JPEG without EXIF, stored by sha256."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biometrics.face import analyse_image
from biometrics.imaging import ImageRejected, decode_image, to_jpeg
from registry.problems import Problem


@dataclass(frozen=True)
class SanitisedPhoto:
    """A portrait ready to store: JPEG bytes and their content address."""

    sha256: str
    jpeg: bytes
    width: int
    height: int


def sanitise_photo(data: bytes, *, max_bytes: int, max_pixels: int, field: str) -> SanitisedPhoto:
    """Refuse anything that is not a safe image; re-encode the rest to JPEG."""
    try:
        image = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    except ImageRejected as exc:
        status = 413 if exc.reason in ("too_large_bytes", "too_many_pixels") else 422
        raise Problem(status, "Photo refused", field=field, detail=exc.message) from exc
    jpeg = to_jpeg(image)
    return SanitisedPhoto(hashlib.sha256(jpeg).hexdigest(), jpeg, image.width, image.height)


def photo_path(photo_dir: Path, sha256: str) -> Path:
    return photo_dir / sha256[:2] / sha256[2:4] / f"{sha256}.jpg"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_photo(photo_dir: Path, photo: SanitisedPhoto) -> Path:
    """Write durably (temp file, fsync, rename, fsync dir); a no-op if already stored."""
    target = photo_path(photo_dir, photo.sha256)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_suffix(f".{os.getpid()}.tmp")
    with open(temp, "wb") as handle:
        handle.write(photo.jpeg)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, target)
    _fsync_dir(target.parent)
    return target


def read_photo(photo_dir: Path, sha256: str) -> bytes | None:
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        return None
    path = photo_path(photo_dir, sha256)
    return path.read_bytes() if path.exists() else None


@dataclass(frozen=True)
class AnalysedPhoto:
    """A sanitised portrait with its face analysis (quality gate and 128-d encoding)."""

    photo: SanitisedPhoto
    faces_found: int
    quality: dict[str, Any]
    quality_score: int
    quality_passed: bool
    encoding: np.ndarray | None

    @property
    def refusal(self) -> str:
        return "; ".join(r["message"] for r in self.quality.get("reasons", []))


def analyse_photo(data: bytes, *, max_bytes: int, max_pixels: int, field: str) -> AnalysedPhoto:
    """Decode once, re-encode without metadata, run the face pipeline (CPU-bound: call it
    in a worker thread)."""
    try:
        image = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    except ImageRejected as exc:
        status = 413 if exc.reason in ("too_large_bytes", "too_many_pixels") else 422
        raise Problem(status, "Photo refused", field=field, detail=exc.message) from exc
    jpeg = to_jpeg(image)
    sanitised = SanitisedPhoto(hashlib.sha256(jpeg).hexdigest(), jpeg, image.width, image.height)
    analysis = analyse_image(image)
    report = analysis.quality
    return AnalysedPhoto(
        sanitised,
        analysis.faces_found,
        report.to_dict(),
        report.score,
        report.passed,
        analysis.encoding,
    )
