"""The layering of docs/architecture.md, checked from the code's own imports.

Every ``import ccd…`` counts, also those inside functions and under TYPE_CHECKING:
a lazy import still makes the two modules depend on each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ccd"

#: the pure core: no processes, sockets, files or SQLite, so nothing from the edges
CORE = (
    "ccd.spec",
    "ccd.fold",
    "ccd.states",
    "ccd.events",
    "ccd.markers",
    "ccd.logscan",
    "ccd.expand",
    "ccd.notify",
    "ccd.resources",
    "ccd.caching",
    "ccd.usage",
    "ccd.report",
)
EDGES = (
    "ccd.executors",
    "ccd.store",
    "ccd.api",
    "ccd.cli",
    "ccd.daemon",
    "ccd.engine",
    "ccd.platform",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The ccd modules `path` imports (a name imported from a package counts as the
    submodule when there is one: `from ccd.cli import fast` is `ccd.cli.fast`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "ccd" or name.startswith("ccd.")}


def import_graph() -> nx.DiGraph:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target in imports_of(path) & modules.keys():
            # a package's __init__ re-exporting its own modules is not a circle
            if target != name and not target.startswith(name + "."):
                graph.add_edge(name, target)
    return graph


def test_no_module_imports_itself_back() -> None:
    cycles = list(nx.simple_cycles(import_graph()))
    assert cycles == []


@pytest.mark.parametrize("core", CORE)
def test_the_pure_core_imports_nothing_from_the_edges(core: str) -> None:
    graph = import_graph()
    modules = [m for m in graph if m == core or m.startswith(core + ".")]
    assert modules, f"no module {core}"
    upward = {
        (m, target) for m in modules for target in graph.successors(m) if target.startswith(EDGES)
    }
    assert upward == set()


def test_no_module_is_over_400_lines() -> None:
    # ~400: a module a little over (a docstring, a table) is not yet two modules
    long = {
        module_name(p): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 420
    }
    assert long == {}
