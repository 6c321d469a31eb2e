"""Traveller photos: decoded safely, re-encoded to JPEG without EXIF, stored by sha256.

Memory is bounded three ways. A portrait's header must declare at most ``max_photo_pixels``
(12 MP) and ``max_photo_side`` (4000 px a side) and an 8-bit mode (:data:`PORTRAIT_MODES`:
no bilevel, 16-bit or float images), all checked before any pixel is decoded. It is decoded
only as large as the face pipeline needs (:data:`PORTRAIT_WORKING_SIDE`: JPEG in draft mode,
other formats reduced at once), so the stored portrait's long side is between 800 and 1599
px whatever the camera's resolution. And :func:`analyse_upload` lets at most
``photo_decode_slots`` photos decode at once in the process; up to ``photo_decode_waiting``
more wait their turn, and beyond that a photo is refused with 503 (try again).

The quality report and face template of a portrait come from the node's face modality, the
biometric plug-in named by ``settings.face_modality`` (:func:`face_modality`, loaded through
``biometrics.plugins.load_modalities`` once per process, when the node starts): one pass on the
image decoded here (``biometrics.plugins.assess``), so nothing is decoded twice. Every other
installed modality assesses the same sample and image in the same worker pass
(``registry.modalities.assess_others``); their templates ride along in
``AnalysedPhoto.templates``.

A face watchlist entry keeps a small listed portrait (:func:`listed_portrait`): the face of
the photo it was enrolled from, cropped head and shoulders, 150x188 px, re-encoded to JPEG
without metadata, at most :data:`LISTED_PORTRAIT_MAX_BYTES`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from biometrics.engine import decode_template
from biometrics.face import DEFAULT_MAX_SIDE, PortraitAnalysis
from biometrics.imaging import PORTRAIT_MODES, ImageRejected, decode_image, to_jpeg
from biometrics.plugins import BiometricModality, assess
from biometrics.quality import QualityReport
from registry.modalities import ModalityTemplate, assess_others, other_modalities, primary_modality
from registry.problems import Problem

if TYPE_CHECKING:
    from registry.settings import Settings

# The face pipeline analyses portraits at 800 px on the long side: decode no larger than
# needed for that (between 1x and 2x of it).
PORTRAIT_WORKING_SIDE = DEFAULT_MAX_SIDE
_TOO_LARGE = ("too_large_bytes", "too_many_pixels")
BUSY_RETRY_SECONDS = 2


class PhotoRefused(Problem):
    """A portrait refused before or while decoding: ``reason`` is the
    :class:`~biometrics.imaging.ImageRejected` code, or ``busy`` (too many photos waiting),
    so the pages can say it in the officer's language (``registry.web.messages``)."""

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        field: str,
        detail: str,
        title: str = "Photo refused",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, title, field=field, detail=detail, headers=headers)
        self.reason = reason


def _decode_portrait(
    data: bytes, *, max_bytes: int, max_pixels: int, max_side: int | None, field: str
) -> Any:
    """Decode an uploaded portrait within the limits, or raise a Problem naming ``field``."""
    try:
        return decode_image(
            data,
            max_bytes=max_bytes,
            max_pixels=max_pixels,
            max_side=max_side,
            modes=PORTRAIT_MODES,
            working_side=PORTRAIT_WORKING_SIDE,
        )
    except ImageRejected as exc:
        status = 413 if exc.reason in _TOO_LARGE else 422
        raise PhotoRefused(status, exc.reason, field=field, detail=exc.message) from exc


@dataclass(frozen=True)
class SanitisedPhoto:
    """A portrait ready to store: JPEG bytes and their content address."""

    sha256: str
    jpeg: bytes
    width: int
    height: int


def sanitise_photo(
    data: bytes, *, max_bytes: int, max_pixels: int, field: str, max_side: int | None = None
) -> SanitisedPhoto:
    """Refuse anything that is not a safe portrait; re-encode the rest to JPEG."""
    image = _decode_portrait(
        data, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side, field=field
    )
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


def store_photos(photo_dir: Path, photos: list[SanitisedPhoto]) -> list[Path]:
    """Write durably every photo not yet on disk; return the files this call created, so a
    transaction that fails afterwards can take them back (:func:`discard_photos`)."""
    created = []
    for photo in photos:
        if not photo_path(photo_dir, photo.sha256).exists():
            created.append(write_photo(photo_dir, photo))
    return created


