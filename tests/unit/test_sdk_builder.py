"""The Python builder: handles, references, the checker's problems at the caller's
line, and the round trip through canonical YAML."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

import ccd
from ccd.errors import CcdError, SpecError
from ccd.sdk.builder import JobHandle, Workflow
from ccd.spec.fields import FIELD_CHECKS
from ccd.spec.validate import load_workflow_file, load_workflow_text

HERE = str(Path(__file__).resolve())


def here() -> int:
    """The caller's line number."""
    return sys._getframe(1).f_lineno


def problems(wf: Workflow, **kwargs: Any) -> list[tuple[str, int, int, str, str]]:
    with pytest.raises(SpecError) as caught:
        wf.validate(known_hosts=("localhost",), **kwargs)
    return [(p.file, p.line, p.column, p.code, p.message) for p in caught.value.problems]


def without_source(dumped: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in dumped.items() if key != "source"}


def test_the_package_exports_the_api_lazily() -> None:
    assert ccd.Workflow is Workflow
    from ccd.sdk.aclient import AsyncClient
    from ccd.sdk.client import Client

    assert ccd.Client is Client and ccd.AsyncClient is AsyncClient
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = ccd.Nope
    assert {"Workflow", "Client", "AsyncClient"} <= set(dir(ccd))


def test_handles_name_parents_and_render_output_references(tmp_path: Path) -> None:
    wf = Workflow("refs", base_dir=tmp_path)
    fetch = wf.job("fetch", run="echo '::ccd output rows=3'")
    sweep = wf.job("sweep", run="echo '::ccd output acc=0.9'", array=[0.1, 0.2], needs=fetch)
    report = wf.job(
        "report",
        needs=[sweep, "fetch"],
        run=f"echo {fetch.outputs['rows']} {sweep[1].outputs['acc']}",
        env={"ALL": sweep.outputs["acc"]},
    )
    assert isinstance(report, JobHandle) and str(report) == "report"
    assert fetch.outputs["rows"] == "${{ jobs.fetch.outputs.rows }}"
    assert sweep[1].outputs["acc"] == "${{ jobs.sweep[1].outputs.acc }}"
    assert wf.to_dict()["jobs"]["report"]["needs"] == ["sweep", "fetch"]
    assert wf.to_dict()["jobs"]["sweep"]["needs"] == "fetch"
    spec = wf.validate(known_hosts=("localhost",))
    assert spec.jobs["report"].needs == ["sweep[0]", "sweep[1]", "fetch"]
    assert spec.jobs["report"].run == (
        "echo ${{ jobs.fetch.outputs.rows }} ${{ jobs.sweep[1].outputs.acc }}"
    )
    assert list(wf.jobs) == ["fetch", "sweep", "report"]
    assert wf.jobs["sweep"] == sweep


