"""Plug-in discovery through the ``borderpost.biometrics`` entry-point group.

The fake iris plug-in in ``tests/plugins/borderpost_fake_iris`` is "installed" for the test by
writing its module and a ``*.dist-info`` folder (METADATA + entry_points.txt generated from
its pyproject.toml) into a temporary directory put on ``sys.path`` - exactly what pip would
produce, so discovery has to go through ``importlib.metadata`` entry points.
"""

from __future__ import annotations

import importlib
import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from biometrics.face_plugin import TEMPLATE_BYTES, FaceModality, decode_template, encode_template
from biometrics.imaging import to_jpeg
from biometrics.plugins import (
    BiometricModality,
    SinglePassModality,
    assess,
    load_modalities,
)
from tests.support.plugins import forget_module, install_dist, install_fake_iris


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site directory holding the fake iris dist, prepended to ``sys.path``."""
    site = install_fake_iris(tmp_path / "site-packages")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    forget_module("borderpost_fake_iris")
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def astronaut_png() -> bytes:
    from skimage import data

    return (Path(data.__file__).parent / "astronaut.png").read_bytes()


def require_face_entry_point(modalities: dict[str, BiometricModality]) -> None:
    assert "face" in modalities, (
        "the project's own entry point is missing: run `pip install -e .` so that "
        "borderpost's dist-info (entry point face = biometrics.face_plugin:FaceModality) exists"
    )


# ---------------------------------------------------------------- discovery
def test_face_and_iris_are_discovered_through_entry_points(plugin_site: Path) -> None:
    modalities = load_modalities()
    require_face_entry_point(modalities)
    assert {"face", "iris"} <= modalities.keys()
    iris = modalities["iris"]
    assert type(iris).__module__ == "borderpost_fake_iris"
    assert Path(sys.modules["borderpost_fake_iris"].__file__ or "").parent == plugin_site
    assert isinstance(modalities["face"], FaceModality)
    for name, modality in modalities.items():
        assert isinstance(modality, BiometricModality)
        assert modality.name == name
    assert (modalities["face"].modality, iris.modality) == ("FACE", "IRIS")


def test_iris_is_absent_without_its_distribution() -> None:
    forget_module("borderpost_fake_iris")
    importlib.invalidate_caches()
    assert "iris" not in load_modalities()


def test_broken_plugins_are_skipped_with_a_warning(
    plugin_site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install_dist(
        plugin_site,
        "borderpost_broken",
        "0.1",
        {
            "missing": "borderpost_no_such_module:Modality",
            "crashes": "json:dumps",  # calling it without arguments raises TypeError
            "shapeless": "builtins:object",  # loads and instantiates, but is no modality
        },
    )
    importlib.invalidate_caches()
    with caplog.at_level(logging.WARNING, logger="biometrics.plugins"):
        modalities = load_modalities()
    assert "iris" in modalities
    assert not {"missing", "crashes", "shapeless"} & modalities.keys()
    logged = " ".join(record.getMessage() for record in caplog.records)
    for name in ("missing", "crashes", "shapeless"):
        assert repr(name) in logged


def test_unknown_group_is_empty() -> None:
    assert load_modalities("borderpost.no-such-group") == {}


# ---------------------------------------------------------------- the fake iris plug-in
def test_fake_iris_behaves_honestly(plugin_site: Path) -> None:
    iris = load_modalities()["iris"]
    template = iris.extract_template(b"left-eye-scan")
    assert template is not None and len(template) == 32
    assert iris.extract_template(b"") is None
    assert iris.match(template, iris.extract_template(b"left-eye-scan") or b"") == 1.0
    assert iris.match(template, iris.extract_template(b"other-eye") or b"") == 0.0
    gallery = {"a": iris.extract_template(b"x") or b"", "b": template}
    assert iris.identify(template, gallery, k=1) == [("b", 1.0)]
    assert iris.quality(b"").score == 0 and iris.quality(b"scan").passed


# ---------------------------------------------------------------- the face plug-in
def test_face_plugin_end_to_end_on_astronaut(plugin_site: Path, astronaut_png: bytes) -> None:
    modalities = load_modalities()
    require_face_entry_point(modalities)
    face = modalities["face"]
    report = face.quality(astronaut_png)
    assert report.passed and report.score >= 50, report
    template = face.extract_template(astronaut_png)
    assert template is not None and len(template) == TEMPLATE_BYTES
    assert face.match(template, template) == pytest.approx(1.0, abs=1e-6)
    # The same face recompressed as a smaller JPEG must still match.
    photo = Image.open(io.BytesIO(astronaut_png)).convert("RGB")
    recompressed = face.extract_template(to_jpeg(photo.resize((400, 400)), quality=70))
    assert recompressed is not None
    assert face.match(template, recompressed) >= face.match_threshold
    # 1:N: the astronaut is found among unrelated templates.
    rng = np.random.default_rng(4)
    probe = decode_template(template)
    gallery = {f"other-{i}": encode_template(probe + rng.normal(0, 0.08, 128)) for i in range(20)}
    gallery["astronaut"] = recompressed
    ranked = face.identify(template, gallery, k=3)
    assert ranked[0][0] == "astronaut" and ranked[0][1] >= face.match_threshold
    assert [score for _, score in ranked] == sorted((score for _, score in ranked), reverse=True)


def test_face_plugin_handles_bad_samples() -> None:
    face = FaceModality()
    report = face.quality(b"definitely not a photo")
    assert report.score == 0 and report.codes == ["invalid_image"]
    assert face.extract_template(b"") is None
    blank = to_jpeg(Image.new("RGB", (300, 300), (120, 120, 120)))
    assert face.extract_template(blank) is None
    assert face.quality(blank).codes == ["no_face"]
    with pytest.raises(ValueError):
        face.match(b"short", b"short")
    assert face.identify(encode_template(np.zeros(128)), {}, k=3) == []


# ---------------------------------------------------------------- single pass and codec
def test_assess_falls_back_to_quality_and_extract_for_plugins_without_it(
    plugin_site: Path,
) -> None:
    iris = load_modalities()["iris"]
    assert not isinstance(iris, SinglePassModality)  # a plug-in written before assess
    report, template = assess(iris, b"left-eye-scan", decoded=Image.new("RGB", (4, 4)))
    assert report.passed and template == iris.extract_template(b"left-eye-scan")
    empty, none = assess(iris, b"")
    assert empty.score == 0 and none is None


def test_face_assess_is_quality_and_template_in_one_pass(astronaut_png: bytes) -> None:
    face = FaceModality()
    assert isinstance(face, SinglePassModality)
    report, template = assess(face, astronaut_png)
    assert report == face.quality(astronaut_png)
    assert template is not None and template == face.extract_template(astronaut_png)
    decoded = Image.open(io.BytesIO(astronaut_png)).convert("RGB")
    assert face.assess(b"ignored when decoded is given", decoded=decoded) == (report, template)
    bad, none = face.assess(b"definitely not a photo")
    assert bad.codes == ["invalid_image"] and none is None


def test_template_codec_round_trips_and_refuses_malformed_templates() -> None:
    vector = np.random.default_rng(3).normal(0, 0.1, 128).astype(np.float32)
    template = encode_template(vector)
    assert template == vector.astype("<f4").tobytes() and len(template) == TEMPLATE_BYTES
    assert np.array_equal(decode_template(template), vector)
    assert np.array_equal(decode_template(memoryview(template)), vector)
    assert np.array_equal(decode_template(vector), vector)  # an encoding already in memory
    assert decode_template(vector) is not vector
    for bad in (template[:-4], vector[:-1], np.full(128, np.nan), encode_template(vector * np.inf)):
        with pytest.raises(ValueError):
            decode_template(bad)
    with pytest.raises(ValueError):
        encode_template(vector[:64])
