"""The dashboard's files ship in the package and load nothing from the network."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import ccd.web

WEB = Path(ccd.web.__file__).parent
ROOT = WEB.parents[1]


def test_package_data_covers_every_page_and_asset() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["ccd.web"]
    shipped = {path for pattern in patterns for path in WEB.glob(pattern) if path.is_file()}
    files = {p for d in ("static", "templates") for p in (WEB / d).rglob("*") if p.is_file()}
    assert files - shipped == set()


def test_every_vendored_library_has_its_licence_and_origin() -> None:
    libraries = [p for p in (WEB / "static" / "vendor").iterdir() if p.is_dir()]
    assert libraries
    for library in libraries:
        assert (library / "LICENSE").stat().st_size > 0, library
        assert (library / "SOURCE").read_text().strip(), library


def test_our_pages_script_and_style_load_nothing_from_elsewhere() -> None:
    # clusters are often offline: every src/href is the daemon's own
    ours = [*(WEB / "templates").glob("*.html"), *(WEB / "static").glob("*.*")]
    assert ours
    for path in ours:
        assert re.search(r"https?://|//cdn", path.read_text()) is None, path
