"""`borderpost faces compare` and `faces evaluate` as an operator runs them (subprocess,
real dlib pipeline, the shared photos)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.servers import cli, node_env


def test_compare_same_person_different_people_and_two_faces(
    faces_dir: Path, tmp_path: Path
) -> None:
    env = node_env(tmp_path)
    same = cli(
        env, "faces", "compare", str(faces_dir / "obama_1.jpg"), str(faces_dir / "obama_3.jpg")
    )
    report = json.loads(same.stdout)
    assert report["match"] is True and report["distance"] < 0.6
    assert report["first"]["quality"]["score"] >= 50
    different = cli(
        env,
        "faces",
        "compare",
        str(faces_dir / "obama_1.jpg"),
        str(faces_dir / "biden_1.jpg"),
        check=False,
    )
    assert different.returncode == 1 and json.loads(different.stdout)["match"] is False
    group = cli(
        env,
        "faces",
        "compare",
        str(faces_dir / "two_people.jpg"),
        str(faces_dir / "obama_1.jpg"),
        check=False,
    )
    answer = json.loads(group.stdout)
    assert group.returncode == 2 and answer["first"]["faces_found"] == 2
    assert "multiple_faces" in [r["code"] for r in answer["first"]["quality"]["reasons"]]


def test_evaluate_counts_pairs_and_rates(faces_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "population"
    folder.mkdir()
    for name in (
        "obama_1.jpg",
        "obama_2.jpg",
        "obama_3.jpg",
        "biden_1.jpg",
        "biden_2.jpg",
        "lacamoire_1.png",
    ):
        (folder / name).symlink_to(faces_dir / name)
    result = json.loads(cli(node_env(tmp_path), "faces", "evaluate", str(folder)).stdout)
    assert result["genuine_pairs"] == 4  # 3 obama pairs + 1 biden pair
    assert result["impostor_pairs"] == 11  # 15 pairs in all
    assert result["at_threshold"]["fmr"] == 0.0
    assert result["at_threshold"]["fnmr"] == 0.0
    assert result["failure_to_enrol"] == {"count": 0, "rate": 0.0, "files": []}
    assert len(result["sweep"]) >= 5