def discard_photos(paths: list[Path]) -> None:
    """Delete files written for a transaction that did not commit."""
    for path in paths:
        path.unlink(missing_ok=True)


def read_photo(photo_dir: Path, sha256: str) -> bytes | None:
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        return None
    path = photo_path(photo_dir, sha256)
    return path.read_bytes() if path.exists() else None


@dataclass(frozen=True)
class AnalysedPhoto:
    """A sanitised portrait with its face analysis: the quality gate's report and the face
    template (128 little-endian float32 values, ``biometrics.engine.encode_template``) that
    is stored with it."""

    photo: SanitisedPhoto
    faces_found: int
    quality: dict[str, Any]
    quality_score: int
    quality_passed: bool
    template: bytes | None
    # the templates of the node's other modalities (registry.modalities), stored beside it
    templates: tuple[ModalityTemplate, ...] = ()

    @property
    def encoding(self) -> np.ndarray | None:
        """The template as a float32 vector (``biometrics.engine.decode_template``)."""
        return decode_template(self.template) if self.template is not None else None

    @property
    def modality_templates(self) -> dict[str, bytes]:
        """The other modalities' templates by entry-point name (the matcher's probes)."""
        return {found.name: found.template for found in self.templates}

    @property
    def refusal(self) -> str:
        return "; ".join(r["message"] for r in self.quality.get("reasons", []))


def face_modality(settings: Settings) -> BiometricModality:
    """The biometric plug-in that analyses this node's portraits (its *primary* modality):
    the one installed under the entry-point name ``settings.face_modality``, loaded the first
    time a node of the process asks for it (``Node.build``, at start) and kept
    (``registry.modalities.primary_modality``). SettingsError when no plug-in of that name
    is installed."""
    return primary_modality(settings)


def _faces_found(report: QualityReport, template: bytes | None) -> int:
    """Faces the modality saw: the face gate's ``face_count`` metric, else one if it
    extracted a template."""
    count = report.metrics.get("face_count")
    return int(count) if count is not None else int(template is not None)


def analyse_photo(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    field: str,
    modality: BiometricModality,
    others: Mapping[str, BiometricModality] | None = None,
    max_side: int | None = None,
) -> AnalysedPhoto:
    """Decode once, re-encode without metadata, and have ``modality`` assess the decoded
    image in one pass, then each of ``others`` (the node's other modalities: a plug-in
    that raises is skipped) on the same sample and image (CPU-bound: call it in a worker
    thread, through :func:`analyse_upload` for untrusted uploads)."""
    image = _decode_portrait(
        data, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side, field=field
    )
    jpeg = to_jpeg(image)
    sanitised = SanitisedPhoto(hashlib.sha256(jpeg).hexdigest(), jpeg, image.width, image.height)
    report, template = assess(modality, data, decoded=image)
    return AnalysedPhoto(
        sanitised,
        _faces_found(report, template),
        report.to_dict(),
        report.score,
        report.passed,
        template,
        assess_others(others or {}, data, decoded=image),
    )


# The listed portrait: the size of the alert page's portraits, and a byte budget that keeps a
# watchlist of many faces small on every post it travels to.
LISTED_PORTRAIT_SIZE = (150, 188)
LISTED_PORTRAIT_MAX_BYTES = 15_000
_LISTED_QUALITIES = (85, 75, 65, 55, 45, 35)
# The crop around the detected face: this many face heights tall, its centre this many face
# heights above the face's (hair and chin in, as on an identity photo).
_HEAD_AND_SHOULDERS = 2.0
_CROP_RAISE = 0.1


def _face_crop(size: tuple[int, int], analysis: PortraitAnalysis) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) of the decoded image to keep: head and shoulders
    around the one face found, at the listed portrait's aspect, inside the image."""
    width, height = size
    aspect = LISTED_PORTRAIT_SIZE[0] / LISTED_PORTRAIT_SIZE[1]
    if analysis.faces_found == 1 and analysis.faces:
        face = analysis.faces[0]
        scale = analysis.scale or 1.0
        centre_x = (face.left + face.right) / 2 / scale
        face_height = max(1.0, face.height / scale)
        centre_y = (face.top + face.bottom) / 2 / scale - _CROP_RAISE * face_height
        crop_h = _HEAD_AND_SHOULDERS * face_height
    else:  # no single face: the whole picture, centred
        centre_x, centre_y, crop_h = width / 2, height / 2, float(height)
    crop_w = crop_h * aspect
    shrink = min(1.0, width / crop_w, height / crop_h)  # never larger than the image
    crop_w, crop_h = crop_w * shrink, crop_h * shrink
    left = min(max(0.0, centre_x - crop_w / 2), width - crop_w)
    top = min(max(0.0, centre_y - crop_h / 2), height - crop_h)
    return round(left), round(top), round(left + crop_w), round(top + crop_h)


