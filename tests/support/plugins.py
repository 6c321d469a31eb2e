"""Biometric plug-ins installed for a test: a distribution's metadata and entry point in a
site directory, and the fake iris plug-in of tests/plugins."""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

from biometrics.plugins import ENTRY_POINT_GROUP


def install_plugin(site: Path, entry_name: str, target: str) -> None:
    """Write a distribution registering ``target`` under ``entry_name``, as an installer would."""
    dist_info = site / f"borderpost_test_{entry_name.replace('-', '_')}-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: borderpost-test-{entry_name}\nVersion: 0.1\n",
        encoding="utf-8",
    )
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{entry_name} = {target}\n", encoding="utf-8"
    )


PLUGIN_SOURCE = Path(__file__).resolve().parents[1] / "plugins" / "borderpost_fake_iris"


def install_dist(site: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """Write a minimal ``.dist-info`` the way an installer would."""
    dist_info = site / f"{name}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{key} = {value}" for key, value in entry_points.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def forget_module(name: str) -> None:
    sys.modules.pop(name, None)


def install_fake_iris(site: Path) -> Path:
    """Install the fake iris dist into ``site`` (created if need be) as pip would: its module
    and a ``*.dist-info`` with the entry points its pyproject.toml declares."""
    project = tomllib.loads((PLUGIN_SOURCE / "pyproject.toml").read_text(encoding="utf-8"))
    declared = project["project"]["entry-points"][ENTRY_POINT_GROUP]
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(PLUGIN_SOURCE / "borderpost_fake_iris.py", site)
    install_dist(site, "borderpost_fake_iris", project["project"]["version"], declared)
    return site
