"""The distribution's name: `ccd` on the package index is another project."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_distribution_is_not_named_ccd_and_installs_both_commands() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "ccd-coordinator"
    assert project["scripts"] == {"ccd": "ccd.daemon.main:main", "ccctl": "ccd.cli.fast:main"}
    installed = metadata.distribution("ccd-coordinator")
    scripts = {ep.name: ep.value for ep in installed.entry_points if ep.group == "console_scripts"}
    assert scripts == project["scripts"]
