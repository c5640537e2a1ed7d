"""Validation of a job's environment declaration: keys, types, and local paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ccd.spec.validate import load_workflow_text
from tests.unit.test_spec_validate import load, problems


@pytest.fixture
def base(tmp_path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "v")], check=True)
    (tmp_path / "plain").mkdir()
    (tmp_path / "envs" / "ml" / "conda-meta").mkdir(parents=True)
    (tmp_path / "img.sif").write_text("")
    return tmp_path


def test_declarations_are_checked_and_local_paths_made_absolute(base: Path) -> None:
    wf = load(
        "defaults: {venv: v, modules: gcc/12 cuda}\n"
        "jobs:\n"
        '  a: {run: x, conda: envs/ml, container: img.sif, setup: "module purge\\nexport A=1"}\n'
        "  b: {run: x, conda: base, container: 'docker://python:3.11', modules: [mpi]}\n"
        "  r: {run: x, host: cluster, venv: rel/v, conda: ./c, container: /remote.sif}\n",
        base,
    )
    a, b, r = wf.jobs["a"], wf.jobs["b"], wf.jobs["r"]
    assert (a.venv, a.conda, a.container) == (f"{base}/v", f"{base}/envs/ml", f"{base}/img.sif")
    assert (a.modules, a.setup) == (["gcc/12", "cuda"], ["module purge", "export A=1"])
    # a name and an image reference are not paths; the job's modules replace defaults'
    assert (b.conda, b.container, b.modules) == ("base", "docker://python:3.11", ["mpi"])
    # a remote job's paths are its host's: read from the home directory, never checked here
    assert (r.venv, r.conda, r.container) == ("~/rel/v", "~/c", "/remote.sif")


@pytest.mark.parametrize(
    ("body", "column", "message"),
    [
        ("venv: nope", 21, "venv 'nope' not found (looked for {base}/nope)"),
        ("venv: plain", 21, "venv 'plain' is not a virtualenv (looked for {base}/plain)"),
        ("conda: ./plain", 22, "conda './plain' is not a conda environment"),
        ("container: gone.sif", 26, "container 'gone.sif' not found"),
    ],
)
def test_missing_local_paths_are_problems_at_their_value(
    base: Path, body: str, column: int, message: str
) -> None:
    [problem] = problems(f"jobs:\n  a: {{run: x, {body}}}\n", base)
    assert (problem.line, problem.column, problem.code) == (2, column, "env-not-found")
    assert message.format(base=base) in problem.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("modules: [1]", "modules[0] must be one module name (e.g. cuda/12.2), not 1"),
        ("modules: {a: 1}", "modules must be a list of module names"),
        ("setup: [[x]]", "setup[0] must be a shell line"),
        ("venv: ''", "venv is empty"),
        ("contaner: x", "did you mean 'container'"),
    ],
)
def test_bad_declarations_say_what_is_wrong(base: Path, body: str, message: str) -> None:
    [problem] = problems(f"jobs:\n  a: {{run: x, {body}}}\n", base)
    assert message in problem.message


def test_a_relative_venv_without_the_files_path_is_a_problem() -> None:
    with pytest.raises(Exception, match="venv 'v' is relative; the workflow came without"):
        load_workflow_text("jobs:\n  a: {run: x, venv: v}\n", source="<api>", base_dir=None)


def test_params_are_for_notebooks(base: Path) -> None:
    (base / "t.py").write_text("")
    [problem] = problems("jobs:\n  a: {script: t.py, params: {epochs: 3}}\n", base)
    assert (problem.code, problem.line) == ("params-not-notebook", 2)
    assert "use args: for a script" in problem.message
    [bad] = problems("jobs:\n  a: {run: x, params: {not-a-name: 3}}\n", base)
    assert "params name 'not-a-name' is not a Python identifier" in bad.message


def test_a_notebook_in_a_venv_without_papermill_is_told_the_install_command(base: Path) -> None:
    (base / "nb.ipynb").write_text("{}")
    [problem] = problems("jobs:\n  a: {script: nb.ipynb, venv: v}\n", base)
    assert problem.code == "papermill-missing"
    assert f"{base}/v/bin/python -m pip install papermill ipykernel" in problem.message
    # papermill is installed with ccd here (the test extra), so without a venv it is found
    assert load("jobs:\n  a: {script: nb.ipynb}\n", base).jobs["a"].script == f"{base}/nb.ipynb"


def test_without_papermill_the_message_names_this_python_and_the_extra(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # this Python has papermill; pretend it has not (the check looks at PATH and beside
    # sys.executable), which is what a fresh install without the extra looks like
    monkeypatch.setenv("PATH", str(base / "plain"))
    monkeypatch.setattr(sys, "executable", str(base / "plain" / "python3"))
    (base / "nb.ipynb").write_text("{}")
    [problem] = problems("jobs:\n  a: {script: nb.ipynb}\n", base)
    assert problem.code == "papermill-missing"
    assert f"{base}/plain/python3 -m pip install 'ccd-coordinator[notebooks]'" in problem.message
    # a host that declares an environment decides itself: not this process's to say
    wf = load_workflow_text(
        "jobs:\n  a: {script: nb.ipynb}\n", base_dir=base, local_environment=True
    )
    assert wf.jobs["a"].script == f"{base}/nb.ipynb"
