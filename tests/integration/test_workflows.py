"""Real workflows on a real daemon: the engine, local executor and store together."""

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


def test_chain_runs_in_order(daemon: DaemonProc, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    wf = daemon.submit(
        textwrap.dedent(f"""
        name: chain
        jobs:
          a: {{run: "echo a >> {ledger}"}}
          b: {{needs: [a], run: "echo b >> {ledger}"}}
          c: {{needs: [b], run: "echo c >> {ledger}"}}
    """)
    )
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded"
    assert ledger.read_text().split() == ["a", "b", "c"]
    assert all(j["exit_code"] == 0 and j["attempt"] == 1 for j in status["jobs"])


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


def test_failure_skips_descendants_and_other_branch_finishes(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: branches
        jobs:
          bad: {run: "echo oops >&2; exit 3"}
          child: {needs: [bad], run: "true"}
          grandchild: {needs: [child], run: "true"}
          good: {run: "sleep 0.2"}
          after-good: {needs: [good], run: "true"}
    """)
    )
    status = daemon.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert status["state"] == "failed"
    assert jobs["bad"]["state"] == "failed"
    assert jobs["bad"]["exit_code"] == 3
    assert jobs["bad"]["reason"] is None  # the exit code says it all
    assert jobs["child"]["state"] == "skipped"
    assert jobs["grandchild"]["state"] == "skipped"
    assert "'bad'" in jobs["grandchild"]["reason"]
    assert jobs["good"]["state"] == "succeeded"
    assert jobs["after-good"]["state"] == "succeeded"
    assert "oops" in daemon.log_of(wf, "bad")


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


def test_retries_exhausted(daemon: DaemonProc) -> None:
    wf = daemon.submit("name: r\njobs:\n  j: {run: 'exit 2', retries: 1, retry_delay: 0.01}\n")
    job = daemon.wait_final(wf)["jobs"][0]
    assert (job["state"], job["attempt"], job["exit_code"]) == ("failed", 2, 2)


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
    # wait until both grandchildren wrote their pids (they run in the job's group)
    log_text = ""
    for chunk in daemon.client.stream(f"/v1/workflows/{wf}/jobs/long/log", {"follow": True}):
        log_text += chunk.decode()
        if "started" in log_text and pids.exists() and len(pids.read_text().split()) == 2:
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


def test_missing_output_fails_the_child_with_a_reason(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: missing
        jobs:
          a: {run: "true"}
          b: {needs: [a], run: 'echo ${{ jobs.a.outputs.nothing }}'}
    """)
    )
    jobs = {j["name"]: j for j in daemon.wait_final(wf)["jobs"]}
    assert jobs["b"]["state"] == "failed"
    assert "set no output 'nothing'" in jobs["b"]["reason"]


def test_outputs_of_any_ancestor_but_no_other_job(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: ancestors
        jobs:
          a: {run: 'echo "::ccd output v=1"'}
          side: {run: 'echo "::ccd output v=2"'}
          b: {needs: [a], run: "true"}
          c: {needs: [b, side], run: 'echo "${{ jobs.a.outputs.v }}"'}
          d: {needs: [c], run: 'echo "${{ jobs.side.outputs.v }}"'}
          e: {needs: [a, side], run: 'echo "${{ jobs.d.outputs.v }}"'}
    """)
    )
    jobs = {j["name"]: j for j in daemon.wait_final(wf)["jobs"]}
    assert jobs["c"]["state"] == "succeeded" and jobs["d"]["state"] == "succeeded"
    assert daemon.log_of(wf, "c").strip() == "1"
    assert daemon.log_of(wf, "d").strip() == "2"
    assert jobs["e"]["state"] == "failed"
    assert "which is not an ancestor of 'e'" in jobs["e"]["reason"]


def test_markers_become_progress_and_warnings(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: markers
        jobs:
          m:
            run: |
              echo "::ccd progress=10 msg=\\"epoch 1/10\\""
              echo "# cloudmesh status=running progress=55 pid=$$"
              echo "::ccd progress=abc"
              echo "plain line"
          r:
            run: 'for i in 1 2 3; do echo "Epoch $i/4"; done'
            progress_regex: 'Epoch (?P<progress>\\d)/4'
    """)
    )
    status = daemon.wait_final(wf)
    assert status["state"] == "succeeded"
    jobs = {j["name"]: j for j in status["jobs"]}
    assert jobs["m"]["progress"] == 55
    assert jobs["r"]["progress"] == 3
    events = daemon.events(wf)
    warnings = [e for e in events if e["kind"] == "job.warning"]
    assert len(warnings) == 1 and "abc" in warnings[0]["data"]["message"]


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


