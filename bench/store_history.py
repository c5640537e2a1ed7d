"""`ccctl status` on a workflow of 10,000 jobs, with 1,000,000 events in the database.

The history is written through the store's own batched writer (so the tables are
the fold of the log, as in a daemon that ran for months): the 10,000-job workflow
(queued, running with a handle, progress, succeeded for every job) and finished
filler workflows of 100 jobs each, mostly progress events, until the log holds
`--events` events.  Then a real daemon starts on that state directory and
`ccctl status WF` runs as a new process each time, as a user's shell runs it:
the time includes Python's start-up, the request over the Unix socket and the
rendering of 10,000 rows.  Target: < 200 ms.  The baseline row is the start-up
of a bare `python -c pass`, the floor under any ccctl command.

    python bench/store_history.py [--events N] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, BenchDaemon, Row, new_scratch, percentile, print_rows, remove_scratch
from ccd.events import Event, EventKind
from ccd.spec.validate import load_workflow_text
from ccd.store import Store

JOBS = 10_000
FILLER_JOBS = 100
#: events per await: bounds the futures held while the writer catches up
CHUNK = 20_000
TARGET_MS = 200.0


def spec_json(name: str, jobs: int) -> dict[str, object]:
    """A validated workflow of `jobs` independent jobs, as the daemon stores it."""
    text = f"name: {name}\njobs:\n" + "".join(f"  j{i:05d}: {{run: 'true'}}\n" for i in range(jobs))
    spec = load_workflow_text(text.encode(), source="<bench>", base_dir=Path("/"))
    return spec.model_dump(mode="json")


def job_events(wid: str, jobs: int, at: float) -> list[Event]:
    """A finished workflow: every job queued, running (with its handle), 50%, succeeded."""
    out = []
    for i in range(jobs):
        job, run_dir = f"j{i:05d}", f"/state/runs/{wid}/j{i:05d}/1"
        handle = {"executor": "local", "run_dir": run_dir, "pid": 1000 + i}
        out += [
            Event(wid, job, EventKind.JOB_STATE, {"state": "queued", "attempt": 0}, at),
            Event(
                wid,
                job,
                EventKind.JOB_STATE,
                {"state": "running", "attempt": 1, "handle": handle},
                at,
            ),
            Event(wid, job, EventKind.JOB_PROGRESS, {"progress": 50.0, "message": "half"}, at),
            Event(wid, job, EventKind.JOB_STATE, {"state": "succeeded", "exit_code": 0}, at + 1),
        ]
    out.append(Event(wid, None, EventKind.WORKFLOW_STATE, {"state": "succeeded"}, at + 2))
    return out


def filler_events(wid: str, count: int, at: float) -> list[Event]:
    """`count` events of a finished 100-job workflow: progress, then every job done."""
    done = job_events(wid, FILLER_JOBS, at + 3)
    progress = [
        Event(wid, f"j{i % FILLER_JOBS:05d}", EventKind.JOB_PROGRESS, {"progress": i % 100}, at)
        for i in range(max(0, count - len(done)))
    ]
    return progress + done


async def write_history(db: Path, total: int) -> str:
    """The database: the big workflow first, filler until `total` events; the big one's id."""
    store = await Store.open(db)
    try:
        big = secrets.token_hex(4)
        filler_spec = spec_json("filler", FILLER_JOBS)
        at = time.time() - 86400
        batches = [[_submitted(big, spec_json("big", JOBS), at), *job_events(big, JOBS, at)]]
        written = len(batches[0])
        while written < total:
            wid = secrets.token_hex(4)
            count = min(10_000, total - written - 1)
            batch = [_submitted(wid, filler_spec, at), *filler_events(wid, count, at)]
            batches.append(batch)
            written += len(batch)
        for batch in batches:
            for start in range(0, len(batch), CHUNK):
                futures = [store.emit(e) for e in batch[start : start + CHUNK]]
                await futures[-1]
        await store.flush()
        return big
    finally:
        await store.close()


def _submitted(wid: str, spec: dict[str, object], at: float) -> Event:
    data = {"name": spec["name"], "spec": spec, "source": "<bench>"}
    return Event(wid, None, EventKind.WORKFLOW_SUBMITTED, data, at)


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.decode()}")
    return elapsed


def ms_stats(samples: list[float]) -> str:
    ms = [1000 * s for s in samples]
    return f"{percentile(ms, 50):.0f} ms (p90 {percentile(ms, 90):.0f}, max {max(ms):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base = new_scratch("ccd-bench-history-")
    try:
        db = base / "state" / "ccd" / "ccd.db"
        started = time.perf_counter()
        big = asyncio.run(write_history(db, args.events))
        built = time.perf_counter() - started
        with sqlite3.connect(db) as conn:
            events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.close()
        daemon = BenchDaemon(base, "")
        try:
            rows = measure(daemon, big, args.runs)
        finally:
            daemon.close()
        size = sum(os.stat(p).st_size for p in db.parent.glob("ccd.db*"))
        if not args.json:
            print(
                f"history: {events:,} events, {size / 1e6:.0f} MB, written in {built:.0f} s "
                f"through the store; workflow {big} has {JOBS:,} jobs"
            )
        print_rows(rows, args.json)
    finally:
        remove_scratch(base)


def measure(daemon: BenchDaemon, wf: str, runs: int) -> list[Row]:
    ccctl = [sys.executable, "-m", "ccd.cli", "status", wf]
    bare = [sys.executable, "-c", "pass"]
    for argv in (ccctl, [*ccctl, "--json"]):
        timed(argv, daemon.env)  # warm the page cache and the daemon's connections
    human = [timed(ccctl, daemon.env) for _ in range(runs)]
    as_json = [timed([*ccctl, "--json"], daemon.env) for _ in range(runs)]
    start = [timed(bare, daemon.env) for _ in range(runs)]
    api = []
    for _ in range(runs):
        t0 = time.perf_counter()
        daemon.client.call("GET", f"/v1/workflows/{wf}")
        api.append(time.perf_counter() - t0)
    median = percentile(human, 50) * 1000
    return [
        Row(
            "ccctl status WF (10,000 jobs, table)",
            f"< {TARGET_MS:.0f} ms",
            ms_stats(human),
            ms_stats(start),
            met=median < TARGET_MS,
        ),
        Row("ccctl status WF --json", "—", ms_stats(as_json), ms_stats(start)),
        Row("GET /v1/workflows/WF (in-process client)", "—", ms_stats(api)),
    ]


if __name__ == "__main__":
    main()
