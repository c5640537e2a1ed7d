"""Store: events per second sustained through the batched writer (ccd/store/core.py).

A workflow of 1,000 jobs is submitted to a fresh store; then producers emit
progress events (95%) and state events (5%) for random jobs, in bursts of 200
with a yield to the loop between bursts (as many jobs reporting at once do),
until N events are emitted; the clock stops when the last one is committed.
Baseline: the same rows inserted into a bare SQLite table by one batched
writer (plain sqlite3, WAL, same batch sizes, no fold), in the same process.

    python bench/store.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Row, new_scratch, print_rows, remove_scratch
from ccd.events import Event, EventKind
from ccd.store import Store

JOBS = 1000
BURST = 200


def workflow_spec() -> dict[str, object]:
    job = {"run": "true", "needs": [], "host": "localhost", "executor": "local"}
    return {"name": "store", "jobs": {f"j{i}": {"name": f"j{i}", **job} for i in range(JOBS)}}


def events(n: int) -> list[Event]:
    rng = random.Random(1)
    out = []
    for i in range(n):
        job = f"j{rng.randrange(JOBS)}"
        if i % 20 == 0:
            out.append(Event("wf", job, EventKind.JOB_STATE, {"state": "running", "attempt": 1}))
        else:
            data = {"progress": float(i % 100), "message": f"step {i}"}
            out.append(Event("wf", job, EventKind.JOB_PROGRESS, data))
    return out


async def ccd_store(path: Path, batch: list[Event]) -> float:
    store = await Store.open(path)
    spec = workflow_spec()
    await store.record(
        Event("wf", None, EventKind.WORKFLOW_SUBMITTED, {"name": "store", "spec": spec})
    )
    start = time.perf_counter()
    for i in range(0, len(batch), BURST):
        for event in batch[i : i + BURST]:
            store.emit(event)
        await asyncio.sleep(0)
    await store.flush()
    elapsed = time.perf_counter() - start
    await store.close()
    return elapsed


async def baseline(path: Path, batch: list[Event]) -> float:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, job TEXT, kind TEXT, t REAL, data TEXT)"
    )
    queue: asyncio.Queue[tuple[str, str, float, str] | None] = asyncio.Queue()

    def write(rows: list[tuple[str, str, float, str]]) -> None:
        db.execute("BEGIN")
        db.executemany("INSERT INTO events (job, kind, t, data) VALUES (?, ?, ?, ?)", rows)
        db.execute("COMMIT")

    async def writer() -> None:
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            rows = [r for r in items if r is not None]
            if rows:
                await asyncio.to_thread(write, rows)
            if None in items:
                return

    start = time.perf_counter()
    task = asyncio.create_task(writer())
    for i in range(0, len(batch), BURST):
        for e in batch[i : i + BURST]:
            queue.put_nowait((str(e.job), str(e.kind), e.time, json.dumps(e.data)))
        await asyncio.sleep(0)
    queue.put_nowait(None)
    await task
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


def measure(quick: bool, repeat: int) -> list[Row]:
    n = 50_000 if quick else 200_000
    batch = events(n)
    base = new_scratch("ccd-bench-store-")
    try:
        ccd_s = min(asyncio.run(ccd_store(base / f"ccd-{i}.db", batch)) for i in range(repeat))
        base_s = min(asyncio.run(baseline(base / f"base-{i}.db", batch)) for i in range(repeat))
    finally:
        remove_scratch(base)
    rate, base_rate = n / ccd_s, n / base_s
    return [
        Row(
            f"store: events/s through the batched writer ({n:,} events)",
            "≥ 20,000/s",
            f"{rate:,.0f}/s",
            f"{base_rate:,.0f}/s (bare INSERTs)",
            f"{rate / base_rate:.2f}",
            met=rate >= 20_000,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 events instead of 200,000")
    parser.add_argument("--repeat", type=int, default=3, help="runs; best is kept")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print_rows(measure(args.quick, args.repeat), args.json)


if __name__ == "__main__":
    main()