def test_concurrency_limit_is_respected(daemon: DaemonProc) -> None:
    jobs = "\n".join(f"  j{i}: {{run: 'sleep 0.1'}}" for i in range(8))
    wf = daemon.submit(f"name: limited\nconcurrency: 2\njobs:\n{jobs}\n")
    assert daemon.wait_final(wf)["state"] == "succeeded"
    running, peak = 0, 0
    for event in daemon.events(wf):
        if event["kind"] != "job.state":
            continue
        if event["data"]["state"] == "running":
            running += 1
        elif event["data"]["state"] == "succeeded":
            running -= 1
        peak = max(peak, running)
    assert peak == 2


def test_retry_workflow_reruns_only_what_did_not_succeed(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"
    wf = daemon.submit(
        textwrap.dedent(f"""
        name: fixable
        jobs:
          ok: {{run: "echo ok"}}
          needs-flag: {{needs: [ok], run: "test -e {flag}"}}
          after: {{needs: [needs-flag], run: "true"}}
    """)
    )
    assert daemon.wait_final(wf)["state"] == "failed"
    flag.touch()
    result = daemon.client.call("POST", f"/v1/workflows/{wf}/retry")
    assert sorted(result["retried"]) == ["after", "needs-flag"]
    status = daemon.wait_final(wf)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert status["state"] == "succeeded"
    assert jobs["ok"]["attempt"] == 1
    assert jobs["needs-flag"]["attempt"] == 2


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
    assert "pip install papermill" in daemon.log_of(wf, "notebook")


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


def test_retry_on_retries_only_the_listed_failures(daemon: DaemonProc) -> None:
    wf = daemon.submit(
        textwrap.dedent("""
        name: retry-on
        defaults: {retries: 2, retry_delay: 0.01, retry_on: [timeout]}
        jobs:
          exits: {run: 'exit 1'}
          times-out-once:
            run: '[ "$CCD_ATTEMPT" -ge 2 ] || sleep 60; echo ok'
            timeout: 1s
    """)
    )
    jobs = {j["name"]: j for j in daemon.wait_final(wf)["jobs"]}
    assert (jobs["exits"]["state"], jobs["exits"]["attempt"]) == ("failed", 1)
    assert (jobs["times-out-once"]["state"], jobs["times-out-once"]["attempt"]) == ("succeeded", 2)


def test_cancel_a_job_still_waiting_for_its_parents(daemon: DaemonProc) -> None:
    # A waiting job has no task yet: the cancel settles it and its descendants at
    # once, while its parent runs on.
    wf = daemon.submit(
        textwrap.dedent("""
        name: waiting
        jobs:
          stuck: {run: "sleep 300"}
          waiting: {needs: [stuck], run: "true"}
          grandchild: {needs: [waiting], run: "true"}
    """)
    )
    daemon.wait_for_event(
        wf,
        lambda e: (
            e["kind"] == "job.state" and e["job"] == "stuck" and e["data"]["state"] == "running"
        ),
    )
    daemon.client.call("POST", f"/v1/workflows/{wf}/jobs/waiting/cancel")
    daemon.wait_for_event(
        wf,
        lambda e: e["job"] == "grandchild" and e["data"].get("state") == "cancelled",
    )
    jobs = {j["name"]: j for j in daemon.status(wf)["jobs"]}
    assert jobs["stuck"]["state"] == "running"
    assert (jobs["waiting"]["state"], jobs["waiting"]["reason"]) == (
        "cancelled",
        "cancelled by user",
    )
    assert "'waiting'" in jobs["grandchild"]["reason"]
    daemon.client.call("POST", f"/v1/workflows/{wf}/cancel")
    status = daemon.wait_final(wf)
    assert status["state"] == "cancelled"
    assert {j["name"]: j["state"] for j in status["jobs"]}["stuck"] == "cancelled"
