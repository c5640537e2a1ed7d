"""Throughput of trivial local jobs: ccd's full path against a plain-asyncio baseline.

Both run in one invocation on the same machine:

* baseline: in this process, one coroutine per job awaiting its parents' events, a
  semaphore for concurrency, `sh -c true` per job through asyncio's subprocess API,
  and a `running` and a `done` event per job written to SQLite by one batched writer;
* ccd: a real `ccd run` daemon; the workflow is submitted over its Unix socket and
  timed until its event stream says it is final (wrapper, log file, marker scan,
  event store and API included).

    python bench/throughput.py [--only W2] [--repeat 3] [--fallbacks]

`--fallbacks` runs the daemon with every platform mechanism forced to its portable
one (CCD_PLATFORM_FALLBACKS=all: polled exits, re-read logs, psutil), the paths
macOS and other platforms take.

Prints a table of wall time, jobs/s and the ccd/baseline ratio per workload (best
of each), the spread of the ratios of each pair of runs (a baseline run directly
followed by a ccd run, so both see the same load), and the CPU time per job: the
daemon with its jobs (wrapper processes), the baseline process with its `sh`s.
CPU time moves much less with the load of other processes than wall time does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import FALLBACKS, BenchDaemon, new_scratch, remove_scratch


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    concurrency: int
    #: job name -> parents, in topological order
    build: Callable[[], dict[str, list[str]]]


def chain(n: int) -> dict[str, list[str]]:
    return {f"j{i}": ([f"j{i - 1}"] if i else []) for i in range(n)}


def fan(n: int) -> dict[str, list[str]]:
    jobs: dict[str, list[str]] = {"start": []}
    jobs.update({f"j{i}": ["start"] for i in range(n)})
    jobs["end"] = [f"j{i}" for i in range(n)]
    return jobs


def independent(n: int) -> dict[str, list[str]]:
    return {f"j{i}": [] for i in range(n)}


WORKLOADS = [
    Workload("W1", "chain of 100", 1, lambda: chain(100)),
    Workload("W2", "fan-out 1→500→1, concurrency 8", 8, lambda: fan(500)),
    Workload("W3", "2,000 independent, concurrency 16", 16, lambda: independent(2000)),
]


# -- baseline -----------------------------------------------------------------------------
async def baseline(jobs: dict[str, list[str]], concurrency: int, db_path: Path) -> float:
    db = sqlite3.connect(db_path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, job TEXT, kind TEXT, t REAL)")
    queue: asyncio.Queue[tuple[str, str, float] | None] = asyncio.Queue()

    async def writer() -> None:
        while True:
            first = await queue.get()
            batch = [first]
            while not queue.empty():
                batch.append(queue.get_nowait())
            rows = [b for b in batch if b is not None]
            await asyncio.to_thread(_write, db, rows)
            if None in batch:
                return

    done = {name: asyncio.Event() for name in jobs}
    sem = asyncio.Semaphore(concurrency)

    async def job(name: str) -> None:
        for parent in jobs[name]:
            await done[parent].wait()
        async with sem:
            queue.put_nowait((name, "running", time.time()))
            proc = await asyncio.create_subprocess_exec("sh", "-c", "true")
            await proc.wait()
            queue.put_nowait((name, "done", time.time()))
        done[name].set()

    start = time.perf_counter()
    write_task = asyncio.create_task(writer())
    await asyncio.gather(*(job(n) for n in jobs))
    queue.put_nowait(None)
    await write_task
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


def _write(db: sqlite3.Connection, rows: list[tuple[str, str, float]]) -> None:
    with db:
        db.executemany("INSERT INTO events (job, kind, t) VALUES (?, ?, ?)", rows)


# -- ccd ----------------------------------------------------------------------------------
def ccd_workflow(name: str, jobs: dict[str, list[str]], concurrency: int) -> str:
    lines = [f"name: {name}", f"concurrency: {concurrency}", "jobs:"]
    for job, parents in jobs.items():
        needs = f", needs: [{', '.join(parents)}]" if parents else ""
        lines.append(f"  {job}: {{run: 'true'{needs}}}")
    return "\n".join(lines) + "\n"


def process_cpu(pid: int) -> float:
    """CPU seconds of process `pid` and of its children that it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process and of its waited-for children."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def measure(w: Workload, daemon: BenchDaemon, base: Path, repeat: int) -> dict[str, Any]:
    """`repeat` pairs of runs: the baseline, then ccd right after it."""
    jobs = w.build()
    base_s: list[float] = []
    ccd_s: list[float] = []
    base_cpu: list[float] = []
    ccd_cpu: list[float] = []
    for i in range(repeat):
        cpu = own_cpu()
        db = base / f"baseline-{w.name}-{i}.db"
        base_s.append(asyncio.run(baseline(jobs, w.concurrency, db)))
        base_cpu.append(own_cpu() - cpu)
        cpu = process_cpu(daemon.pid)
        ccd_s.append(daemon.run(ccd_workflow(f"{w.name}-{i}", jobs, w.concurrency))[1])
        ccd_cpu.append(process_cpu(daemon.pid) - cpu)
    pairs = [b / c for b, c in zip(base_s, ccd_s, strict=True)]
    n = len(jobs)
    return {
        "workload": w.name,
        "description": w.description,
        "jobs": n,
        "baseline_s": min(base_s),
        "ccd_s": min(ccd_s),
        "baseline_jobs_s": n / min(base_s),
        "ccd_jobs_s": n / min(ccd_s),
        "ratio": min(base_s) / min(ccd_s),
        "pair_ratio_min": min(pairs),
        "pair_ratio_max": max(pairs),
        "baseline_cpu_ms_per_job": statistics.median(base_cpu) / n * 1000,
        "ccd_cpu_ms_per_job": statistics.median(ccd_cpu) / n * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="run only these workloads (W1, W2, W3)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per workload; best is kept")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--fallbacks", action="store_true", help="the daemon with every platform fallback forced"
    )
    args = parser.parse_args()
    chosen = [w for w in WORKLOADS if not args.only or w.name in args.only]
    base = new_scratch("ccd-bench-")
    fallbacks = FALLBACKS if args.fallbacks else None
    daemon = BenchDaemon(base, "hosts:\n  localhost:\n    max_jobs: 64\n", fallbacks)
    try:
        rows = [measure(w, daemon, base, args.repeat) for w in chosen]
        if args.fallbacks:
            for row in rows:
                row["description"] += ", fallbacks forced"
    finally:
        daemon.close()
        remove_scratch(base)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'workload':<42} {'jobs':>5} {'baseline s':>10} {'jobs/s':>8} {'ccd s':>8} "
        f"{'jobs/s':>8} {'ccd/base':>8} {'pairs':>9} {'CPU ms/job base':>15} {'ccd':>5}"
    )
    for r in rows:
        print(
            f"{r['workload'] + ' ' + r['description']:<42} {r['jobs']:>5} "
            f"{r['baseline_s']:>10.2f} {r['baseline_jobs_s']:>8.0f} {r['ccd_s']:>8.2f} "
            f"{r['ccd_jobs_s']:>8.0f} {r['ratio']:>8.2f} "
            f"{r['pair_ratio_min']:>4.2f}-{r['pair_ratio_max']:<4.2f} "
            f"{r['baseline_cpu_ms_per_job']:>15.2f} {r['ccd_cpu_ms_per_job']:>5.2f}"
        )


if __name__ == "__main__":
    main()
