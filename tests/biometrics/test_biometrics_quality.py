"""Portrait quality gate on synthetic images (no dlib needed) and the FaceBox helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from biometrics.engine import FaceBox, FaceEngine, Landmarks, as_rgb_array
from biometrics.quality import (
    CHECK_WEIGHTS,
    QualityGate,
    QualityReport,
    QualityThresholds,
    laplacian_variance,
    pose_from_landmarks,
)

SIZE = 400
FACE = FaceBox(top=120, right=260, bottom=260, left=140)  # 120 px wide, centred


def textured(
    size: int = SIZE, mean: float = 128.0, amplitude: float = 40.0, height: int | None = None
) -> np.ndarray:
    """A sharp, mid-grey RGB test card (checkerboard of 4-px squares)."""
    yy, xx = np.mgrid[0 : height or size, 0:size]
    board = ((yy // 4 + xx // 4) % 2) * 2.0 - 1.0
    grey = np.clip(mean + amplitude * board, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def frontal(box: FaceBox = FACE) -> Landmarks:
    """Level eyes, nose tip straight below their midpoint, every point inside the box."""
    cx, cy = box.centre
    half = box.width / 4
    return Landmarks(
        left_eye=(cx - half, cy - 10),
        right_eye=(cx + half, cy - 10),
        nose_tip=(cx, cy + 15),
        points=((cx - half, cy - 10), (cx + half, cy - 10), (cx, cy + 15)),
    )


def assess(image: np.ndarray, faces: list[FaceBox], landmarks: Landmarks | None) -> QualityReport:
    return QualityGate().assess(image, faces, landmarks)


def test_good_portrait_passes() -> None:
    report = assess(textured(), [FACE], frontal())
    assert report.passed and report.score == 100 and report.reasons == []
    for key in ("face_count", "face_width_px", "sharpness", "brightness", "yaw_ratio"):
        assert key in report.metrics
    assert {"roll_deg", "centre_offset"} <= report.metrics.keys()
    assert report.metrics["face_width_px"] == 120


def test_no_face() -> None:
    report = assess(textured(), [], None)
    assert (report.score, report.passed, report.codes) == (0, False, ["no_face"])


def test_multiple_faces_names_the_count() -> None:
    other = FaceBox(top=10, right=100, bottom=100, left=10)
    report = assess(textured(), [FACE, other], None)
    assert report.codes == ["multiple_faces"] and report.score == 0 and not report.passed
    assert report.reasons[0].message == "2 faces found; exactly one is required"
    assert report.metrics["face_count"] == 2


def test_small_face() -> None:
    box = FaceBox(top=170, right=230, bottom=230, left=170)
    report = assess(textured(), [box], frontal(box))
    assert report.codes == ["face_too_small"]
    assert report.score == 100 - CHECK_WEIGHTS["size"]
    assert not report.passed  # any reason fails the gate, whatever the score
    assert "60 px" in report.reasons[0].message


def test_blurred_face() -> None:
    flat = np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)
    report = assess(flat, [FACE], frontal())
    assert report.codes == ["too_blurry"] and report.metrics["sharpness"] == 0


def test_noisy_face() -> None:
    noise = np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    assert "too_noisy" in assess(noise, [FACE], frontal()).codes


@pytest.mark.parametrize(
    ("mean", "code"), [(20.0, "underexposed"), (235.0, "overexposed")], ids=["dark", "bright"]
)
def test_exposure(mean: float, code: str) -> None:
    report = assess(textured(mean=mean, amplitude=15), [FACE], frontal())
    assert code in report.codes


def test_clipped_highlights_count_as_overexposed() -> None:
    image = textured(mean=160, amplitude=100)  # half the squares clip to white
    report = assess(image, [FACE], frontal())
    assert report.metrics["clipped_bright"] > 0.25 and "overexposed" in report.codes


@pytest.mark.parametrize(
    ("height", "box", "off_centre"),
    [
        (SIZE, FaceBox(120, 390, 260, 270), True),  # far right
        (SIZE, FaceBox(220, 260, 360, 140), False),  # low, but within 40 % of the height
        (2 * SIZE, FaceBox(10, 260, 130, 140), True),  # head at the very top of a tall photo
    ],
    ids=["right", "low-ok", "top"],
)
def test_centring(height: int, box: FaceBox, off_centre: bool) -> None:
    report = assess(textured(height=height), [box], frontal(box))
    assert report.codes == (["not_centred"] if off_centre else [])


def test_turned_head_is_not_frontal() -> None:
    marks = frontal()
    turned = Landmarks(marks.left_eye, marks.right_eye, (marks.nose_tip[0] + 25, marks.nose_tip[1]))
    report = assess(textured(), [FACE], turned)
    assert report.codes == ["not_frontal"] and report.metrics["yaw_ratio"] == pytest.approx(
        25 / 60, abs=1e-3
    )


def test_tilted_head_is_not_frontal() -> None:
    cx, cy = FACE.centre
    angle = math.radians(25)
    left = (cx - 30 * math.cos(angle), cy - 30 * math.sin(angle))
    right = (cx + 30 * math.cos(angle), cy + 30 * math.sin(angle))
    nose = (cx - 25 * math.sin(angle), cy + 25 * math.cos(angle))  # on the rotated midline
    report = assess(textured(), [FACE], Landmarks(left, right, nose, (left, right, nose)))
    assert report.codes == ["not_frontal"]
    assert report.metrics["roll_deg"] == pytest.approx(25, abs=0.01)
    assert report.metrics["yaw_ratio"] == pytest.approx(0, abs=1e-6)  # roll does not leak


def test_face_cut_off_by_the_frame_scores_low() -> None:
    box = FaceBox(top=120, right=60, bottom=260, left=-60)  # half the face left of the frame
    report = assess(textured(), [box], frontal(box))
    assert {"face_cut_off", "not_centred"} <= set(report.codes)
    assert report.metrics["outside_fraction"] == pytest.approx(0.5)
    assert report.score < QualityThresholds().pass_score and not report.passed


def test_landmarks_off_frame_mean_cut_off() -> None:
    marks = frontal()
    off = Landmarks(marks.left_eye, marks.right_eye, marks.nose_tip, (*marks.points, (-3.0, 5.0)))
    report = assess(textured(), [FACE], off)
    assert report.codes == ["face_cut_off"] and report.metrics["landmarks_outside"] == 1


def test_every_failing_check_lowers_the_score() -> None:
    box = FaceBox(top=20, right=40, bottom=60, left=-20)
    flat = np.full((SIZE, SIZE, 3), 10, dtype=np.uint8)
    marks = frontal(box)
    tilted = Landmarks(
        marks.left_eye, (marks.right_eye[0], marks.right_eye[1] + 30), marks.nose_tip
    )
    report = assess(flat, [box], tilted)
    expected = {"face_cut_off", "face_too_small", "too_blurry", "underexposed", "not_centred"}
    assert expected | {"not_frontal"} == set(report.codes)
    assert report.score == 0


def test_thresholds_are_configurable() -> None:
    strict = QualityGate(QualityThresholds(min_face_width_px=200, pass_score=90))
    assert strict.assess(textured(), [FACE], frontal()).codes == ["face_too_small"]
    lenient = QualityGate(QualityThresholds(min_face_width_px=10))
    small = FaceBox(top=180, right=220, bottom=220, left=180)
    assert "face_too_small" not in lenient.assess(textured(), [small], frontal(small)).codes


def test_report_is_json_friendly() -> None:
    data = assess(textured(), [FaceBox(0, 10, 10, 0), FACE], None).to_dict()
    assert data["reasons"][0]["code"] == "multiple_faces" and data["score"] == 0


def test_laplacian_variance_matches_scipy() -> None:
    grey = np.random.default_rng(0).random((50, 60)).astype(np.float32) * 255
    expected = ndimage.laplace(grey.astype(np.float64))[1:-1, 1:-1].var()
    assert laplacian_variance(grey) == pytest.approx(expected, rel=1e-4)
    assert laplacian_variance(np.zeros((2, 2))) == 0.0


def test_pose_of_degenerate_eyes() -> None:
    yaw, roll = pose_from_landmarks(Landmarks((5.0, 5.0), (5.0, 5.0), (5.0, 9.0)))
    assert math.isinf(yaw) and roll == 0.0


# ---------------------------------------------------------------- engine helpers
def test_facebox_helpers() -> None:
    box = FaceBox(top=10, right=50, bottom=70, left=-10, confidence=1.5)
    assert (box.width, box.height, box.area, box.centre) == (60, 60, 3600, (20.0, 40.0))
    assert box.css() == (10, 50, 70, -10)
    assert box.clipped(40, 40) == FaceBox(10, 40, 40, 0, 1.5)
    assert box.outside_fraction(40, 40) == pytest.approx(1 - 40 * 30 / 3600)
    assert box.scaled(0.5) == FaceBox(5, 25, 35, -5, 1.5)
    assert FaceBox(0, 0, 0, 0).outside_fraction(10, 10) == 1.0


def test_as_rgb_array_validates() -> None:
    assert as_rgb_array(np.zeros((2, 2, 3), np.uint8)).flags.c_contiguous
    for bad in (np.zeros((2, 2), np.uint8), np.zeros((2, 2, 3), np.float32), np.zeros((0, 2, 3))):
        with pytest.raises(ValueError):
            as_rgb_array(bad)
    with pytest.raises(TypeError):
        as_rgb_array([[1, 2, 3]])  # type: ignore[arg-type]


def test_face_engine_protocol_is_runtime_checkable() -> None:
    class Fake:
        def detect(self, image: np.ndarray) -> list[FaceBox]:
            return []

        def quality(self, image: np.ndarray, box: FaceBox | None = None) -> QualityReport:
            return QualityReport(score=0, passed=False)

        def encode(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
            return np.zeros(128, np.float32)

        def compare(self, a: np.ndarray, b: np.ndarray) -> float:
            return 0.0

    assert isinstance(Fake(), FaceEngine)
    assert not isinstance(object(), FaceEngine)
