"""Chaos: `kill -9` the daemon again and again while a workflow runs.

Every job appends "<name> <attempt>" to a ledger, so a job that ran twice (or an
attempt that was relaunched) shows up as a repeated or second-attempt line, and a
job that was lost shows up as a missing one.  The kill moments are random (seeded,
so a failure can be replayed) and are counted in events the daemon committed, so
each kill lands somewhere in the middle of real work, never in an idle gap.
"""

from __future__ import annotations

import collections
import json
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from ccd.cli.client import path_of
from tests.conftest import DaemonProc

JOBS = 200
KILLS = 6
SEED = 5


def chaos_workflow(ledger: Path, rng: random.Random, *, dag: bool) -> str:
    """200 jobs that append to the ledger and sleep 0-300 ms (drawn now, from `rng`)."""
    lines = ["name: chaos", "jobs:"]
    for i in range(JOBS):
        name = f"j{i:03d}"
        needs = ""
        if dag and i >= 10:
            parents = sorted(rng.sample(range(i), rng.randint(0, 2)))
            needs = f"needs: [{', '.join(f'j{p:03d}' for p in parents)}], "
        sleep = rng.randint(0, 300) / 1000
        command = f'echo "$CCD_JOB $CCD_ATTEMPT" >> {ledger}; sleep {sleep:.3f}'
        lines.append(f"  {name}: {{{needs}run: '{command}'}}")
    return "\n".join(lines) + "\n"


def wait_events(d: DaemonProc, wf: str, since: int, count: int) -> int:
    """Follow the workflow's committed events after `since` until `count` more arrived.

    Returns the last seq seen; returns early if the workflow ends first.
    """
    stream = d.client.stream_lines(
        path_of("workflows", wf, "events"), {"follow": True, "since": since}
    )
    seen = 0
    try:
        for line in stream:
            if not line.strip():
                continue
            since = int(json.loads(line)["seq"])
            seen += 1
            if seen >= count:
                break
    finally:
        stream.close()  # type: ignore[attr-defined]
    return since


def workflow_state_on_disk(d: DaemonProc, wf: str) -> str:
    """The workflow's committed state, read from the database while no daemon runs."""
    db = sqlite3.connect(f"file:{d.state_dir / 'ccd.db'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT state FROM workflows WHERE id = ?", (wf,)).fetchone()
    finally:
        db.close()
    return str(row[0])


def assert_exactly_once(d: DaemonProc, wf: str, ledger: Path) -> None:
    status = d.wait_final(wf)
    jobs = status["jobs"]
    bad = [
        (j["name"], j["state"], j["attempt"], j["reason"])
        for j in jobs
        if j["state"] != "succeeded"
    ]
    assert status["state"] == "succeeded" and not bad, bad
    assert {j["attempt"] for j in jobs} == {1}
    counts = collections.Counter(ledger.read_text().splitlines())
    expected = {f"j{i:03d} 1" for i in range(JOBS)}
    assert set(counts) == expected, sorted(set(counts) ^ expected)
    assert [line for line, n in counts.items() if n != 1] == []


def test_kill_9_at_random_moments_runs_every_job_exactly_once(
    daemon_factory: Any, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    ledger = tmp_path / "ledger"
    # 8 local slots (the default on this machine): the run takes several seconds
    d: DaemonProc = daemon_factory()
    d.start()
    wf = d.submit(chaos_workflow(ledger, rng, dag=True))
    seq = 0
    for _ in range(KILLS):
        seq = wait_events(d, wf, seq, rng.randint(5, 60))
        time.sleep(rng.uniform(0, 0.05))  # a random moment, not a wait for a state
        d.stop(signal.SIGKILL)
        # the kill landed while the workflow was still running
        assert workflow_state_on_disk(d, wf) == "running"
        d.start()
    assert_exactly_once(d, wf, ledger)


def test_kill_9_during_launch_bursts_runs_every_job_exactly_once(
    daemon_factory: Any, tmp_path: Path
) -> None:
    rng = random.Random(SEED + 1)
    ledger = tmp_path / "ledger"
    # 25 slots: after submit and after each restart, a wave of jobs launches at once
    # (jobs keep running while the daemon is down, so each life starts about one wave)
    d: DaemonProc = daemon_factory("hosts:\n  localhost: {max_jobs: 25}\n")
    d.start()
    wf = d.submit(chaos_workflow(ledger, rng, dag=False))
    # right after submit, then right after each restart (mid-recovery, mid-launch)
    for kill in range(KILLS):
        time.sleep(rng.uniform(0, 0.03))  # a random moment inside the burst
        d.stop(signal.SIGKILL)
        assert workflow_state_on_disk(d, wf) == "running", f"ended before kill {kill + 1}"
        d.start()
    assert_exactly_once(d, wf, ledger)


def test_kill_9_around_a_foreach_expansion_runs_every_element_exactly_once(
    daemon_factory: Any, tmp_path: Path
) -> None:
    rng = random.Random(SEED + 2)
    ledger = tmp_path / "ledger"
    items = 60
    command = f'echo "$CCD_JOB $CCD_ATTEMPT $CCD_ITEM" >> {ledger}; sleep 0.$((CCD_ITEM % 3))'
    spec = (
        "name: chaos-foreach\njobs:\n"
        f"  split: {{run: 'sleep 0.2; echo \"::ccd output grid=[$(seq -s, 0 {items - 1})]\"'}}\n"
        f"  train: {{needs: [split], foreach: '${{{{ jobs.split.outputs.grid }}}}', "
        f"run: '{command}'}}\n"
        f"  report: {{needs: [train], run: 'echo \"report $CCD_ATTEMPT\" >> {ledger}'}}\n"
    )
    d: DaemonProc = daemon_factory("hosts:\n  localhost: {max_jobs: 10}\n")
    d.start()
    wf = d.submit(spec)
    # first the moment the parent's success is committed: the expansion is next
    d.wait_for_event(
        wf,
        lambda e: (
            e["kind"] == "job.state" and e["job"] == "split" and e["data"]["state"] == "succeeded"
        ),
    )
    d.stop(signal.SIGKILL)
    d.start()
    seq = 0
    for _ in range(4):  # then in the middle of the elements
        seq = wait_events(d, wf, seq, rng.randint(10, 40))
        time.sleep(rng.uniform(0, 0.05))
        d.stop(signal.SIGKILL)
        assert workflow_state_on_disk(d, wf) == "running"
        d.start()
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", [j for j in status["jobs"] if j["state"] != "succeeded"]
    assert {j["attempt"] for j in status["jobs"]} == {1}
    counts = collections.Counter(ledger.read_text().splitlines())
    expected = {f"train[{i}] 1 {i}" for i in range(items)} | {"report 1"}
    assert set(counts) == expected, sorted(set(counts) ^ expected)
    assert [line for line, n in counts.items() if n != 1] == []
    added = [e for e in d.events(wf) if e["kind"] == "workflow.jobs_added"]
    assert len(added) == 1 and added[0]["data"]["items"] == [str(i) for i in range(items)]
