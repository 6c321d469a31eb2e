"""Offline accuracy evaluation of the face pipeline in the style of ISO/IEC 19795-1.

Files named ``<person>_<n>.<jpg|jpeg|png|webp>`` (regex :data:`FILENAME_PATTERN`) are
enrolled; anything else is listed under ``ignored``. Enrolment decodes the photo safely,
downscales it like the live pipeline and succeeds only when *exactly one* face is detected:
no face, several faces or an undecodable file count as a failure to enrol (FTE) - picking
"the largest face" would hide exactly the errors an operator must see.

Every unordered pair of enrolled templates is compared once (the comparator is symmetric):
pairs of the same person are genuine, others impostor. A pair is a match when its distance
is ``<= threshold`` (the ``face_recognition`` convention). FMR/FNMR are algorithm-level rates
over those comparisons; FTE is reported separately and not folded into them.

Run as ``python -m biometrics.evaluate DIR [--threshold 0.6]`` to print the JSON report.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biometrics.face import DlibFaceEngine, get_engine
from biometrics.imaging import ImageRejected, decode_image, downscale

__all__ = ["DEFAULT_SWEEP", "FILENAME_PATTERN", "evaluate_directory"]

FILENAME_PATTERN = re.compile(r"^(?P<person>.+)_(?P<n>\d+)\.(?:jpe?g|png|webp)$", re.IGNORECASE)
DEFAULT_SWEEP: tuple[float, ...] = tuple(round(0.30 + 0.05 * step, 2) for step in range(11))


@dataclass(frozen=True, slots=True)
class _Enrolled:
    file: str
    person: str
    template: np.ndarray


def _split_files(directory: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """Matching ``(path, person)`` pairs and the names of ignored files, sorted by name."""
    samples: list[tuple[Path, str]] = []
    ignored: list[str] = []
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        match = FILENAME_PATTERN.match(path.name)
        if match is None:
            ignored.append(path.name)
        else:
            samples.append((path, match.group("person")))
    return samples, ignored


def _enrol(data: bytes, engine: DlibFaceEngine) -> tuple[np.ndarray | None, str]:
    """A template, or None and the failure reason."""
    try:
        image, _ = downscale(decode_image(data), engine.max_side)
    except ImageRejected as exc:
        return None, f"image rejected: {exc.reason}"
    pixels = np.asarray(image)
    faces = engine.detect(pixels)
    if len(faces) != 1:
        return None, "no face detected" if not faces else f"{len(faces)} faces detected"
    return engine.encode(pixels, faces[0]), ""


def _rate(errors: int, trials: int) -> float | None:
    return errors / trials if trials else None


def _errors_at(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> dict[str, Any]:
    false_non_matches = int(np.count_nonzero(genuine > threshold))
    false_matches = int(np.count_nonzero(impostor <= threshold))
    return {
        "threshold": threshold,
        "fnmr": _rate(false_non_matches, genuine.size),
        "fmr": _rate(false_matches, impostor.size),
        "false_non_matches": false_non_matches,
        "false_matches": false_matches,
    }


def _sweep_point(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> dict[str, Any]:
    errors = _errors_at(genuine, impostor, threshold)
    return {key: errors[key] for key in ("threshold", "fnmr", "fmr")}


def _summary(distances: np.ndarray) -> dict[str, float] | None:
    if distances.size == 0:
        return None
    return {
        "min": round(float(distances.min()), 4),
        "mean": round(float(distances.mean()), 4),
        "max": round(float(distances.max()), 4),
    }


def _pair_distances(enrolled: list[_Enrolled]) -> tuple[np.ndarray, np.ndarray]:
    """Distances of all genuine and all impostor pairs."""
    genuine: list[float] = []
    impostor: list[float] = []
    for a, b in itertools.combinations(enrolled, 2):
        distance = float(np.linalg.norm(a.template.astype(np.float64) - b.template))
        (genuine if a.person == b.person else impostor).append(distance)
    return np.asarray(genuine, dtype=np.float64), np.asarray(impostor, dtype=np.float64)


def evaluate_directory(
    path: str | Path,
    *,
    threshold: float = 0.6,
    sweep: Sequence[float] = DEFAULT_SWEEP,
    engine: DlibFaceEngine | None = None,
) -> dict[str, Any]:
    """Enrol every matching photo in ``path`` and report FTE, FMR and FNMR (JSON-able)."""
    directory = Path(path)
    if not directory.is_dir():
        raise NotADirectoryError(str(directory))
    engine = engine or get_engine()
    samples, ignored = _split_files(directory)
    enrolled: list[_Enrolled] = []
    failures: list[dict[str, str]] = []
    for file_path, person in samples:
        template, reason = _enrol(file_path.read_bytes(), engine)
        if template is None:
            failures.append({"file": file_path.name, "reason": reason})
        else:
            enrolled.append(_Enrolled(file_path.name, person, template))
    genuine, impostor = _pair_distances(enrolled)
    return {
        "directory": str(directory),
        "files_considered": len(samples),
        "ignored": ignored,
        "templates_enrolled": len(enrolled),
        "persons": sorted({item.person for item in enrolled}),
        "failure_to_enrol": {
            "count": len(failures),
            "rate": _rate(len(failures), len(samples)),
            "files": failures,
        },
        "genuine_pairs": int(genuine.size),
        "impostor_pairs": int(impostor.size),
        "at_threshold": _errors_at(genuine, impostor, threshold),
        "sweep": [_sweep_point(genuine, impostor, t) for t in sweep],
        "distances": {"genuine": _summary(genuine), "impostor": _summary(impostor)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: print the evaluation of a directory as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--threshold", type=float, default=0.6)
    args = parser.parse_args(argv)
    print(json.dumps(evaluate_directory(args.directory, threshold=args.threshold), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
