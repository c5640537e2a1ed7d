"""The demo workflows of configs/examples, run as the README says, through a real
daemon with real papermill and scikit-learn (the test extra installs both)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DaemonProc

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "examples"


def test_the_cloudmesh_smoke_test_runs_a_script_a_python_file_and_a_notebook(
    daemon: DaemonProc,
) -> None:
    spec = EXAMPLES / "cloudmesh-smoke.yaml"
    wf = daemon.submit(spec.read_text(), source=spec)
    status = daemon.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert status["state"] == "succeeded", jobs
    assert [j["name"] for j in status["jobs"]] == ["hello", "compute", "notebook"]
    assert jobs["compute"]["outputs"] == {"total": "332833500"}
    assert jobs["notebook"]["outputs"] == {"notebook": "done"}
    assert "hello from" in daemon.log_of(wf, "hello")


def check_sweep(daemon: DaemonProc, wf: str) -> None:
    status = daemon.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert status["state"] == "succeeded", {n: j["reason"] for n, j in jobs.items()}
    elements = [name for name in jobs if name.startswith("train[")]
    assert len(elements) == 6
    accs = [float(jobs[name]["outputs"]["acc"]) for name in elements]
    assert all(0.8 < acc <= 1.0 for acc in accs), accs
    folds = [
        e["data"]["message"]
        for e in daemon.events(wf)
        if e["kind"] == "job.progress" and e["job"] == "train[0]"
    ]
    assert folds == [f"fold {i}/5" for i in range(1, 6)]
    report = daemon.log_of(wf, "report")
    assert "test accuracy" in report and "plot saved to" in report
    assert jobs["report"]["outputs"]["best"] == f"{max(accs):.4f}"
    shown = daemon.client.call("GET", f"/v1/workflows/{wf}/jobs/report")
    run_dir = Path(shown["run_dir"])
    assert (run_dir / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(Path(shown["notebook"]).read_text())["cells"]


def test_the_digits_sweep_fans_out_trains_and_reports(daemon: DaemonProc) -> None:
    spec = EXAMPLES / "digits-sweep.yaml"
    check_sweep(daemon, daemon.submit(spec.read_text(), source=spec))


def test_the_same_sweep_from_python_submits_and_follows_to_the_end(daemon: DaemonProc) -> None:
    # the script as the README runs it: its Client finds this daemon as ccctl would
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "digits_sweep.py")],
        env={**os.environ, **daemon.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    first, *_, last = result.stdout.splitlines()
    wf = first.split()[-1]
    assert last == f"{wf}: succeeded"
    assert "train fanned out into 6 element(s)" in result.stdout
    check_sweep(daemon, wf)
