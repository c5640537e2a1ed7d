"""A notebook job run by papermill: its cells' markers and outputs reach ccd as they
are printed, like any job's, and its executed copy is kept in the run directory."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.conftest import DaemonProc


def notebook(*cells: str, parameters: str | None = None) -> str:
    """A notebook of code cells; `parameters`: a first cell tagged ``parameters``."""
    tagged = [] if parameters is None else [(parameters, ["parameters"])]
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": f"c{i}",
                    "metadata": {"tags": tags},
                    "outputs": [],
                    "source": source,
                }
                for i, (source, tags) in enumerate([*tagged, *((c, []) for c in cells)])
            ],
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def test_a_notebooks_cells_report_progress_and_outputs(daemon: DaemonProc, tmp_path: Path) -> None:
    (tmp_path / "train.ipynb").write_text(
        notebook(
            "print('::ccd progress=50 msg=\"epoch 1/2\"')",
            "print('::ccd output acc=0.93')",
        )
    )
    spec = tmp_path / "wf.yaml"
    spec.write_text(
        textwrap.dedent("""
        name: nb
        jobs:
          train:
            script: train.ipynb
          report:
            needs: [train]
            run: 'echo "accuracy ${{ jobs.train.outputs.acc }}"'
    """)
    )
    wf = daemon.submit(spec.read_text(), source=spec)
    status = daemon.wait_final(wf)
    jobs = {job["name"]: job for job in status["jobs"]}
    assert status["state"] == "succeeded", jobs
    assert jobs["train"]["outputs"] == {"acc": "0.93"}
    progress = [
        e["data"] for e in daemon.events(wf) if e["kind"] == "job.progress" and e["job"] == "train"
    ]
    assert {"progress": 50.0, "message": "epoch 1/2"} in progress
    assert daemon.log_of(wf, "report") == "accuracy 0.93\n"
    executed = daemon.state_dir / "runs" / status["id"] / "train" / "1" / "output.ipynb"
    assert "::ccd output acc=0.93" in executed.read_text()


def test_params_reach_the_parameters_cell_with_their_types(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    (tmp_path / "train.ipynb").write_text(
        notebook(
            "print(type(epochs).__name__, epochs, type(lr).__name__, lr, name, flags)",
            parameters="epochs = 1\nlr = 0.1\nname = 'x'\nflags = []",
        )
    )
    spec = tmp_path / "wf.yaml"
    spec.write_text(
        textwrap.dedent("""
        name: nb-params
        jobs:
          prep: {run: 'echo "::ccd output n=run \\$1 (a)"'}
          train:
            needs: [prep]
            script: train.ipynb
            params: {epochs: 3, lr: 0.01, name: "${{ jobs.prep.outputs.n }}", flags: [a, b]}
    """)
    )
    wf = daemon.submit(spec.read_text(), source=spec)
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded", daemon.log_of(wf, "train")
    assert "int 3 float 0.01 run $1 (a) ['a', 'b']\n" in daemon.log_of(wf, "train")
    shown = daemon.client.call("GET", f"/v1/workflows/{wf}/jobs/train")
    assert shown["notebook"] == f"{shown['run_dir']}/output.ipynb"
    assert '"epochs = 3' in Path(shown["notebook"]).read_text()  # papermill's injected cell


def test_a_failing_cell_fails_the_job_with_its_error(daemon: DaemonProc, tmp_path: Path) -> None:
    (tmp_path / "bad.ipynb").write_text(
        notebook("print('before')", "raise ValueError('the data is empty')", "print('after')")
    )
    spec = tmp_path / "wf.yaml"
    spec.write_text("name: nb-fail\njobs:\n  bad: {script: bad.ipynb}\n")
    wf = daemon.submit(spec.read_text(), source=spec)
    status = daemon.wait_final(wf)
    [job] = status["jobs"]
    log = daemon.log_of(wf, "bad")
    assert (status["state"], job["state"]) == ("failed", "failed")
    assert "before" in log and "after" not in log
    assert "ValueError: the data is empty" in log
    assert job["reason"].startswith("exit 1: ")
