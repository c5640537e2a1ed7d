"""`kill -9` of a process in the middle of a burst of 100,000 events.

A child process opens the store and emits the whole burst at once (the batched
writer commits it 5,000 events per transaction), reporting every commit it sees.
The parent kills it at a random point of the burst, three times over on the same
database, and then checks what the issue promises: `PRAGMA integrity_check` is
ok, seqs are 1..n without a gap, no event the child saw committed is missing, and
every workflow and job row equals the fold of its events — refolded both with the
store's own `Fold` and with the test suite's independent reference fold.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ccd.events import Event
from ccd.fold import Fold
from ccd.store.rows import JOB_COLUMNS
from tests.conftest import ROOT
from tests.unit.test_store import assert_is_fold_of_events

BURST = 100_000
ROUNDS = 3
SEED = 5

CHILD = """
import asyncio, logging, sys
from ccd.events import Event, EventKind as K
from ccd.store import Store

JOBS = 50
STATES = ["queued", "running", "unreachable", "running", "failed", "queued", "running",
          "succeeded", "pending", "timed_out", "cancelled", "skipped"]

def spec(wid):
    return {"name": wid, "source": "-", "concurrency": None, "jobs": {
        f"j{i}": {"name": f"j{i}", "needs": [], "host": "h", "executor": "local"}
        for i in range(JOBS)}}

def event(wid, i):
    job, r = f"j{i % JOBS}", i % 11
    if r in (0, 1, 2):
        data = {"state": STATES[(i // JOBS) % len(STATES)], "attempt": i % 4}
        if r == 1:
            data["exit_code"] = i % 3 or None
            data["reason"] = f"r{i}"
        if r == 2:
            data["handle"] = {"executor": "local", "pid": i, "run_dir": f"/runs/{i}"}
        return Event(wid, job, K.JOB_STATE, data)
    if r == 3:
        return Event(wid, job, K.JOB_LAUNCHED, {"attempt": 1, "handle": {"pid": i}})
    if r in (4, 5):
        return Event(wid, job, K.JOB_OUTPUT, {"key": f"k{i % 5}", "value": i})
    if r == 6:
        return Event(wid, job, K.JOB_WARNING, {"message": f"w{i}"})
    if r == 7:
        # rejected by the fold (no such job): must leave no gap in the seqs
        return Event(wid, "nosuchjob", K.JOB_PROGRESS, {"progress": 1})
    if r == 8:
        return Event(wid, None, K.WORKFLOW_STATE, {"state": "running"})
    return Event(wid, job, K.JOB_PROGRESS, {"progress": i % 101, "message": str(i)})

async def report(store):
    seen = store.last_seq
    while True:
        seen = await store.wait_for_seq(seen, timeout=None)
        print(seen, flush=True)

async def main(path, wid, burst):
    logging.disable(logging.CRITICAL)  # the rejected events would each log an error
    store = await Store.open(path)
    print(store.last_seq, flush=True)
    reporter = asyncio.create_task(report(store))
    store.emit(Event(wid, None, K.WORKFLOW_SUBMITTED,
                     {"name": wid, "spec": spec(wid), "source": "-"}))
    futures = [store.emit(event(wid, i)) for i in range(burst)]
    await asyncio.gather(*futures, return_exceptions=True)
    await store.flush()
    print("done", flush=True)
    await reporter

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def run_and_kill(path: Path, wid: str, kill_after: int, delay: float) -> tuple[int, int]:
    """Run the child's burst; SIGKILL it `delay` s after `kill_after` more events committed.

    Returns (seq when the child opened the store, last seq the child saw committed).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), wid, str(BURST)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        start = committed = int(child.stdout.readline())
        for line in child.stdout:
            assert line.strip() != "done", "the burst finished before the kill"
            committed = int(line)
            if committed - start >= kill_after:
                break
        time.sleep(delay)  # a random moment: most likely inside the next batch's commit
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    return start, committed


def assert_rows_are_store_fold(path: Path) -> None:
    """Refold the whole log with the store's own `Fold`; the tables must equal it."""
    fold = Fold({}, {})
    db = sqlite3.connect(path)
    try:
        for _seq, wid, job, at, kind, data in db.execute("SELECT * FROM events ORDER BY seq"):
            fold.apply(Event(wid, job, kind, json.loads(data), time=at))
        jobs = {(row[0], row[1]): row for row in db.execute(f"SELECT {JOB_COLUMNS} FROM jobs")}
        workflows = {
            row[0]: row[1:] for row in db.execute("SELECT id, state, updated, ended FROM workflows")
        }
    finally:
        db.close()
    columns = [c.strip() for c in JOB_COLUMNS.split(",")]
    folded_jobs = {key: tuple(getattr(row, c) for c in columns) for key, row in fold.jobs.items()}
    assert jobs == folded_jobs
    assert workflows == {w.id: (w.state, w.updated, w.ended) for w in fold.workflows.values()}


def test_sigkill_mid_burst_of_100000_events_keeps_the_store_consistent(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    path = tmp_path / "ccd.db"
    for round_ in range(ROUNDS):
        kill_after, delay = rng.randint(1, BURST * 8 // 10), rng.uniform(0, 0.1)
        start, committed = run_and_kill(path, f"w{round_}", kill_after, delay)
        db = sqlite3.connect(path)
        try:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
            last = db.execute("SELECT max(seq) FROM events").fetchone()[0]
        finally:
            db.close()
        # nothing the child saw committed is lost; the burst was really cut short
        assert committed <= last < start + 1 + BURST
        # gap-free 1..n over the whole log, and rows == the reference fold
        events = assert_is_fold_of_events(path)
        assert len(events) == last
        assert_rows_are_store_fold(path)
