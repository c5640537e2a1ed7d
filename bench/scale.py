"""Scale: 1,000 to 100,000-job workflows, fan-out and layered DAG.

For each shape and size, a fresh daemon (so its memory is this workflow's):

* accept: wall time of `POST /v1/workflows` (YAML parse, validation, the
  submitted event committed, the engine started), as `ccctl submit` sees it,
  and the CPU time the daemon spent meanwhile (steadier than wall time when
  other work shares the machine);
* RSS: the daemon's resident memory after accepting, and its peak while running
  (the kernel's high-water mark, VmHWM, which samples cannot miss);
* ms/job: wall time from submit to the end of the event stream, per job
  (trivial `true` jobs, concurrency 16; 100,000 for the layered DAG only),
  against the plain-asyncio baseline of
  bench/throughput.py on the same DAG (in this process); the median of every
  repeat at 1,000 jobs (a run of ~1.5 s), the last repeat's above, for both;
* flatness: ms/job at the largest size run over ms/job at 1,000, for ccd and
  for the baseline; met when ccd's grows at most 1.25× as much as the
  baseline's (both move with the machine's state in the minutes between).

Shapes: fan-out 1 → N-2 → 1; layered: layers 100 wide, each job needing two
jobs of the layer before.

foreach: a job outputs a JSON list of 10,000 items and a ``foreach:`` job fans
out over it at run time: the daemon's CPU for the expansion (its elements then
wait for the workflow's concurrency, so running them is not counted) against the
same workflow with an ``array:`` made at submit, and the peak RSS, under the
same memory rule.

    python bench/scale.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BenchDaemon,
    Row,
    RssSampler,
    new_scratch,
    print_rows,
    remove_scratch,
    rss_mb,
)
from bench.throughput import baseline, ccd_workflow, fan
from ccd.cli.client import path_of

CONCURRENCY = 16
#: workflows up to this size run to the end in every repeat, not only the last:
#: 1,000 jobs run for ~1.5 s, which a second of the machine's noise moves by half
SHORT_RUN = 1_000
WIDTH = 100
CONFIG = "hosts:\n  localhost:\n    max_jobs: 64\n"


def layered(n: int) -> dict[str, list[str]]:
    jobs: dict[str, list[str]] = {}
    for i in range(n):
        layer, k = divmod(i, WIDTH)
        parents = [] if layer == 0 else [f"l{layer - 1}_{k}", f"l{layer - 1}_{(k + 1) % WIDTH}"]
        jobs[f"l{layer}_{k}"] = parents
    return jobs


SHAPES: dict[str, Callable[[int], dict[str, list[str]]]] = {
    "fan-out": lambda n: fan(n - 2),
    "layered": layered,
}


def peak_rss_mb(pid: int) -> float:
    """The most resident memory process `pid` has had (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise KeyError("VmHWM")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds that process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(base: Path, shape: str, size: int, run: bool, repeat: int) -> dict[str, Any]:
    """Best accept of `repeat` fresh daemons (each warmed up by a 10-job workflow),
    every accept and its daemon CPU; the RSS of the last one; with `run`, the last
    workflow runs to its end -- every one of them up to `SHORT_RUN` jobs, and the
    median run time is kept, of ccd and of the baseline alike."""
    jobs = SHAPES[shape](size)
    text = ccd_workflow(f"{shape}-{size}", jobs, CONCURRENCY)
    accepts: list[float] = []
    cpus: list[float] = []
    runs: list[float] = []
    for i in range(repeat):
        daemon = BenchDaemon(base / f"{shape}-{size}-{i}", CONFIG)
        try:
            daemon.run(ccd_workflow("warm-up", SHAPES[shape](10), CONCURRENCY))
            idle = rss_mb(daemon.pid)
            cpu = cpu_s(daemon.pid)
            wf, accept = daemon.submit(text)
            cpus.append(cpu_s(daemon.pid) - cpu)
            accepts.append(accept)
            accepted_rss = peak = rss_mb(daemon.pid)
            if not run or (i < repeat - 1 and size > SHORT_RUN):
                continue
            start = time.perf_counter()
            with RssSampler(daemon.pid, 0.2) as sampler:
                state = daemon.wait(wf)
            runs.append(accept + time.perf_counter() - start)
            # the kernel's high-water mark: samples 0.2 s apart miss short peaks
            # (it covers the daemon's whole life, whose start-up peak is far lower)
            peak = max(peak, sampler.peak, peak_rss_mb(daemon.pid))
            if state != "succeeded":
                raise RuntimeError(f"{shape}-{size} ended {state}; see {daemon.log}")
        finally:
            daemon.close()  # jobs of an unfinished workflow are left to end on their own
    base_runs = [
        asyncio.run(baseline(jobs, CONCURRENCY, base / f"baseline-{shape}-{size}-{i}.db"))
        for i in range(len(runs))
    ]
    return {
        "jobs": len(jobs),
        "accept_s": min(accepts),
        "accept_cpu_s": min(cpus),
        "accepts_s": [round(a, 2) for a in accepts],
        "idle_mb": idle,
        "accepted_mb": accepted_rss,
        "peak_mb": peak,
        "run_s": statistics.median(runs) if runs else None,
        "runs_s": [round(r, 2) for r in runs],
        "baseline_s": statistics.median(base_runs) if base_runs else None,
        "baseline_runs_s": [round(r, 2) for r in base_runs],
    }


FOREACH = """\
name: foreach-{n}
concurrency: 2
jobs:
  hold: {{run: 'while [ ! -f {gate}.2 ]; do sleep 0.05; done'}}
  split:
    run: |
      while [ ! -f {gate}.1 ]; do sleep 0.05; done
      python3 -c 'print("::ccd output grid=" + str(list(range({n}))))'
  each:
    needs: [split]
    {fan}
    run: 'sleep 600'
"""


def settled_cpu(pid: int, interval: float = 0.3, timeout: float = 30.0) -> float:
    """The daemon's CPU time once it stopped growing (the expansion is done)."""
    deadline, last = time.monotonic() + timeout, cpu_s(pid)
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = cpu_s(pid)
        if now - last < 0.01:
            return now
        last = now
    return last


def measure_foreach(base: Path, items: int) -> list[Row]:
    """The daemon CPU and peak RSS of one foreach fanning out over `items` items, and
    the CPU of the same workflow with an ``array:`` of as many elements, made at
    submit, for comparison (in the same run).

    The workflow runs two jobs at once, one of which (`hold`) waits for a file: once
    its parent ends, one element runs and the others wait for the workflow's limit,
    so the CPU from the parent's release to the daemon going quiet is the parent's
    end, the expansion and queueing every element, nothing of running them."""
    spent = {}
    for way in ("foreach: ${{ jobs.split.outputs.grid }}", f"array: {items}"):
        kind = way.split(":")[0]
        spent[kind], peak = _fan_out_cpu(base / f"{kind}-{items}", items, way)
        if kind == "foreach":
            foreach_peak = peak
    return [
        Row(f"foreach {items:,} items: expansion daemon CPU (vs array: made at submit)",
            "< 1 s", f"{spent['foreach']:.2f} s", f"{spent['array']:.2f} s",
            f"{spent['array'] / spent['foreach']:.2f}" if spent["foreach"] else "",
            met=spent["foreach"] < 1.0),
        Row(f"foreach {items:,} items: daemon peak RSS", "< 150 MB", f"{foreach_peak:.0f} MB",
            met=foreach_peak < 150),
    ]  # fmt: skip


def _fan_out_cpu(where: Path, items: int, fan: str) -> tuple[float, float]:
    daemon = BenchDaemon(where, CONFIG)
    gate = where.with_suffix(".gate")
    try:
        daemon.run(ccd_workflow("warm-up", SHAPES["fan-out"](10), CONCURRENCY))
        wf, _ = daemon.submit(FOREACH.format(n=items, gate=gate, fan=fan))
        daemon.wait_for(wf, lambda e: e["kind"] == "job.state" and e["job"] == "split"
                        and e["data"]["state"] == "running")  # fmt: skip
        time.sleep(0.5)  # the submit's own work is done
        with RssSampler(daemon.pid, 0.1) as sampler:
            before = cpu_s(daemon.pid)
            Path(f"{gate}.1").touch()
            daemon.wait_for(wf, lambda e: e["kind"] == "job.state" and e["job"] == "each[0]"
                            and e["data"]["state"] == "running")  # fmt: skip
            spent = settled_cpu(daemon.pid) - before
        peak = max(sampler.peak, peak_rss_mb(daemon.pid))
        made = sum(1 for j in daemon.status(wf)["jobs"] if j["name"].startswith("each["))
        daemon.client.call("POST", path_of("workflows", wf, "cancel"))
        Path(f"{gate}.2").touch()
        daemon.wait(wf)
    finally:
        daemon.close()
    if made != items:
        raise RuntimeError(f"{where.name}: {made} elements, not {items}")
    return spent, peak


def rows_for(results: dict[tuple[str, int], dict[str, Any]]) -> list[Row]:
    rows = []
    for (shape, size), r in results.items():
        accept, limit = r["accept_s"], (1.0 if size <= 10_000 else 10.0)
        assert accept is not None
        shown = f"{accept:.2f} s (daemon CPU {r['accept_cpu_s']:.2f} s)"
        if size >= 10_000:
            rows.append(
                Row(
                    f"scale {shape} {size:,}: validate+accept",
                    f"< {limit:g} s",
                    shown,
                    met=accept < limit,
                )
            )
        else:
            rows.append(Row(f"scale {shape} {size:,}: validate+accept", "", shown))
        mem_limit = 150 if size <= 10_000 else 1024
        peak = r["peak_mb"]
        assert peak is not None
        what = "peak RSS running" if r["run_s"] is not None else "RSS accepted"
        rows.append(
            Row(
                f"scale {shape} {size:,}: daemon {what}",
                f"< {mem_limit} MB" if size >= 10_000 else "",
                f"{peak:.0f} MB",
                met=(peak < mem_limit) if size >= 10_000 else None,
            )
        )
        if r["run_s"] is not None and r["baseline_s"] is not None:
            ms, base_ms = 1000 * r["run_s"] / size, 1000 * r["baseline_s"] / size
            rows.append(
                Row(
                    f"scale {shape} {size:,}: ms/job (run to end)",
                    "flat",
                    f"{ms:.2f}",
                    f"{base_ms:.2f}",
                    f"{base_ms / ms:.2f}",
                )
            )
    # flatness: the largest size's ms/job against the smallest's, per shape, for ccd
    # and for the baseline on the same DAG; ccd's growth is judged against the
    # baseline's, which moves with the machine in the minutes between the two sizes
    for shape in SHAPES:
        runs = sorted(
            (size, r) for (s, size), r in results.items() if s == shape and r["run_s"] is not None
        )
        if len(runs) >= 2:
            (small, rs), (large, rl) = runs[0], runs[-1]
            growth = (rl["run_s"] / large) / (rs["run_s"] / small)
            base_growth = (rl["baseline_s"] / large) / (rs["baseline_s"] / small)
            rows.append(
                Row(
                    f"scale {shape}: ms/job {large:,} vs {small:,}",
                    "≤ 1.25× baseline's",
                    f"{growth:.2f}×",
                    f"{base_growth:.2f}×",
                    f"{base_growth / growth:.2f}",
                    met=growth <= 1.25 * base_growth,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="run jobs only up to 10,000")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES))
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="accepts per size (best kept); runs of the 1,000-job size (median kept)",
    )
    parser.add_argument("--no-run", action="store_true", help="accept only; do not run the jobs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--foreach", type=int, default=10_000, help="items of the foreach case (0: skip it)"
    )
    args = parser.parse_args()
    # the 100,000-job run takes minutes: one shape is enough to show ms/job stays flat
    full = {"fan-out": 10_000, "layered": 100_000}
    base = new_scratch("ccd-bench-scale-")
    results = {}
    try:
        for shape in args.shapes:
            for size in args.sizes:
                limit = 0 if args.no_run else (10_000 if args.quick else full[shape])
                r = measure(base, shape, size, size <= limit, args.repeat)
                results[(shape, size)] = r
                print(f"# {shape} {size}: {r}", file=sys.stderr)
        foreach_rows = measure_foreach(base, args.foreach) if args.foreach else []
    finally:
        remove_scratch(base)
    print_rows(rows_for(results) + foreach_rows, args.json)


if __name__ == "__main__":
    main()
