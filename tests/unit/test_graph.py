"""ccd.cli.graph: DOT text for a workflow and SVG through Graphviz."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from ccd.cli.format import STATE_COLOURS
from ccd.cli.graph import render_svg, to_dot
from ccd.errors import CcdError

NODE = re.compile(r'^  "((?:[^"\\]|\\.)*)" \[(.*)\];$')
EDGE = re.compile(r'^  "((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)";$')


def make_job(
    name: str, state: str = "pending", needs: list[str] | None = None, **fields: Any
) -> dict[str, Any]:
    job = {"name": name, "state": state, "progress": None, "needs": needs or []}
    return {**job, "host": "localhost", "executor": "local", **fields}


def make_status(*jobs: dict[str, Any]) -> dict[str, Any]:
    return {"id": "a1b2c3d4", "name": "diamond", "state": "running", "jobs": list(jobs)}


#: a -> b, a -> c, b -> d, c -> d
DIAMOND = make_status(
    make_job("a", "succeeded", progress=100.0),
    make_job("b", "running", ["a"], progress=42.7),
    make_job("c", "failed", ["a"], reason="out of memory"),
    make_job("d", "pending", ["b", "c"]),
)


def nodes(dot: str) -> dict[str, str]:
    return {m[1]: m[2] for line in dot.splitlines() if (m := NODE.match(line))}


def edges(dot: str) -> set[tuple[str, str]]:
    return {(m[1], m[2]) for line in dot.splitlines() if (m := EDGE.match(line))}


def test_diamond() -> None:
    dot = to_dot(DIAMOND)
    assert dot.startswith('digraph "diamond" {\n') and dot.endswith("}\n")
    assert edges(dot) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}
    found = nodes(dot)
    assert list(found) == ["a", "b", "c", "d"]
    for job in DIAMOND["jobs"]:
        assert f'fillcolor="{STATE_COLOURS[job["state"]]}"' in found[job["name"]]
    assert 'label="a\\nsucceeded 100%"' in found["a"]
    assert 'label="b\\nrunning 42%"' in found["b"]
    assert 'label="c\\nfailed"' in found["c"]
    assert "out of memory" in found["c"]  # in the tooltip


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("a.b-c", '"a.b-c"'),
        ("1st", '"1st"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("ends\\", '"ends\\\\"'),
        ("node", '"node"'),  # a DOT keyword
        ("two\nlines", '"two\\nlines"'),
    ],
)
def test_names_are_quoted(name: str, quoted: str) -> None:
    dot = to_dot(make_status(make_job("p.q"), make_job(name, needs=["p.q"])))
    assert f'  "p.q" -> {quoted};' in dot.splitlines()
    assert any(line.startswith(f"  {quoted} [") for line in dot.splitlines())


@pytest.mark.parametrize(
    ("around", "kept", "kept_edges"),
    [
        ("a", {"a", "b", "c"}, {("a", "b"), ("a", "c")}),
        ("b", {"a", "b", "d"}, {("a", "b"), ("b", "d")}),
        ("d", {"b", "c", "d"}, {("b", "d"), ("c", "d")}),
    ],
)
def test_around_keeps_a_job_and_its_neighbours(
    around: str, kept: set[str], kept_edges: set[tuple[str, str]]
) -> None:
    dot = to_dot(DIAMOND, around=around)
    found = nodes(dot)
    assert set(found) == kept
    assert edges(dot) == kept_edges
    assert [name for name, attrs in found.items() if "penwidth" in attrs] == [around]


def test_around_an_unknown_job_is_an_error() -> None:
    with pytest.raises(ValueError, match="'zz'"):
        to_dot(DIAMOND, around="zz")


def test_svg_from_real_dot() -> None:
    tricky = make_status(*DIAMOND["jobs"], make_job("a.b-c", "queued", ["d"]),
                         make_job('q"uote\\', "skipped", ["a.b-c"]))  # fmt: skip
    svg = render_svg(to_dot(tricky)).decode()
    assert "<svg" in svg and svg.rstrip().endswith("</svg>")
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    for name in ("a", "b", "c", "d", "a.b-c", 'q"uote\\'):
        assert name in texts
    assert "running 42%" in texts


def test_dot_failure_is_a_ccd_error_with_its_stderr() -> None:
    with pytest.raises(CcdError, match="syntax error"):
        render_svg("digraph { a -> ; }")


def test_missing_dot_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `dot` anywhere
    with pytest.raises(CcdError, match="apt-get install graphviz") as err:
        render_svg(to_dot(DIAMOND))
    assert "-o file.dot" in str(err.value)


def test_a_dot_that_hangs_times_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "dot"
    fake.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CcdError, match=re.escape("took more than 0.5s")):
        render_svg(to_dot(DIAMOND), timeout=0.5)
