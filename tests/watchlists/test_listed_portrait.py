"""The listed portrait a face watchlist entry keeps (``registry.photos.listed_portrait``): a
small JPEG of the face, re-encoded without metadata, within its byte budget."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biometrics.face import analyse_image, analyse_portrait
from registry.photos import (
    LISTED_PORTRAIT_MAX_BYTES,
    LISTED_PORTRAIT_SIZE,
    decode_listed_photo,
    listed_portrait,
)

MAKE = 0x010F
GPS_IFD = 0x8825


def tagged_jpeg(path: Path) -> bytes:
    """The photo as a camera would send it: JPEG with EXIF (maker, GPS) and a comment."""
    exif = Image.Exif()
    exif[MAKE] = "SpyCameraMaker"
    exif.get_ifd(GPS_IFD)[2] = (18.0, 5.0, 0.0)  # latitude
    buffer = io.BytesIO()
    with Image.open(path) as source:
        source.convert("RGB").save(
            buffer, format="JPEG", exif=exif.tobytes(), comment=b"hidden-comment", quality=95
        )
    return buffer.getvalue()


def portrait_of(data: bytes) -> bytes:
    image = decode_listed_photo(data)
    return listed_portrait(image, analyse_image(image))


@pytest.mark.faces
def test_the_listed_portrait_is_a_small_jpeg_of_the_face_without_exif(
    astronaut_path: Path,
) -> None:
    source = tagged_jpeg(astronaut_path)
    assert b"SpyCameraMaker" in source and Image.open(io.BytesIO(source)).getexif()
    portrait = portrait_of(source)
    assert portrait.startswith(b"\xff\xd8\xff") and portrait.endswith(b"\xff\xd9")
    assert 1_000 < len(portrait) <= LISTED_PORTRAIT_MAX_BYTES < 15_360
    for hidden in (b"SpyCameraMaker", b"hidden-comment", b"Exif\x00\x00", b"ICC_PROFILE"):
        assert hidden not in portrait
    reopened = Image.open(io.BytesIO(portrait))
    assert reopened.format == "JPEG" and reopened.mode == "RGB"
    assert reopened.size == LISTED_PORTRAIT_SIZE == (150, 188)
    assert not reopened.getexif() and "exif" not in reopened.info
    assert "comment" not in reopened.info and "icc_profile" not in reopened.info
    reopened.load()  # the whole image decodes
    # the face was cropped, not the whole picture shrunk: it is still found, and large
    again = analyse_portrait(portrait)
    assert again.faces_found == 1
    face = again.faces[0]
    assert face.height / again.scale > 0.3 * LISTED_PORTRAIT_SIZE[1]
    # the same photo always gives the same bytes (a re-import is "unchanged")
    assert portrait_of(source) == portrait


def test_a_photo_without_one_face_still_fits_the_budget() -> None:
    noise = np.random.default_rng(7).integers(0, 256, (1200, 900, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    image = decode_listed_photo(buffer.getvalue())
    portrait = listed_portrait(image, analyse_image(image))
    assert len(portrait) <= LISTED_PORTRAIT_MAX_BYTES
    assert Image.open(io.BytesIO(portrait)).size == LISTED_PORTRAIT_SIZE
    # pixels that do not compress at all: the quality steps down until they fit
    small = Image.fromarray(noise[:188, :150])
    assert len(listed_portrait(small, analyse_image(small))) <= LISTED_PORTRAIT_MAX_BYTES
