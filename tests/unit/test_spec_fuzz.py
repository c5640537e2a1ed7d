"""Whatever a workflow file holds, validation answers with a Workflow or a SpecError."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccd.errors import Problem, SpecError
from ccd.markers import MarkerWarning, Output, Progress, compile_progress_regex, parse_line
from ccd.spec.model import Workflow
from ccd.spec.validate import load_workflow_text

FUZZ = settings(
    max_examples=int(os.environ.get("CCD_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

JOB_KEYS = [
    "run",
    "script",
    "args",
    "needs",
    "host",
    "executor",
    "retries",
    "retry_delay",
    "retry_backoff",
    "timeout",
    "env",
    "workdir",
    "progress_regex",
    "resources",
]
CLOUDMESH_KEYS = ["name", "kind", "host", "exec", "script", "parent", "label", "user", "status"]
WORDS = [
    "jobs",
    "defaults",
    "name",
    "concurrency",
    "workflow",
    "nodes",
    "dependencies",
    "a",
    "b",
    "a.sh",
    "local",
    "ssh",
    "slurm",
    "localhost",
    "cluster",
    "1h30m",
    "-1",
    "0",
    "(",
    "(?P<progress>\\d+)",
    "~",
    "..",
    "a,b",
    *JOB_KEYS,
    *CLOUDMESH_KEYS,
]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "a.sh").write_text("echo a\n")
    return directory


def check(text: str | bytes, base: Path) -> None:
    try:
        wf = load_workflow_text(text, source="fuzz.yaml", base_dir=base, known_hosts=["cluster"])
    except SpecError as exc:
        assert exc.problems
        assert all(isinstance(p, Problem) and p.code and p.message for p in exc.problems)
        str(exc)  # the message renders
        return
    assert isinstance(wf, Workflow)
    Workflow.model_validate_json(wf.model_dump_json())


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(WORDS),
)
data = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.sampled_from(WORDS) | st.text(max_size=8) | st.integers(), inner, max_size=5
        )
    ),
    max_leaves=30,
)
values = st.one_of(
    scalars,
    st.lists(st.sampled_from(WORDS) | scalars, max_size=4),
    st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=5), scalars, max_size=3),
)
names = st.sampled_from(["a", "b", "c", "a b", "x/y", "..", "1"]) | st.text(max_size=6)
jobs = st.dictionaries(
    names, st.dictionaries(st.sampled_from(JOB_KEYS), values, max_size=6) | values
)
ccd_workflows = st.fixed_dictionaries(
    {"jobs": jobs},
    optional={
        "name": names,
        "concurrency": scalars,
        "defaults": st.dictionaries(st.sampled_from(JOB_KEYS), values, max_size=4) | values,
    },
)
cloudmesh_workflows = st.fixed_dictionaries(
    {
        "workflow": st.fixed_dictionaries(
            {
                "nodes": st.dictionaries(
                    names, st.dictionaries(st.sampled_from(CLOUDMESH_KEYS), values) | values
                )
            },
            optional={
                "dependencies": st.lists(
                    st.lists(names, max_size=4).map(",".join) | scalars, max_size=4
                )
                | values
            },
        )
    }
)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(base: Path, raw: bytes) -> None:
    check(raw, base)


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                *WORDS,
                ":",
                ": ",
                "- ",
                "\n",
                "\n  ",
                "\n    ",
                "\t",
                " ",
                "[",
                "]",
                "{",
                "}",
                ",",
                "&x ",
                "*x",
                "<<: ",
                "!!str ",
                "!!binary ",
                "!!int ",
                "!!bool ",
                "!!timestamp ",
                "!x ",
                "? ",
                "'",
                '"',
                "\\",
                "#",
                "---\n",
                "|\n",
                "%YAML 1.1\n",
                "\x00",
                "\x85",
                "\ufeff",
            ]
        ),
        max_size=60,
    ).map("".join)
)
def test_random_yamlish_text(base: Path, text: str) -> None:
    check(text, base)


@FUZZ
@given(data)
def test_random_data(base: Path, value: Any) -> None:
    check(yaml.safe_dump(value), base)


@FUZZ
@given(ccd_workflows)
def test_random_ccd_workflows(base: Path, value: Any) -> None:
    check(yaml.safe_dump(value, sort_keys=False), base)


@FUZZ
@given(cloudmesh_workflows)
def test_random_cloudmesh_workflows(base: Path, value: Any) -> None:
    check(yaml.safe_dump(value, sort_keys=False), base)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=200),
        st.tuples(
            st.sampled_from(["", "  ", "\t"]),
            st.sampled_from(["::ccd", "::ccd ", "::ccd output ", "# cloudmesh ", "#", ":"]),
            st.text(max_size=100),
            st.sampled_from(["", "\n", "\r\n"]),
        ).map("".join),
        st.lists(
            st.sampled_from(["progress=", "msg=", "status=", '"', "\\", " ", "50", "x=", "k"]),
            max_size=12,
        ).map(lambda parts: "::ccd " + "".join(parts)),
    )
)
def test_random_marker_lines(line: str) -> None:
    marker = parse_line(line)
    assert marker is None or isinstance(marker, Progress | Output | MarkerWarning)
    if isinstance(marker, Progress) and marker.value is not None:
        assert 0 <= marker.value <= 100


@FUZZ
@given(st.text(max_size=30), st.text(max_size=20))
def test_random_progress_regex(pattern: str, line: str) -> None:
    try:
        find = compile_progress_regex(pattern)
    except ValueError:
        return
    result = find(line)
    assert result is None or isinstance(result, float)
