"""ccd.spec is the pure core: it imports nothing from the layers that run workflows."""

from __future__ import annotations

import ast
from pathlib import Path

import ccd.spec

EDGES = ("ccd.executors", "ccd.store", "ccd.api", "ccd.cli", "ccd.engine", "ccd.daemon")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def test_the_spec_package_imports_no_edge_layer() -> None:
    package = Path(ccd.spec.__file__).parent
    upward = {
        f"{path.name}: {name}"
        for path in sorted(package.glob("*.py"))
        for name in imported_modules(path)
        if name.startswith(EDGES)
    }
    assert not upward
