"""The real dlib face pipeline on the shared face photos and scikit-image's astronaut."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from biometrics.engine import FaceEngine
from biometrics.evaluate import evaluate_directory
from biometrics.face import DlibFaceEngine, PortraitAnalysis, analyse_portrait, get_engine
from biometrics.imaging import decode_image, downscale, to_jpeg
from biometrics.index import FaceIndex
from biometrics.quality import QualityThresholds

pytestmark = pytest.mark.faces

TOLERANCE = 0.6
OBAMA = ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg"]
BIDEN = ["biden_1.jpg", "biden_2.jpg"]


@pytest.fixture(scope="module")
def engine() -> DlibFaceEngine:
    return get_engine()


@pytest.fixture(scope="module")
def astronaut_bytes() -> bytes:
    from skimage import data

    return (Path(data.__file__).parent / "astronaut.png").read_bytes()


@cache
def _analyse(path: Path) -> PortraitAnalysis:
    return analyse_portrait(path.read_bytes())


Analysed = Callable[[str], PortraitAnalysis]


@pytest.fixture(scope="module")
def analysed(faces_dir: Path) -> Analysed:
    """Analyse a shared photo by file name (each photo is analysed once per session)."""

    def lookup(name: str) -> PortraitAnalysis:
        return _analyse(faces_dir / name)

    return lookup


def distance(a: PortraitAnalysis, b: PortraitAnalysis) -> float:
    assert a.encoding is not None and b.encoding is not None
    return float(np.linalg.norm(a.encoding - b.encoding))


# ---------------------------------------------------------------- matching
@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(OBAMA, 2)))
def test_same_person_matches(analysed: Analysed, a: str, b: str) -> None:
    assert distance(analysed(a), analysed(b)) < TOLERANCE


def test_biden_photos_match_each_other(analysed: Analysed) -> None:
    assert distance(analysed("biden_1.jpg"), analysed("biden_2.jpg")) < TOLERANCE


@pytest.mark.parametrize(("a", "b"), list(itertools.product(BIDEN, OBAMA)))
def test_different_people_do_not_match(analysed: Analysed, a: str, b: str) -> None:
    assert distance(analysed(a), analysed(b)) > TOLERANCE


def test_encodings_are_128_float32(analysed: Analysed) -> None:
    encoding = analysed("obama_1.jpg").encoding
    assert encoding is not None and encoding.shape == (128,) and encoding.dtype == np.float32


# ---------------------------------------------------------------- quality gate on real photos
def test_two_people_are_refused_as_a_portrait(analysed: Analysed) -> None:
    result = analysed("two_people.jpg")
    assert result.faces_found == 2 and result.encoding is None
    assert not result.quality.passed and result.quality.score == 0
    reason = next(r for r in result.quality.reasons if r.code == "multiple_faces")
    assert "2 faces" in reason.message


def test_partial_face_scores_low(analysed: Analysed) -> None:
    quality = analysed("obama_partial_face.jpg").quality
    assert quality.score < QualityThresholds().pass_score
    assert not quality.passed and "face_cut_off" in quality.codes


@pytest.mark.parametrize("name", ["obama_1.jpg", "obama_2.jpg", "biden_2.jpg", "miranda_1.png"])
def test_clean_portraits_pass(analysed: Analysed, name: str) -> None:
    quality = analysed(name).quality
    assert quality.passed and quality.score == 100, quality.reasons


def test_rgba_png_decodes_and_encodes(faces_dir: Path, analysed: Analysed) -> None:
    image = decode_image((faces_dir / "rgba_32bit.png").read_bytes())
    assert image.mode == "RGB" and image.size == (626, 1200)
    result = analysed("rgba_32bit.png")
    assert result.faces_found == 1 and result.encoding is not None
    assert distance(result, analysed("obama_2.jpg")) < TOLERANCE


def test_small_photo_still_finds_the_face(analysed: Analysed) -> None:
    result = analysed("obama_small.jpg")
    assert result.image_size == (320, 240) and result.scale == 1.0
    assert result.faces_found == 1 and result.encoding is not None
    assert distance(result, analysed("obama_1.jpg")) < TOLERANCE


def test_astronaut_encodes_one_face(astronaut_bytes: bytes) -> None:
    result = analyse_portrait(astronaut_bytes)
    assert result.faces_found == 1 and result.encoding is not None
    assert result.encoding.shape == (128,) and result.quality.passed


def test_engine_contract_and_detection_threshold(astronaut_bytes: bytes) -> None:
    engine = get_engine()
    assert isinstance(engine, FaceEngine) and get_engine() is engine  # cached singleton
    pixels = np.asarray(decode_image(astronaut_bytes))
    [face] = engine.detect(pixels)
    assert face.confidence is not None and face.confidence > 0.5
    # dlib's own cut-off (0) also reports a weak false positive on the space suit.
    permissive = DlibFaceEngine(min_detection_score=0.0)
    assert len(permissive.detect(pixels)) == 2
    encoding = engine.encode(pixels, face)
    assert engine.compare(encoding, encoding) == 0.0
    shifted = encoding + np.float32(0.01)
    assert engine.compare(encoding, shifted) == pytest.approx(0.01 * np.sqrt(128), rel=1e-3)
    with pytest.raises(ValueError):
        DlibFaceEngine(number_of_times_to_upsample=-1)


def test_large_photo_is_analysed_downscaled(analysed: Analysed) -> None:
    result = analysed("obama_3.jpg")
    assert result.image_size == (1434, 2333)
    assert max(result.analysed_size) == 800 and result.scale == pytest.approx(800 / 2333)


def test_detect_maps_boxes_back_to_full_resolution(faces_dir: Path, engine: DlibFaceEngine) -> None:
    full = np.asarray(decode_image((faces_dir / "obama_1.jpg").read_bytes()))
    small_image, scale = downscale(Image.fromarray(full), engine.max_side)
    [full_box] = engine.detect(full)
    [small_box] = engine.detect(np.asarray(small_image))
    assert full_box == small_box.scaled(1 / scale)
    assert engine.quality(full).metrics["face_width_px"] == small_box.width


@pytest.fixture(scope="module")
def good_portrait(faces_dir: Path) -> Image.Image:
    return decode_image((faces_dir / "obama_1.jpg").read_bytes())


def _degraded(image: Image.Image, kind: str) -> Image.Image:
    width, height = image.size
    if kind == "too_blurry":
        return image.filter(ImageFilter.GaussianBlur(4))
    if kind == "underexposed":
        return image.point(lambda v: v // 5)
    if kind == "overexposed":
        return image.point(lambda v: min(255, int(v * 1.8)))
    if kind == "not_frontal":
        return image.rotate(25, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
    canvas = Image.new("RGB", (width * 3, height) if kind == "not_centred" else (width, height))
    canvas.paste((200, 200, 200), (0, 0, *canvas.size))
    if kind == "not_centred":
        canvas.paste(image, (0, 0))
        return canvas
    small = image.resize((width // 4, height // 4))  # face_too_small
    canvas.paste(small, ((width - small.width) // 2, (height - small.height) // 2))
    return canvas


@pytest.mark.parametrize(
    "code",
    ["too_blurry", "underexposed", "overexposed", "not_frontal", "not_centred", "face_too_small"],
)
def test_degraded_portrait_is_flagged(good_portrait: Image.Image, code: str) -> None:
    result = analyse_portrait(to_jpeg(_degraded(good_portrait, code)))
    assert result.faces_found == 1
    assert code in result.quality.codes and not result.quality.passed


# ---------------------------------------------------------------- 1:N and evaluation
def test_index_finds_the_right_person(analysed: Analysed) -> None:
    names = OBAMA + BIDEN + ["miranda_1.png", "lacamoire_1.png"]
    index = FaceIndex.from_pairs((name, analysed(name).encoding) for name in names)
    hits = index.search(analysed("obama_small.jpg").encoding, k=3)
    assert hits[0].template_id in OBAMA and hits[0].band in {"HIGH", "MEDIUM"}
    assert all(hit.template_id in OBAMA for hit in hits)
    biden = index.search(analysed("biden_2.jpg").encoding, k=2, max_distance=TOLERANCE)
    assert [hit.template_id for hit in biden] == ["biden_2.jpg", "biden_1.jpg"]


def test_evaluate_directory(faces_dir: Path, tmp_path: Path) -> None:
    for photo in faces_dir.iterdir():
        (tmp_path / photo.name).symlink_to(photo)
    (tmp_path / "crowd_1.jpg").symlink_to(faces_dir / "two_people.jpg")
    (tmp_path / "junk_1.jpg").write_bytes(b"not an image at all")
    report = evaluate_directory(tmp_path)
    assert report["templates_enrolled"] == 7
    assert report["genuine_pairs"] == 4  # 3 obama pairs + 1 biden pair
    assert report["impostor_pairs"] == 17  # C(7, 2) - 4
    assert report["failure_to_enrol"]["count"] == 2
    reasons = {item["file"]: item["reason"] for item in report["failure_to_enrol"]["files"]}
    assert reasons == {
        "crowd_1.jpg": "2 faces detected",
        "junk_1.jpg": "image rejected: not_an_image",
    }
    ignored = {"obama_partial_face.jpg", "obama_small.jpg", "rgba_32bit.png", "two_people.jpg"}
    assert ignored <= set(report["ignored"])
    at = report["at_threshold"]
    assert at["threshold"] == 0.6 and at["fmr"] == 0.0 and at["false_matches"] == 0
    assert at["fnmr"] == 0.0 and at["false_non_matches"] == 0
    thresholds = [point["threshold"] for point in report["sweep"]]
    assert thresholds == pytest.approx([0.3 + 0.05 * i for i in range(11)])
    fmrs = [point["fmr"] for point in report["sweep"]]
    fnmrs = [point["fnmr"] for point in report["sweep"]]
    assert fmrs == sorted(fmrs) and fnmrs == sorted(fnmrs, reverse=True)
    json.dumps(report)  # JSON-able