def test_python_values_become_what_a_file_holds(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    wf = Workflow("values", defaults={"timeout": timedelta(minutes=5)}, base_dir=tmp_path)
    wf.job("a", script=Path("train.py"), args=["--epochs", 3, True], retry_delay=timedelta(0.5))
    spec = wf.validate(known_hosts=("localhost",))
    job = spec.jobs["a"]
    assert job.script == str(tmp_path / "train.py")
    assert job.args == ["--epochs", "3", "true"]
    assert job.timeout == 300.0 and job.retry_delay == 43200.0
    assert job.workdir == str(tmp_path)


def test_relative_paths_are_read_from_the_building_file_s_directory() -> None:
    wf = Workflow("where")
    assert wf.base_dir == Path(HERE).parent
    assert wf.source == HERE
    wf.job("a", script="no-such-script.py")
    (problem,) = problems(wf)
    assert problem[3] == "script-not-found"
    assert str(Path(HERE).parent / "no-such-script.py") in problem[4]


def test_problems_point_at_the_line_that_added_the_job(tmp_path: Path) -> None:
    wf = Workflow("lines", base_dir=tmp_path)
    wf.job("ok", run="true")
    line = here() + 1
    wf.job("typo", run="true", retrys=2)
    call = here() + 1
    wf.job(
        "orphan",
        run="true",
        needs=["nope"],
    )
    assert problems(wf) == [
        (
            HERE,
            line,
            5,
            "unknown-key",
            "unknown key 'retrys' in job 'typo' (did you mean 'retries'?)",
        ),
        (
            HERE,
            call,
            5,
            "unknown-parent",
            "job 'orphan' needs 'nope', which is not a job in this workflow",
        ),
    ]


def test_workflow_level_problems_point_at_the_constructor(tmp_path: Path) -> None:
    line = here() + 1
    wf = Workflow("bad name!", concurrency=0, base_dir=tmp_path)
    found = problems(wf)
    assert {(p[1], p[3]) for p in found} == {
        (line, "bad-name"),
        (line, "bad-value"),
        (line, "no-jobs"),
    }


def test_a_name_added_twice_is_a_duplicate_at_the_second_line(tmp_path: Path) -> None:
    wf = Workflow("dup", base_dir=tmp_path)
    first = here() + 1
    wf.job("a", run="true")
    second = here() + 1
    wf.job("a", run="false")
    ((file, line, _column, code, message),) = problems(wf)
    assert (file, line, code) == (HERE, second, "duplicate-key")
    assert f"first added at {HERE}:{first}" in message
    assert wf.to_dict()["jobs"]["a"] == {"run": "true"}  # the first one stays


# a value most job keys refuse, each check in its own words (`foreach` takes it)
_ODD: Any = [{"nested": [1]}]


@pytest.mark.parametrize("key", [k for k in FIELD_CHECKS if k not in ("run", "script")])
def test_every_job_key_gets_the_checks_and_messages_of_a_file(key: str, tmp_path: Path) -> None:
    """Whatever keys `ccd.spec.fields` has, the builder passes them to the same check."""
    wf = Workflow("keys", base_dir=tmp_path)
    wf.job("a", run="true", **{key: _ODD})
    mapping = wf.to_dict()
    assert mapping["jobs"]["a"][key] == _ODD
    text = yaml.safe_dump(mapping)
    try:
        from_file = load_workflow_text(text, source="wf.yaml", base_dir=tmp_path)
    except SpecError as refused:
        expected = [(p.code, p.message) for p in refused.problems]
        assert [(p[3], p[4]) for p in problems(wf)] == expected
    else:
        built = wf.validate(known_hosts=("localhost",))
        assert without_source(built.model_dump(mode="json")) == without_source(
            from_file.model_dump(mode="json")
        )


def test_an_unknown_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    wf = Workflow("unknown", base_dir=tmp_path)
    wf.job("a", run="true", progres_regex="x")
    ((*_, code, message),) = problems(wf)
    assert code == "unknown-key"
    assert message == "unknown key 'progres_regex' in job 'a' (did you mean 'progress_regex'?)"


def test_validate_checks_hosts_against_the_daemon_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ccd.yaml"
    config.write_text("hosts:\n  lab: {hostname: lab.example.org}\n")
    monkeypatch.setenv("CCD_CONFIG", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/config aliases
    wf = Workflow("hosts", base_dir=tmp_path)
    wf.job("a", run="true", host="lab")
    assert wf.validate().jobs["a"].executor == "ssh"
    wf.job("b", run="true", host="lba")
    with pytest.raises(CcdError, match=r"unknown host 'lba' \(did you mean 'lab'\?\)"):
        wf.validate()
    assert wf.hosts() == {"lab", "lba"}


def test_to_yaml_and_from_yaml_give_the_same_workflow(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    wf = Workflow(
        "round", concurrency=2, defaults={"retries": 1, "env": {"A": "1"}}, base_dir=tmp_path
    )
    prepare = wf.job("prepare", run="echo one\necho two\n", env={"B": 2})
    sweep = wf.job("sweep", script="train.py", args=["--lr", 0.1], array=3, needs=prepare)
    wf.job("report", needs=sweep, run=f"echo {sweep.outputs['acc']}", timeout="1h30m")
    text = wf.to_yaml(known_hosts=("localhost",))
    assert "array: 3" in text and "sweep[" not in text
    file = tmp_path / "sub" / "exported.yaml"
    file.parent.mkdir()
    file.write_text(text)
    again = Workflow.from_yaml(file)
    assert again.name == "round"
    built = wf.validate(known_hosts=("localhost",)).model_dump(mode="json")
    loaded = again.validate(known_hosts=("localhost",)).model_dump(mode="json")
    assert without_source(loaded) == without_source(built)
    assert loaded["source"] == str(file)
    assert without_source(load_workflow_file(file).model_dump(mode="json")) == without_source(built)
    # canonical: the text of the text is the text
    assert again.to_yaml(known_hosts=("localhost",)) == text


def test_from_yaml_reports_problems_at_the_file_s_lines_and_extends(tmp_path: Path) -> None:
    file = tmp_path / "wf.yaml"
    file.write_text("name: ext\njobs:\n  a:\n    run: 'true'\n    retrys: 1\n")
    wf = Workflow.from_yaml(file)
    line = here() + 1
    wf.job("b", run="true", needs=wf.jobs["a"], timeout="soon")
    found = problems(wf)
    assert [(p[0], p[1], p[3]) for p in found] == [
        (str(file), 5, "unknown-key"),
        (HERE, line, "bad-duration"),
    ]


def test_from_yaml_refuses_what_is_not_a_workflow_at_all(tmp_path: Path) -> None:
    file = tmp_path / "list.yaml"
    file.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="a workflow file is a mapping"):
        Workflow.from_yaml(file)
    dup = tmp_path / "dup.yaml"
    dup.write_text("jobs:\n  a: {run: 'true'}\n  a: {run: 'false'}\n")
    with pytest.raises(SpecError, match=r"dup.yaml:3:3: duplicate key 'a'"):
        Workflow.from_yaml(dup)
    with pytest.raises(CcdError, match="cannot read"):
        Workflow.from_yaml(tmp_path / "missing.yaml")
