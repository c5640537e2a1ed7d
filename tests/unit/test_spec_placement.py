"""Where a job's working directory is, by host and executor."""

from __future__ import annotations

from pathlib import Path

from ccd.spec.model import ExecutorKind
from ccd.spec.validate import load_workflow_text


def test_slurm_on_this_machine_keeps_local_paths(tmp_path: Path) -> None:
    text = (
        "name: w\njobs:\n"
        "  batch: {executor: slurm, run: 'true'}\n"
        "  sub: {executor: slurm, run: 'true', workdir: data}\n"
        "  remote: {host: far, run: 'true', workdir: data}\n"
    )
    wf = load_workflow_text(text, base_dir=tmp_path, known_hosts={"localhost", "far"})
    assert wf.jobs["batch"].executor is ExecutorKind.SLURM
    assert wf.jobs["batch"].workdir == str(tmp_path)
    assert wf.jobs["sub"].workdir == str(tmp_path / "data")
    assert wf.jobs["remote"].workdir == "~/data"  # another host: its home


def test_unknown_resource_is_a_validation_problem(tmp_path: Path) -> None:
    import pytest

    from ccd.errors import SpecError

    text = "name: w\njobs:\n  a:\n    executor: slurm\n    run: 'true'\n    resources: {partiton: gpu}\n"
    with pytest.raises(SpecError) as err:
        load_workflow_text(text, base_dir=tmp_path)
    [problem] = err.value.problems
    assert (problem.line, problem.code) == (6, "unknown-key")
    assert "did you mean 'partition'" in problem.message