def listed_portrait(image: Image.Image, analysis: PortraitAnalysis) -> bytes:
    """The small portrait a face watchlist entry keeps of ``image`` (already decoded by
    :func:`decode_image`, so nothing of the original file survives but its pixels):
    the face cropped, resized to :data:`LISTED_PORTRAIT_SIZE`, re-encoded by ``to_jpeg``
    (no EXIF or other metadata) at the best quality that fits the byte budget."""
    box = _face_crop(image.size, analysis)
    small = image.crop(box).resize(LISTED_PORTRAIT_SIZE, Image.Resampling.LANCZOS)
    for quality in _LISTED_QUALITIES:
        jpeg = to_jpeg(small, quality=quality)
        if len(jpeg) <= LISTED_PORTRAIT_MAX_BYTES:
            return jpeg
    return jpeg


def decode_listed_photo(data: bytes) -> Image.Image:
    """Decode a watchlist photo as a portrait from the desk is (8-bit modes only, no
    larger than the face pipeline needs); raises ``ImageRejected``."""
    return decode_image(data, modes=PORTRAIT_MODES, working_side=PORTRAIT_WORKING_SIDE)


class DecodeSlots:
    """At most ``slots`` photos decode at once; ``max_waiting`` more may wait for a slot.

    One instance per limit serves the whole process; it keeps one semaphore per event loop
    (a server has one loop; tests start several).
    """

    def __init__(self, slots: int, max_waiting: int) -> None:
        self.slots = slots
        self.max_waiting = max_waiting
        self.waiting = 0
        self.decoding = 0
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._semaphores = weakref.WeakKeyDictionary()

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.slots)
        return semaphore

    @asynccontextmanager
    async def slot(self, field: str) -> AsyncIterator[None]:
        """Hold one decode slot; refuse (503) when too many photos already wait."""
        semaphore = self._semaphore()
        if semaphore.locked() and self.waiting >= self.max_waiting:
            raise PhotoRefused(
                503,
                "busy",
                title="Too many photos at once",
                field=field,
                detail="the post is busy decoding other photos: send this one again shortly",
                headers={"Retry-After": str(BUSY_RETRY_SECONDS)},
            )
        self.waiting += 1
        try:
            await semaphore.acquire()
        finally:
            self.waiting -= 1
        self.decoding += 1
        try:
            yield
        finally:
            self.decoding -= 1
            semaphore.release()


_SLOTS: dict[tuple[int, int], DecodeSlots] = {}


def decode_slots(settings: Settings) -> DecodeSlots:
    """The process-wide decode limiter for these settings' limits."""
    key = (settings.photo_decode_slots, settings.photo_decode_waiting)
    limiter = _SLOTS.get(key)
    if limiter is None:
        limiter = _SLOTS[key] = DecodeSlots(*key)
    return limiter


async def analyse_upload(data: bytes, settings: Settings, *, field: str = "photo") -> AnalysedPhoto:
    """Analyse an uploaded portrait in a worker thread, within the node's photo limits and
    the process's decode slots, assessed by the node's face modality (:func:`face_modality`).
    A request cancelled meanwhile (the client went away) keeps its slot until its thread has
    finished: a thread cannot be stopped, and a slot freed early would let uploads that are
    dropped at once decode without limit."""
    if len(data) > settings.max_photo_bytes:  # refused at once, without waiting for a slot
        raise PhotoRefused(
            413,
            "too_large_bytes",
            field=field,
            detail=f"image is {len(data)} bytes; the limit is {settings.max_photo_bytes} bytes",
        )
    modality = face_modality(settings)
    async with decode_slots(settings).slot(field):
        work = asyncio.ensure_future(
            asyncio.to_thread(
                analyse_photo,
                data,
                max_bytes=settings.max_photo_bytes,
                max_pixels=settings.max_photo_pixels,
                max_side=settings.max_photo_side,
                field=field,
                modality=modality,
                others=other_modalities(settings),
            )
        )
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait([work])  # the thread runs on: hold the slot until it ends
            if not work.cancelled():
                work.exception()  # its refusal, if any, is nobody's to answer any more
            raise
