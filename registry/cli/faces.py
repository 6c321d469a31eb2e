"""`borderpost faces compare` and `borderpost faces evaluate`: the face pipeline from the
command line, so an operator can check a pair of photos or accuracy on their own population."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from biometrics.evaluate import evaluate_directory
from biometrics.face import PortraitAnalysis, analyse_portrait, get_engine
from biometrics.imaging import ImageRejected
from registry.settings import SettingsError, load_settings


def _analyse(path: Path) -> PortraitAnalysis:
    try:
        return analyse_portrait(path.read_bytes())
    except ImageRejected as exc:
        raise click.ClickException(f"{path}: {exc.message}") from exc


def _summary(path: Path, analysis: PortraitAnalysis) -> dict[str, Any]:
    return {
        "file": str(path),
        "faces_found": analysis.faces_found,
        "quality": analysis.quality.to_dict(),
    }


def _tolerance() -> float:
    try:
        return load_settings().face_tolerance
    except SettingsError:
        return 0.6


@click.group("faces")
def faces() -> None:
    """Face photos: compare two, or evaluate accuracy on a folder."""


@faces.command("compare")
@click.argument("first", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tolerance", type=float, default=None, help="default BORDERPOST_FACE_TOLERANCE")
def compare(first: Path, second: Path, tolerance: float | None) -> None:
    """Print the distance, whether it is a match, and each photo's quality, as JSON.
    Exit 0 on a match, 1 on no match, 2 when a photo has not exactly one face."""
    limit = tolerance if tolerance is not None else _tolerance()
    a, b = _analyse(first), _analyse(second)
    report: dict[str, Any] = {
        "tolerance": limit,
        "first": _summary(first, a),
        "second": _summary(second, b),
    }
    if a.encoding is None or b.encoding is None:
        report.update(
            {"distance": None, "match": None, "error": "each photo needs exactly one face"}
        )
        click.echo(json.dumps(report, indent=2))
        sys.exit(2)
    distance = float(get_engine().compare(a.encoding, b.encoding))
    report.update({"distance": round(distance, 4), "match": distance <= limit})
    click.echo(json.dumps(report, indent=2))
    sys.exit(0 if report["match"] else 1)


@faces.command("evaluate")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--threshold", type=float, default=None, help="default BORDERPOST_FACE_TOLERANCE")
def evaluate(folder: Path, threshold: float | None) -> None:
    """Accuracy in the style of ISO/IEC 19795 on files named <person>_<n>.<ext>: genuine and
    impostor pair counts, FNMR and FMR at the threshold and over a sweep, failures to enrol."""
    result = evaluate_directory(
        folder, threshold=threshold if threshold is not None else _tolerance()
    )
    click.echo(json.dumps(result, indent=2, default=str))
