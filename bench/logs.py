"""Logs: one job writes 1 GB of output as fast as it can.

While it runs:

* the daemon's RSS is sampled (it must not grow with the log);
* 20 other jobs print stamped progress markers 10 times a second; their
  marker → stored-event latency (p95) is compared with the same jobs in a run
  without the big job (the baseline);
* `ccctl logs -f WF big` (a new process, as a user runs it, writing into a pipe)
  reads the whole log; "keeps up" = it has printed every byte and ended (its
  output closed) within 1 s of the job's end (its exit file's time). The
  daemon records the job's end only after its marker scan has read the whole
  log too; how long after the exit file that was is printed on stderr.

    python bench/logs.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    BenchDaemon,
    Row,
    RssSampler,
    new_scratch,
    percentile,
    print_rows,
    remove_scratch,
    rss_mb,
)
from bench.latency import ticker
from ccd.cli.client import path_of
from ccd.executors.wrapper import EXIT

CONFIG = "hosts:\n  localhost:\n    max_jobs: 100\n"
TICKERS = 20


def workflow(name: str, size: int | None, seconds: int) -> str:
    jobs = [f"  t{i}: {{run: {json.dumps(ticker(seconds * 10, 0.1))}}}" for i in range(TICKERS)]
    if size is not None:
        line = "x" * 99
        big = f"sleep 1; yes {line} | head -c {size}"
        jobs.append(f"  big: {{run: {json.dumps(big)}}}")
    return f"name: {name}\njobs:\n" + "\n".join(jobs) + "\n"


def latencies(daemon: BenchDaemon, wf: str) -> list[float]:
    out = []
    for line in daemon.client.stream_lines(path_of("workflows", wf, "events")):
        event = json.loads(line)
        if event["kind"] == "job.progress" and event["data"].get("message"):
            out.append(event["time"] - float(event["data"]["message"]))
    return out


class LogsFollower:
    """`ccctl logs -f WF big` in a new process; counts bytes, notes when the last one
    arrived and when the output ended (the process closed it)."""

    def __init__(self, daemon: BenchDaemon, wf: str) -> None:
        self.bytes = 0
        self.last = 0.0
        self.ended = 0.0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ccd.cli", "logs", "-f", wf, "big"],
            env=daemon.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := os.read(self.proc.stdout.fileno(), 1 << 20):
            self.bytes += len(chunk)
            self.last = time.time()
        self.ended = time.time()

    def join(self) -> None:
        self._thread.join(120)
        self.proc.wait(10)


def end_recorded(daemon: BenchDaemon, wf: str, job: str) -> float:
    """When the daemon recorded `job`'s end: its final state event (the job row's
    `ended` is the exit file's time)."""
    lines = daemon.client.stream_lines(path_of("workflows", wf, "events"), {})
    events = [json.loads(line) for line in lines if line.strip()]
    return max(
        float(e["time"])
        for e in events
        if e["job"] == job and e["kind"] == "job.state" and e["data"]["state"] == "succeeded"
    )


def exit_time(job: dict[str, Any]) -> float:
    """When the job ended: the wrapper writes its exit file as the job's last act."""
    handle = job["handle"]
    if isinstance(handle, str):
        handle = json.loads(handle)
    return (Path(handle["run_dir"]) / EXIT).stat().st_mtime


def measure(quick: bool) -> list[Row]:
    size = (256 if quick else 1024) * 2**20
    seconds = 8 if quick else 15
    base = new_scratch("ccd-bench-logs-")
    daemon = BenchDaemon(base, CONFIG)
    try:
        # baseline: the tickers alone
        wf, _ = daemon.run(workflow("quiet", None, seconds))
        quiet = percentile(latencies(daemon, wf), 95)
        before = rss_mb(daemon.pid)
        wf, _ = daemon.submit(workflow("flood", size, seconds))
        follower = LogsFollower(daemon, wf)
        with RssSampler(daemon.pid, 0.1) as rss:
            state = daemon.wait(wf)
        follower.join()
        if state != "succeeded":
            raise RuntimeError(f"workflow {wf} ended {state}; see {daemon.log}")
        jobs = daemon.client.call("GET", path_of("workflows", wf))["jobs"]
        big = next(j for j in jobs if j["name"] == "big")
        exited = exit_time(big)
        recorded = end_recorded(daemon, wf, "big") - exited
        flood = percentile(latencies(daemon, wf), 95)
        after = rss_mb(daemon.pid)
    finally:
        daemon.close()
        remove_scratch(base)
    lag = follower.ended - exited
    last_byte = follower.last - exited
    write_s = exited - float(big["started"]) - 1  # its first second is a sleep
    growth = rss.peak - before
    mb = size // 2**20
    print(
        f"# rss before {before:.0f} peak {rss.peak:.0f} after {after:.0f} MB; big wrote {mb} MB "
        f"in {write_s:.1f} s; logs -f got {follower.bytes} bytes, the last {last_byte:.2f} s "
        f"and its end {lag:.2f} s after the job's end; the daemon recorded the end "
        f"{recorded:.2f} s after it",
        file=sys.stderr,
    )
    return [
        Row(
            f"logs: daemon RSS growth while a job writes {mb:,} MB",
            "< 50 MB",
            f"{growth:+.0f} MB (peak {rss.peak:.0f})",
            f"{before:.0f} MB before",
            met=growth < 50,
        ),
        Row(
            f"logs: other jobs' marker latency p95 during the {mb:,} MB flood",
            "< 0.3 s",
            f"{flood:.3f} s",
            f"{quiet:.3f} s (no flood)",
            f"{quiet / flood:.2f}",
            met=flood < 0.3,
        ),
        Row(
            "logs: `ccctl logs -f` of it: its end after the job's end",
            "< 1 s, all bytes",
            f"{lag:.2f} s, {follower.bytes / 2**20:,.0f} MB ({mb / write_s:,.0f} MB/s written)",
            met=lag < 1 and follower.bytes == size,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MB instead of 1 GB")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print_rows(measure(args.quick), args.json)


if __name__ == "__main__":
    main()
