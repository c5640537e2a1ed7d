"""Slurm executor figures against the real single-node cluster of tests/slurm.py.

* 500 trivial jobs (`true`), three ways: a plain-asyncio baseline in this process
  (`sbatch --wrap true` for each, 16 at a time, then one `squeue` per poll interval
  until all are done), ccd with 500 jobs, and ccd with one `array: 500` job;
* ccd's overhead over Slurm's own scheduling: for each job, the time of ccd's
  `succeeded` event minus the EndTime Slurm recorded (whole seconds, so the mean
  carries ±0.5 s), and the same for the job that ended last;
* squeue calls per minute (counted by wrappers placed before the real commands).

Needs root (it starts munged, slurmctld and slurmd in a slot of /run/ccd-slurm),
like the tests.

    python bench/slurm.py [--jobs 500] [--poll 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BenchDaemon, Row, new_scratch, print_rows, remove_scratch
from ccd.cli.client import path_of
from tests.slurm import CountingBin, SlurmCluster, make_counting_bin, open_cluster

CONCURRENT_SBATCH = 16


async def _run(env: dict[str, str], *argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {err.decode()}")
    return out.decode()


async def baseline(cluster: SlurmCluster, jobs: int, poll: float) -> tuple[float, int]:
    """(seconds for all jobs, squeue calls) with plain asyncio."""
    env = {**os.environ, **cluster.env}
    gate = asyncio.Semaphore(CONCURRENT_SBATCH)
    start = time.perf_counter()

    async def submit() -> str:
        async with gate:
            out = await _run(env, "sbatch", "--parsable", "-o", "/dev/null", "--wrap", "true")
            return out.strip().split(";")[0]

    ids = set(await asyncio.gather(*(submit() for _ in range(jobs))))
    polls = 0
    while True:
        polls += 1
        out = await _run(env, "squeue", "-h", "-t", "all", "--me", "-o", "%i|%T")
        done = {line.split("|")[0] for line in out.splitlines() if line.endswith("|COMPLETED")}
        if ids <= done:
            return time.perf_counter() - start, polls
        await asyncio.sleep(poll)


def end_times(cluster: SlurmCluster, ids: set[str]) -> dict[str, float]:
    """Slurm's EndTime of each job (epoch seconds, whole seconds)."""
    out = cluster.run("squeue", "-h", "-t", "all", "--me", "-o", "%i|%e", check=True).stdout
    ends = {}
    for line in out.splitlines():
        job_id, _, end = line.partition("|")
        if job_id in ids and end not in ("", "N/A"):
            ends[job_id] = datetime.fromisoformat(end).timestamp()
    return ends


def ccd_run(
    daemon: BenchDaemon, cluster: SlurmCluster, calls: CountingBin, text: str
) -> dict[str, float]:
    calls.log_path.write_text("")
    wf, elapsed = daemon.run(text)
    status = daemon.client.call("GET", path_of("workflows", wf))
    handles = {j["name"]: j["handle"]["slurm_id"] for j in status["jobs"]}
    succeeded = {
        e["job"]: float(e["time"])
        for e in (
            json.loads(line)
            for line in daemon.client.stream_lines(path_of("workflows", wf, "events"), {})
            if line.strip()
        )
        if e["kind"] == "job.state" and e["data"]["state"] == "succeeded"
    }
    ends = end_times(cluster, set(handles.values()))
    lags = [succeeded[name] - ends[sid] for name, sid in handles.items() if sid in ends]
    last = max(handles, key=lambda name: ends.get(handles[name], 0))
    squeues = len(calls.calls("squeue"))
    return {
        "seconds": elapsed,
        "mean_lag": statistics.fmean(lags),
        "last_lag": succeeded[last] - ends[handles[last]],
        "squeue_per_min": squeues / (elapsed / 60),
        "sbatch": len(calls.calls("sbatch")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--poll", type=float, default=1.0, help="squeue interval, seconds")
    parser.add_argument("--json", action="store_true", help="print run_all's rows as JSON")
    args = parser.parse_args()
    cluster = open_cluster()
    base = new_scratch("ccd-bench-slurm-")
    bin_dir = base / "bin"
    bin_dir.mkdir()
    calls = make_counting_bin(bin_dir)
    daemon = None
    try:
        base_s, base_polls = asyncio.run(baseline(cluster, args.jobs, args.poll))
        cluster.wait_idle()
        env_path = f"{bin_dir}:{os.environ['PATH']}"
        os.environ["PATH"] = env_path  # the daemon (and its sbatch) find the counters
        os.environ.update(cluster.env)
        daemon = BenchDaemon(
            base / "d", f"hosts:\n  localhost:\n    slurm: {{poll_interval: {args.poll}}}\n"
        )
        jobs = "\n".join(f"  j{i}: {{executor: slurm, run: 'true'}}" for i in range(args.jobs))
        single = ccd_run(daemon, cluster, calls, f"name: slurm-bench\njobs:\n{jobs}\n")
        cluster.wait_idle()
        array = ccd_run(
            daemon,
            cluster,
            calls,
            f"name: slurm-array\njobs:\n  a: {{executor: slurm, run: 'true', "
            f"array: {args.jobs}}}\n",
        )
    finally:
        if daemon is not None:
            daemon.close()
        cluster.shutdown(keep=True)
        remove_scratch(base)
    n = args.jobs
    rows = [
        Row(
            f"slurm: {n} trivial jobs, jobs/s (poll {args.poll:g} s)",
            "",
            f"{n / single['seconds']:.0f}",
            f"{n / base_s:.0f} (sbatch + squeue loop)",
            f"{base_s / single['seconds']:.2f}",
        ),
        Row(
            f"slurm: array of {n}, jobs/s (sbatch calls)",
            "",
            f"{n / array['seconds']:.0f} ({array['sbatch']:.0f})",
            f"{n / single['seconds']:.0f} as {single['sbatch']:.0f} single jobs",
            f"{single['seconds'] / array['seconds']:.2f}",
        ),
        Row(
            "slurm: Slurm EndTime → ccd succeeded, mean / last job",
            f"≤ poll ({args.poll:g} s) + 1",
            f"{single['mean_lag']:.2f} / {single['last_lag']:.2f} s",
            met=single["last_lag"] <= args.poll + 1,
        ),
        Row(
            "slurm: squeue calls per minute",
            f"≤ {60 / args.poll:.0f}",
            f"{single['squeue_per_min']:.0f}",
            f"{base_polls / (base_s / 60):.0f}",
            met=single["squeue_per_min"] <= 60 / args.poll + 1,
        ),
    ]
    print_rows(rows, as_json=args.json)


if __name__ == "__main__":
    main()
