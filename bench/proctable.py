"""The process table off Linux: psutil against ``ps``, with /proc as the baseline.

What the daemon asks (ccd/platform/procs.py), timed three ways in this process:

* one pid's command line (adopting a running job after a restart, once per job):
  ``/proc/PID/cmdline``; ``psutil.Process(pid).cmdline()``; ``ps -ww -o command= -p PID``;
* every process's command line (finding a wrapper whose pid file is not written
  yet): a scan of /proc; ``psutil.process_iter(["cmdline"])``; ``ps -A -ww -o pid=,pgid=,command=``.

psutil reads /proc on Linux and the kernel's table through sysctl on macOS, both
in-process; ``ps`` is a fork and exec on every platform, which is its cost here.

    python bench/proctable.py [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Row, print_rows


def median_us(call: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def measure() -> list[Row]:
    started = time.perf_counter()
    import psutil

    imported = time.perf_counter() - started
    proc = subprocess.Popen(["sleep", "60"])
    pid = proc.pid

    def procfs_one() -> bytes:
        return Path(f"/proc/{pid}/cmdline").read_bytes()

    def procfs_all() -> None:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):  # exited meanwhile
                    Path(f"/proc/{entry.name}/cmdline").read_bytes()

    def ps(*args: str) -> None:
        subprocess.run(["ps", "-ww", *args], capture_output=True, check=True)

    try:
        count = len(psutil.pids())
        one = {
            "procfs": median_us(procfs_one, 2000),
            "psutil": median_us(lambda: psutil.Process(pid).cmdline(), 2000),
            "ps": median_us(lambda: ps("-o", "command=", "-p", str(pid)), 50),
        }
        every = {
            "procfs": median_us(procfs_all, 50),
            "psutil": median_us(lambda: [p.info for p in psutil.process_iter(["cmdline"])], 50),
            "ps": median_us(lambda: ps("-A", "-o", "pid=,pgid=,command="), 50),
        }
    finally:
        proc.kill()
        proc.wait()
    rows = []
    for label, figures in (("one pid's command line", one), (f"all {count} processes", every)):
        rows.append(
            Row(
                f"process table: {label}, psutil / ps (µs, median)",
                "",
                f"{figures['psutil']:.0f} / {figures['ps']:.0f}",
                f"{figures['procfs']:.0f} (/proc)",
                f"ps {figures['ps'] / figures['psutil']:.1f}× psutil",
            )
        )
    rows.append(Row("process table: import psutil (ms)", "", f"{imported * 1000:.1f}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print_rows(measure(), args.json)


if __name__ == "__main__":
    main()
