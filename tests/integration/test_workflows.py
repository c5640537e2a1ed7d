"""Real workflows on a real daemon: the engine, local executor and store together.

The engine's own logic (retries, skips, cancel propagation, limits, outputs
between jobs) is tested in process by tests/unit/test_engine.py; these tests
are the ones that need real processes, logs, signals or a daemon restart.
"""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path
from typing import Any

from tests.conftest import DaemonProc, proc_alive


def states(d: DaemonProc, wf: str) -> dict[str, str]:
    return {name: job["state"] for name, job in d.jobs(wf).items()}


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_fan_out_500(daemon: DaemonProc) -> None:
    lines = ["name: fan", "concurrency: 16", "jobs:", "  start: {run: 'true'}"]
    lines += [f"  j{i}: {{needs: [start], run: 'true'}}" for i in range(500)]
    lines += [
        "  end:",
        "    needs: [" + ", ".join(f"j{i}" for i in range(500)) + "]",
        "    run: 'true'",
    ]
    wf = daemon.submit("\n".join(lines) + "\n")
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded"
    assert len(status["jobs"]) == 502
    assert {j["state"] for j in status["jobs"]} == {"succeeded"}


def test_retries_until_success(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: flaky
        jobs:
          flaky:
            run: '[ "$CCD_ATTEMPT" -ge 3 ] || exit 4; echo "attempt $CCD_ATTEMPT"'
            retries: 3
            retry_delay: 0.05
            retry_backoff: 1
    """)
    )
    status = daemon.wait_final(wf)
    job = status["jobs"][0]
    assert (status["state"], job["state"], job["attempt"]) == ("succeeded", "succeeded", 3)
    assert daemon.log_of(wf, "flaky").strip() == "attempt 3"
    assert daemon.log_of(wf, "flaky", attempt=1) == ""
    launches = [
        e
        for e in daemon.events(wf)
        if e["kind"] == "job.state" and e["data"]["state"] == "running" and "handle" in e["data"]
    ]
    assert [e["data"]["attempt"] for e in launches] == [1, 2, 3]


def test_timeout_kills_the_process_group(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: slow
        jobs:
          slow:
            run: "sh -c 'sleep 300' & sleep 300"
            timeout: 1s
    """)
    )
    status = daemon.wait_final(wf)
    job = status["jobs"][0]
    assert job["state"] == "timed_out"
    assert "timed out after 1s" in job["reason"]
    pgid = job["handle"]["pid"]
    assert not group_alive(pgid), "the job's processes outlived its timeout"


