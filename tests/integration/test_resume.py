"""--resume through a real daemon: unchanged jobs reuse their earlier runs, a changed
one reruns with everything after it (a ledger counts every real run), `ccctl why`
says which, and gc keeps the runs that newer workflows reuse."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from tests.conftest import DaemonProc
from tests.integration.test_unknown import ccctl


def _chain(tmp_path: Path) -> tuple[Path, Path]:
    """A 4-job chain a -> b -> c -> d, each a script appending its name to a ledger
    and giving an output its child prints."""
    ledger = tmp_path / "ledger"
    for name in "abcd":
        (tmp_path / f"{name}.sh").write_text(
            f'echo {name} >> {ledger}\necho "from parent: $1"\necho "::ccd output n={name}1"\n'
        )
    jobs = []
    parent = None
    for name in "abcd":
        args = f", args: ['${{{{ jobs.{parent}.outputs.n }}}}']" if parent else ""
        needs = f", needs: [{parent}]" if parent else ""
        jobs.append(f"  {name}: {{script: {name}.sh{args}{needs}}}")
        parent = name
    wf = tmp_path / "chain.yaml"
    wf.write_text("name: chain\njobs:\n" + "\n".join(jobs) + "\n")
    return wf, ledger


def _submit(daemon: DaemonProc, wf: Path, *args: str) -> str:
    done = ccctl(daemon, "submit", str(wf), "--json", *args)
    assert done.returncode == 0, done.stderr
    workflow_id = str(json.loads(done.stdout)["id"])
    assert daemon.wait_final(workflow_id)["state"] == "succeeded"
    return workflow_id


def _why(daemon: DaemonProc, wf: str, job: str) -> dict[str, Any]:
    done = ccctl(daemon, "why", wf, job, "--json")
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_resume_reruns_exactly_what_changed(daemon: DaemonProc, tmp_path: Path) -> None:
    wf, ledger = _chain(tmp_path)
    first = _submit(daemon, wf)
    assert ledger.read_text().split() == ["a", "b", "c", "d"]

    # nothing changed: nothing runs, every job has its earlier outputs and log
    second = _submit(daemon, wf, "--resume")
    assert ledger.read_text().split() == ["a", "b", "c", "d"]
    jobs = daemon.jobs(second)
    assert all(j["state"] == "succeeded" for j in jobs.values())
    assert jobs["c"]["reason"].startswith(f"cached from {first} (c attempt 1)")
    assert jobs["c"]["outputs"] == {"n": "c1"}
    assert "from parent: b1" in daemon.log_of(second, "c")
    why_c = _why(daemon, second, "c")
    assert why_c["decision"] == "reused"
    assert why_c["origin"] == {"workflow_id": first, "job": "c", "attempt": 1}

    # one script edited: it and what comes after it run, the rest is reused
    (tmp_path / "b.sh").write_text((tmp_path / "b.sh").read_text() + "echo edited\n")
    third = _submit(daemon, wf, "--resume")
    assert ledger.read_text().split() == ["a", "b", "c", "d", "b", "c", "d"]
    states = {name: j["reason"] or "" for name, j in daemon.jobs(third).items()}
    assert states["a"].startswith("cached from")
    assert not any(states[name].startswith("cached") for name in "bcd")
    why_b = _why(daemon, third, "b")
    assert why_b["decision"] == "ran"
    assert why_b["changes"] == ["script changed"]
    assert why_b["compared_with"]["workflow_id"] == first
    # c's own files did not change: only its parent did
    assert _why(daemon, third, "c")["changes"] == ["parent b changed"]
    text = ccctl(daemon, "why", third, "b")
    assert text.returncode == 0 and "since the run in workflow" in text.stdout
    assert "- script changed" in text.stdout

    # without --resume everything runs, and why says so
    fourth = _submit(daemon, wf)
    assert ledger.read_text().split().count("a") == 2
    assert "not submitted with --resume" in _why(daemon, fourth, "a")["summary"]


def test_inputs_by_content_or_by_mtime(daemon: DaemonProc, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("1,2,3\n")
    ledger = tmp_path / "ledger"
    wf = tmp_path / "inputs.yaml"
    wf.write_text(
        "name: inputs\nresume: true\njobs:\n"
        f"  bytes: {{run: 'echo bytes >> {ledger}', inputs: [data.csv]}}\n"
        f"  times: {{run: 'echo times >> {ledger}', inputs: [data.csv], cache: mtime}}\n"
    )
    _submit(daemon, wf)
    _submit(daemon, wf)
    assert sorted(ledger.read_text().split()) == ["bytes", "times"]
    # touched, same bytes: only the job keyed by modification time runs again
    stat = data.stat()
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    touched = _submit(daemon, wf)
    assert sorted(ledger.read_text().split()) == ["bytes", "times", "times"]
    assert _why(daemon, touched, "times")["changes"] == [
        f"input {data} changed (size or modification time)"
    ]
    # new bytes: both run
    data.write_text("4,5,6\n")
    _submit(daemon, wf)
    assert sorted(ledger.read_text().split()) == ["bytes", "bytes", "times", "times", "times"]


def test_a_deleted_output_file_makes_the_job_run(daemon: DaemonProc, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    ledger = tmp_path / "ledger"
    wf = tmp_path / "train.yaml"
    wf.write_text(
        "name: train\njobs:\n"
        f"  train: {{run: 'echo run >> {ledger}; echo weights > model.bin', "
        "outputs_files: [model.bin]}\n"
        "  always: {run: 'echo always >> " + str(ledger) + "', cache: false}\n"
    )
    _submit(daemon, wf)
    _submit(daemon, wf, "--resume")
    assert sorted(ledger.read_text().split()) == ["always", "always", "run"]
    model.unlink()
    again = _submit(daemon, wf, "--resume")
    assert sorted(ledger.read_text().split()) == ["always", "always", "always", "run", "run"]
    assert model.exists()
    why = _why(daemon, again, "train")
    assert why["decision"] == "ran" and f"output file {model}" in why["summary"]
    assert _why(daemon, again, "always")["summary"] == "cache: false: this job always runs"


def test_params_are_part_of_the_key(daemon: DaemonProc, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    wf = tmp_path / "sweep.yaml"
    wf.write_text(
        "name: sweep\nparams: {epochs: 3}\njobs:\n"
        f"  fit: {{run: 'echo ${{{{ params.epochs }}}} >> {ledger}'}}\n"
    )
    _submit(daemon, wf)
    _submit(daemon, wf, "--resume")
    changed = _submit(daemon, wf, "--resume", "--set", "epochs=5")
    assert ledger.read_text().split() == ["3", "5"]
    assert _why(daemon, changed, "fit")["changes"] == ["param epochs changed: 3 -> 5"]


def test_gc_keeps_the_runs_newer_workflows_reuse(daemon: DaemonProc, tmp_path: Path) -> None:
    wf, _ = _chain(tmp_path)
    flag = tmp_path / "flag"
    flag.touch()
    # e waits for the flag, and always runs: the reusing workflow is still running
    wait = f"while [ ! -e {flag} ]; do sleep 0.05; done"
    wf.write_text(wf.read_text() + f"  e: {{needs: [d], cache: false, run: '{wait}'}}\n")
    first = _submit(daemon, wf)
    flag.unlink()
    done = ccctl(daemon, "submit", str(wf), "--json", "--resume")
    second = json.loads(done.stdout)["id"]
    daemon.wait_for_event(second, lambda e: e["job"] == "e" and e["data"].get("state") == "running")
    body = json.dumps({"older_than": "0s", "dry_run": True}).encode()
    plan = daemon.client.call(
        "POST", "/v1/gc", body=body, headers={"Content-Type": "application/json"}
    )
    assert [w["id"] for w in plan["workflows"]] == []
    assert [k["id"] for k in plan["kept"]] == [first]
    assert sorted(plan["kept"][0]["reused_by"]) == [f"{second}/{job}" for job in "abcd"]
    text = ccctl(daemon, "gc", "--older-than", "0s")
    assert text.returncode == 0, text.stderr
    assert f"kept {first}" in text.stdout and "its runs are reused by" in text.stdout
    assert "from parent: b1" in daemon.log_of(second, "c")  # the first's log, still there
    # once nothing that stays reuses it, it goes with the workflow that did
    flag.touch()
    assert daemon.wait_final(second)["state"] == "succeeded"
    final = ccctl(daemon, "gc", "--older-than", "0s", "--json")
    assert sorted(w["id"] for w in json.loads(final.stdout)["workflows"]) == sorted([first, second])


def test_keys_survive_a_daemon_crash(daemon: DaemonProc, tmp_path: Path) -> None:
    """A job adopted by a new daemon succeeds with the key its launch recorded, and its
    children's keys hold it: a resume after the crash reuses every job."""
    ledger, gate = tmp_path / "ledger", tmp_path / "gate"
    wait = f"echo $CCD_JOB >> {ledger}; while [ ! -e {gate} ]; do sleep 0.05; done"
    wf = tmp_path / "crash.yaml"
    wf.write_text(
        f"name: crash\njobs:\n  a: {{run: 'echo a >> {ledger}'}}\n"
        f"  b: {{needs: [a], run: '{wait}'}}\n  c: {{needs: [b], run: 'echo c >> {ledger}'}}\n"
    )
    done = ccctl(daemon, "submit", str(wf), "--json")
    first = json.loads(done.stdout)["id"]
    daemon.wait_for_event(first, lambda e: e["job"] == "b" and e["data"].get("state") == "running")
    daemon.stop(signal.SIGKILL)
    daemon.start()
    gate.touch()
    status = daemon.wait_final(first)
    assert status["state"] == "succeeded", [(j["name"], j["reason"]) for j in status["jobs"]]
    assert ledger.read_text().split() == ["a", "b", "c"]
    second = _submit(daemon, wf, "--resume")
    assert ledger.read_text().split() == ["a", "b", "c"]
    assert all(_why(daemon, second, job)["decision"] == "reused" for job in "abc")


def test_resume_from_the_python_api(daemon: DaemonProc, tmp_path: Path) -> None:
    from ccd import Client, Workflow

    ledger = tmp_path / "ledger"
    built = Workflow("api-resume", base_dir=tmp_path)
    built.job("one", run=f"echo one >> {ledger}", outputs_files=[str(ledger)])
    client = Client(daemon.socket)
    client.wait(client.submit(built))
    again = client.submit(built, resume=True)
    client.wait(again)
    assert ledger.read_text().split() == ["one"]
    assert daemon.jobs(again.id)["one"]["reason"].startswith("cached from")
    resumed = Workflow("api-resume", base_dir=tmp_path, resume=True)
    resumed.job("one", run=f"echo one >> {ledger}", outputs_files=[str(ledger)])
    client.wait(client.submit(resumed))
    assert ledger.read_text().split() == ["one"]
