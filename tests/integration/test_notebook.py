"""A notebook job run by papermill: its cells' markers and outputs reach ccd as they
are printed, like any job's, and its executed copy is kept in the run directory."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.conftest import DaemonProc


def notebook(*cells: str) -> str:
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": f"c{i}",
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
                for i, source in enumerate(cells)
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
