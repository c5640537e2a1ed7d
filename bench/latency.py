"""Latency: markers to a watcher, `ccctl ls`/`status` wall time, the API under load.

* marker → watcher: 200 local jobs run at once, each printing
  ``::ccd progress=… msg=<time printed>`` once a second (bash's $EPOCHREALTIME,
  no fork); a consumer in this process follows the workflow's event stream, as
  `ccctl watch` does, and notes when each marker arrives: latency = arrival −
  printed (same clock). The first seconds (200 jobs starting) are not counted.
* `ccctl ls` and `ccctl status WF` (a 200-job workflow): wall time of a new
  `python -m ccd.cli` process, as a shell runs it; median of 7. Baseline: the
  interpreter alone (`python -c pass`).
* API under load: 500 jobs running and one job writing 50 MB/s of log lines;
  GET /v1/health, /v1/workflows and /v1/workflows/WF (501 jobs) in turn every
  20 ms for the flood's duration; p95 against the same calls on the idle daemon.

    python bench/latency.py [--quick] [--json] [--fallbacks]

`--fallbacks`: the daemon with every platform mechanism forced to its portable one
(CCD_PLATFORM_FALLBACKS=all), its rows named so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    FALLBACKS,
    BenchDaemon,
    Periodic,
    Row,
    new_scratch,
    percentile,
    print_rows,
    remove_scratch,
)
from ccd.cli.client import path_of

CONFIG = "hosts:\n  localhost:\n    max_jobs: 1000\n"
MARKER_JOBS = 200
WARMUP = 3.0


def ticker(count: int, interval: float) -> str:
    """A job printing `count` progress markers stamped with the time they were printed."""
    return (
        f"bash -c 'for i in $(seq 1 {count}); do "
        f'echo "::ccd progress=$((i * 100 / {count})) msg=$EPOCHREALTIME"; sleep {interval}; done\''
    )


def follow_markers(daemon: BenchDaemon, wf: str, since: float) -> list[float]:
    """Latency of every stamped progress marker printed after `since` (epoch seconds)."""
    latencies = []
    stream = daemon.client.stream_lines(path_of("workflows", wf, "events"), {"follow": True})
    for line in stream:
        now = time.time()
        if not line.strip():
            continue
        event = json.loads(line)
        message = event["data"].get("message") if event["kind"] == "job.progress" else None
        if message:
            printed = float(message)
            if printed >= since:
                latencies.append(now - printed)
    return latencies


def marker_latency(daemon: BenchDaemon, seconds: int) -> tuple[list[float], str]:
    jobs = "\n".join(
        f"  t{i}: {{run: {json.dumps(ticker(seconds, 1))}}}" for i in range(MARKER_JOBS)
    )
    wf, _ = daemon.submit(f"name: markers\njobs:\n{jobs}\n")
    latencies = follow_markers(daemon, wf, time.time() + WARMUP)
    return latencies, wf


def ccctl_times(daemon: BenchDaemon, wf: str, runs: int) -> dict[str, float]:
    def median(*args: str) -> float:
        return statistics.median(daemon.ccctl(*args)[0] for _ in range(runs))

    def bare() -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        return time.perf_counter() - start

    return {
        "python": statistics.median(bare() for _ in range(runs)),
        "ls": median("ls"),
        "status": median("status", wf),
    }


class ApiProbe(Periodic):
    """Calls three API routes in turn every `interval` in a thread; latencies in seconds."""

    def __init__(self, daemon: BenchDaemon, wf: str, interval: float = 0.02) -> None:
        super().__init__(interval)
        self.latencies: list[float] = []
        self._daemon = daemon
        self._paths = ["/v1/health", "/v1/workflows", path_of("workflows", wf)]

    def sample(self) -> bool:
        start = time.perf_counter()
        self._daemon.client.call("GET", self._paths[len(self.latencies) % len(self._paths)])
        self.latencies.append(time.perf_counter() - start)
        return True


FLOOD = (
    "python3 -c 'import sys,time\n"
    'block = ("x" * 99 + "\\n") * 10486\n'
    "end = time.time() + {seconds}; t = time.time()\n"
    "while time.time() < end:\n"
    "    sys.stdout.write(block); sys.stdout.flush(); t += 1 / 50\n"
    "    time.sleep(max(0, t - time.time()))'"
)


def api_under_load(daemon: BenchDaemon, seconds: int) -> tuple[list[float], list[float]]:
    sleepers = "\n".join(f"  s{i}: {{run: 'sleep {seconds + 30}'}}" for i in range(500))
    text = (
        f"name: api-load\njobs:\n{sleepers}\n"
        f"  flood: {{run: {json.dumps(FLOOD.format(seconds=seconds))}}}\n"
    )
    wf, _ = daemon.submit(text)
    with ApiProbe(daemon, wf) as idle:  # jobs not yet started: the daemon is still quiet?
        pass
    # wait until all 501 are running
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        counts = daemon.client.call("GET", path_of("workflows", wf))["jobs"]
        if sum(1 for j in counts if j["state"] == "running") == 501:
            break
        time.sleep(0.2)
    with ApiProbe(daemon, wf) as loaded:
        time.sleep(seconds - 2)
    daemon.client.call("POST", path_of("workflows", wf, "cancel"))
    daemon.wait(wf)
    del idle
    # the same calls with every job ended: the idle baseline
    with ApiProbe(daemon, wf) as quiet:
        time.sleep(3)
    return loaded.latencies, quiet.latencies


def measure(quick: bool, fallbacks: bool = False) -> list[Row]:
    base = new_scratch("ccd-bench-latency-")
    daemon = BenchDaemon(base, CONFIG, FALLBACKS if fallbacks else None)
    rows = []
    try:
        lat, wf = marker_latency(daemon, 8 if quick else 15)
        p50, p95 = percentile(lat, 50), percentile(lat, 95)
        print(
            f"# markers: {len(lat)} p50 {p50:.3f} p95 {p95:.3f} max {max(lat):.3f}", file=sys.stderr
        )
        rows.append(
            Row(
                f"latency: marker → event stream, {MARKER_JOBS} jobs running, p95",
                "< 0.3 s",
                f"{p95:.3f} s (p50 {p50:.3f})",
                met=p95 < 0.3,
            )
        )
        t = ccctl_times(daemon, wf, 5 if quick else 7)
        for name, label in (("ls", "ccctl ls"), ("status", f"ccctl status ({MARKER_JOBS} jobs)")):
            rows.append(
                Row(
                    f"latency: {label}, wall incl. process start (median)",
                    "< 0.3 s",
                    f"{t[name]:.3f} s",
                    f"{t['python']:.3f} s (python -c pass)",
                    met=t[name] < 0.3,
                )
            )
        loaded, quiet = api_under_load(daemon, 10 if quick else 20)
        p95l, p95q = percentile(loaded, 95), percentile(quiet, 95)
        print(
            f"# api: {len(loaded)} calls loaded p95 {p95l:.4f} max {max(loaded):.4f}; "
            f"idle p95 {p95q:.4f}",
            file=sys.stderr,
        )
        rows.append(
            Row(
                "latency: API p95, 500 jobs + one logging 50 MB/s",
                "< 50 ms",
                f"{1000 * p95l:.1f} ms",
                f"{1000 * p95q:.1f} ms (idle)",
                f"{p95q / p95l:.2f}",
                met=p95l < 0.05,
            )
        )
    finally:
        daemon.close()
        remove_scratch(base)
    if fallbacks:
        rows = [dataclasses.replace(r, measure=r.measure + ", fallbacks forced") for r in rows]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--fallbacks", action="store_true", help="the daemon with every platform fallback forced"
    )
    args = parser.parse_args()
    print_rows(measure(args.quick, args.fallbacks), args.json)


if __name__ == "__main__":
    main()
