"""Registration's portraits go through the face modality the settings name (issue 15).

The modality is a ``borderpost.biometrics`` plug-in found through its entry point: here a
test-only one (``ObservedFace``: the face plug-in, counting its single-pass ``assess``) is
"installed" by writing a ``*.dist-info`` into a directory put on ``sys.path``, as pip would.
The analysis through the default ``face`` modality is checked, photo by photo on the real
dlib pipeline, against the face pipeline the registry called directly before: same faces,
quality report and template bytes.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from biometrics.face import analyse_image
from biometrics.face_plugin import FaceModality
from biometrics.imaging import PORTRAIT_MODES, decode_image
from biometrics.plugins import Assessment
from registry.app import create_app
from registry.models import Photo
from registry.photos import PORTRAIT_WORKING_SIDE, analyse_photo, face_modality
from registry.settings import Settings, SettingsError
from tests.support.factories import td3
from tests.support.nodes import (
    NodeUnderTest,
    SeededBackend,
    app_under_test,
    base_settings,
    missing,
    unique_number,
)
from tests.support.plugins import install_plugin

PORTRAITS = (
    "obama_1.jpg",
    "obama_small.jpg",
    "obama_partial_face.jpg",
    "biden_2.jpg",
    "miranda_1.png",
    "two_people.jpg",
    "rgba_32bit.png",
)


class ObservedFace(FaceModality):
    """The face plug-in, recording every single-pass assessment it is asked for."""

    name = "observed-face"

    def __init__(self) -> None:
        super().__init__()
        self.assessed: list[tuple[bytes, tuple[int, int] | None]] = []

    def assess(self, sample: bytes, *, decoded: Image.Image | None = None) -> Assessment:
        self.assessed.append((sample, decoded.size if decoded is not None else None))
        return super().assess(sample, decoded=decoded)


@pytest.fixture
async def observed_node(
    seeded_backend: SeededBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[NodeUnderTest]:
    """A post whose face modality is the ``ObservedFace`` plug-in, under a name of its own
    (so this node's start is the one that loads it)."""
    name = f"observed-{uuid.uuid4().hex[:12]}"
    site = tmp_path / "site-packages"
    install_plugin(site, name, f"{__name__}:ObservedFace")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    try:
        async with app_under_test(seeded_backend, tmp_path, face_modality=name) as node:
            yield node
    finally:
        importlib.invalidate_caches()


async def test_registration_goes_through_the_configured_modality(
    observed_node: NodeUnderTest, faces_dir: Path
) -> None:
    modality = observed_node.node.face_modality
    assert isinstance(modality, ObservedFace) and modality.assessed == []
    assert face_modality(observed_node.node.settings) is modality  # loaded once, at start
    data = (faces_dir / "obama_1.jpg").read_bytes()
    response = await observed_node.client.post(
        "/api/crossings",
        headers=observed_node.auth("officer"),
        data={"crossing": json.dumps({"direction": "entry", "mrz": td3(unique_number())})},
        files={"photo": ("obama_1.jpg", data, "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    # One assessment, of the upload, on the image the registry decoded (not decoded twice).
    assert len(modality.assessed) == 1
    sample, decoded_size = modality.assessed[0]
    assert sample == data and decoded_size is not None
    async with observed_node.db.session() as session:
        stored = await session.scalar(
            select(Photo).where(Photo.sha256 == response.json()["photo_sha256"])
        )
    assert stored is not None and (stored.width, stored.height) == decoded_size
    # The stored template is the face pipeline's encoding, bit for bit.
    decoded = decode_image(data, modes=PORTRAIT_MODES, working_side=PORTRAIT_WORKING_SIDE)
    encoding = analyse_image(decoded).encoding
    assert encoding is not None
    assert stored.face_encoding == encoding.astype("<f4").tobytes()


def test_an_unknown_modality_stops_the_node_at_start(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, "", face_modality="no-such-modality")
    with pytest.raises(SettingsError) as refused:
        create_app(settings)
    message = str(refused.value)
    assert "BORDERPOST_FACE_MODALITY" in message and "'no-such-modality'" in message
    assert "face" in message  # says which plug-ins are installed
    assert not settings.node_key_path.exists()  # refused before the node opened anything


@pytest.mark.parametrize("name", PORTRAITS)
def test_the_face_modality_analyses_as_the_face_pipeline_did(faces_dir: Path, name: str) -> None:
    """Through the ``face`` modality, a portrait's faces, quality report and template are
    those of decoding it as the registry does and calling the face pipeline directly."""
    path = faces_dir / name
    if not path.exists():
        missing(f"{name} is not among the face photos")
    data = path.read_bytes()
    settings = Settings()
    modality = face_modality(settings)
    assert isinstance(modality, FaceModality)
    limits: dict[str, Any] = {
        "max_bytes": settings.max_photo_bytes,
        "max_pixels": settings.max_photo_pixels,
        "max_side": settings.max_photo_side,
    }
    analysed = analyse_photo(data, field="photo", modality=modality, **limits)
    decoded = decode_image(data, modes=PORTRAIT_MODES, working_side=PORTRAIT_WORKING_SIDE, **limits)
    direct = analyse_image(decoded)
    assert analysed.faces_found == direct.faces_found
    assert analysed.quality == direct.quality.to_dict()
    assert (analysed.quality_score, analysed.quality_passed) == (
        direct.quality.score,
        direct.quality.passed,
    )
    if direct.encoding is None:
        assert analysed.template is None and analysed.encoding is None
    else:
        assert analysed.template == direct.encoding.astype("<f4").tobytes()
        assert analysed.encoding is not None
        assert np.array_equal(analysed.encoding, direct.encoding)
    assert (analysed.photo.width, analysed.photo.height) == decoded.size
    assert analysed.photo.sha256 == hashlib.sha256(analysed.photo.jpeg).hexdigest()