def test_cancel_kills_grandchildren_and_cancels_descendants(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    wf = daemon.submit(
        textwrap.dedent(f"""
        name: cancel-me
        jobs:
          long:
            run: |
              sh -c 'echo $$ >> {pids}; exec sleep 300' &
              sh -c 'sh -c "echo \\$\\$ >> {pids}; exec sleep 300"' &
              # say so once both grandchildren wrote their pids: the log then has
              # nothing more to send, and the test reads the pids after it
              until [ "$(wc -l 2>/dev/null < {pids})" = 2 ]; do sleep 0.01; done
              echo started
              wait
          child: {{needs: [long], run: "true"}}
          other: {{run: "sleep 300"}}
    """)
    )
    daemon.wait_for_event(
        wf,
        lambda e: (
            e["kind"] == "job.progress"
            or (e["kind"] == "job.state" and e["job"] == "long" and e["data"]["state"] == "running")
        ),
    )
    # "started" comes once both grandchildren wrote their pids (they run in the job's
    # group); waiting for the pids file after the log's last line could wait for ever
    log_text = ""
    for chunk in daemon.client.stream(f"/v1/workflows/{wf}/jobs/long/log", {"follow": True}):
        log_text += chunk.decode()
        if "started" in log_text:
            break
    grandchildren = [int(p) for p in pids.read_text().split()]
    daemon.client.call("POST", f"/v1/workflows/{wf}/cancel")
    status = daemon.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert status["state"] == "cancelled"
    assert jobs["long"]["state"] == "cancelled"
    assert jobs["child"]["state"] == "cancelled"
    assert jobs["other"]["state"] == "cancelled"
    assert not any(proc_alive(p) for p in grandchildren)


def test_cancel_one_job_lets_the_rest_finish(daemon: DaemonProc) -> None:
    # the engine's side is in test_engine.py; kept for the per-job cancel route
    wf = daemon.submit(
        textwrap.dedent("""
        name: partial
        jobs:
          stuck: {run: "sleep 300"}
          after: {needs: [stuck], run: "true"}
          fine: {run: "true"}
    """)
    )
    daemon.wait_for_event(
        wf,
        lambda e: (
            e["kind"] == "job.state" and e["job"] == "stuck" and e["data"]["state"] == "running"
        ),
    )
    daemon.client.call("POST", f"/v1/workflows/{wf}/jobs/stuck/cancel")
    status = daemon.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert jobs["stuck"]["state"] == "cancelled"
    assert jobs["after"]["state"] == "cancelled"
    assert "'stuck'" in jobs["after"]["reason"]
    assert jobs["fine"]["state"] == "succeeded"
    assert status["state"] == "cancelled"


def test_outputs_reach_children(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: outputs
        jobs:
          train:
            run: |
              echo "::ccd output acc=0.93"
              echo '::ccd output note="semi; colon $(touch /tmp/ccd-pwned)"'
          report:
            needs: [train]
            run: 'echo "acc ${{ jobs.train.outputs.acc }} note ${{ jobs.train.outputs.note }} env $CCD_OUTPUT_TRAIN_ACC"'
    """)
    )
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded", status
    jobs = {j["name"]: j for j in status["jobs"]}
    assert jobs["train"]["outputs"] == {
        "acc": "0.93",
        "note": "semi; colon $(touch /tmp/ccd-pwned)",
    }
    text = daemon.log_of(wf, "report")
    assert text.strip() == "acc 0.93 note semi; colon $(touch /tmp/ccd-pwned) env 0.93"
    assert not Path("/tmp/ccd-pwned").exists()


def test_job_environment_and_workdir(daemon: DaemonProc, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    spec = tmp_path / "wf.yaml"
    spec.write_text(
        textwrap.dedent("""
        name: envs
        jobs:
          e:
            workdir: sub
            env: {GREETING: "hello world"}
            run: 'echo "$CCD_WORKFLOW $CCD_JOB $CCD_ATTEMPT $GREETING $(pwd)"; test -d "$CCD_RUN_DIR"'
    """)
    )
    wf = daemon.submit(spec.read_text(), source=spec)
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded"
    assert daemon.log_of(wf, "e").strip() == f"envs e 1 hello world {tmp_path / 'sub'}"


def test_scripts_run_by_extension(daemon: DaemonProc, tmp_path: Path) -> None:
    (tmp_path / "s.sh").write_text('echo "sh $1"\n')
    (tmp_path / "p.py").write_text("import sys\nprint('py', sys.argv[1])\n")
    spec = tmp_path / "wf.yaml"
    spec.write_text(
        textwrap.dedent("""
        name: scripts
        jobs:
          shell: {script: s.sh, args: [one]}
          python: {script: p.py, args: [two]}
    """)
    )
    wf = daemon.submit(spec.read_text(), source=spec)
    assert daemon.wait_final(wf)["state"] == "succeeded"
    assert daemon.log_of(wf, "shell").strip() == "sh one"
    assert daemon.log_of(wf, "python").strip() == "py two"


def test_cloudmesh_example_runs(daemon: DaemonProc) -> None:
    spec = Path(__file__).resolve().parents[2] / "configs/examples/cloudmesh/workflow.yaml"
    wf = daemon.submit(spec.read_text(), source=spec)
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded", status
    jobs = {j["name"]: j for j in status["jobs"]}
    assert jobs["compute"]["progress"] == 100
    assert daemon.log_of(wf, "end").strip() == "all done"


def test_quickstart_example(daemon: DaemonProc) -> None:
    spec = Path(__file__).resolve().parents[2] / "configs/examples/quickstart.yaml"
    wf = daemon.submit(spec.read_text(), source=spec)
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded", status
    jobs = {j["name"]: j for j in status["jobs"]}
    assert jobs["prepare"]["progress"] == 100
    assert jobs["train"]["progress"] == 100  # "epoch 5/5" through current/total groups
    assert daemon.log_of(wf, "report").startswith("trained on 50000 rows, accuracy 0.9")


def test_fanout_example(daemon: DaemonProc) -> None:
    spec = Path(__file__).resolve().parents[2] / "configs/examples/fanout.yaml"
    wf = daemon.submit(spec.read_text(), source=spec)
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded", status
    assert daemon.log_of(wf, "summary").startswith("scores: ")


def test_failures_example_shows_every_outcome(daemon: DaemonProc) -> None:
    spec = Path(__file__).resolve().parents[2] / "configs/examples/retry.yaml"
    wf = daemon.submit(spec.read_text(), source=spec)
    jobs: dict[str, Any] = {j["name"]: j for j in daemon.wait_final(wf)["jobs"]}
    assert {n: j["state"] for n, j in jobs.items()} == {
        "flaky": "succeeded",
        "broken": "failed",
        "after-broken": "skipped",
        "independent": "succeeded",
        "slow": "timed_out",
    }
    assert jobs["flaky"]["attempt"] == 2


def test_daemon_restart_adopts_a_running_job(daemon: DaemonProc, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    wf = daemon.submit(
        textwrap.dedent(f"""
        name: survivor
        jobs:
          wait:
            run: 'echo "::ccd progress=50"; while [ ! -e {gate} ]; do sleep 0.05; done; exit 7'
    """)
    )
    daemon.wait_for_event(wf, lambda e: e["kind"] == "job.progress")
    pid = daemon.jobs(wf)["wait"]["handle"]["pid"]
    assert daemon.stop(signal.SIGTERM) == 0
    assert proc_alive(pid), "stopping the daemon must not kill jobs"
    gate.touch()  # the job finishes while no daemon is running
    daemon.start()
    status = daemon.wait_final(wf)
    job = status["jobs"][0]
    assert (job["state"], job["exit_code"], job["attempt"]) == ("failed", 7, 1)
    launches = [
        e
        for e in daemon.events(wf)
        if e["kind"] == "job.state" and e["data"]["state"] == "running" and "handle" in e["data"]
    ]
    assert len(launches) == 1


def test_notebook_without_papermill_fails_with_the_fix(daemon: DaemonProc, tmp_path: Path) -> None:
    (tmp_path / "nb.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    spec = tmp_path / "wf.yaml"
    spec.write_text("name: nb\njobs:\n  notebook: {script: nb.ipynb}\n")
    clean_path = "/usr/bin:/bin"  # papermill must not be found for this test
    wf = daemon.submit(
        spec.read_text().replace(
            "{script: nb.ipynb}", f"{{script: nb.ipynb, env: {{PATH: '{clean_path}'}}}}"
        ),
        source=spec,
    )
    job = daemon.wait_final(wf)["jobs"][0]
    assert (job["state"], job["exit_code"]) == ("failed", 127)
    log = daemon.log_of(wf, "notebook")
    # what the job ran with, and the command that installs papermill for that Python
    assert f"not on this job's PATH ({clean_path})" in log, log
    assert "-m pip install papermill" in log or "and no python3 is on it" in log, log


def test_oversized_output_is_refused_with_advice(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: big
        jobs:
          big:
            run: 'printf "::ccd output blob=%070000d\\n" 0; echo "::ccd output small=1"'
    """)
    )
    status = daemon.wait_final(wf)
    job = status["jobs"][0]
    assert job["state"] == "succeeded"
    assert job["outputs"] == {"small": "1"}
    warnings = [e["data"]["message"] for e in daemon.events(wf) if e["kind"] == "job.warning"]
    assert any("64 KiB" in w and "path" in w for w in warnings), warnings
