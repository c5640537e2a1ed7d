"""Every benchmark of issue #6, one table: measure, target, ccd, baseline, ratio, met.

Each benchmark runs in its own process (`python bench/X.py --json`), one after
the other, so no two compete for the CPUs:

    throughput.py  W1/W2/W3 against the plain-asyncio baseline (best of --repeat)
    scale.py       1k/10k/100k-job workflows: accept time, RSS, ms/job
    latency.py     marker → watcher, `ccctl ls`/`status`, the API under load
    logs.py        a job writing 1 GB
    store.py       events/s through the batched writer
    import_cost.py `import ccd` and the Python API's imports against `python -c pass`
    notify.py      the notifier following the store; workflow end → webhook received
    ssh.py         SSH throughput, marker latency, 1,000 waiting jobs (root: it starts sshd)
    slurm.py       Slurm figures (root: it starts a single-node cluster); prints the
                   same rows with --json. Were it missing, a row would say so
    ui.py          the web dashboard in chromium: a 5,000-job page, repaints while
                   200 jobs report, the daemon's CPU with a page open

The benchmarks keep their files in one scratch directory, removed at the end.
Before the first one, run_all waits (`--settle`, at most 6 minutes) until creating
run directories is quick: right after a large delete it is not (docs/benchmarks.md).

    python bench/run_all.py [--quick] [--only scale latency ...] [--markdown FILE] [--fallbacks]

`--fallbacks` adds throughput and latency rows once more with every platform
mechanism forced to its portable one (CCD_PLATFORM_FALLBACKS=all).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, SCRATCH_ENV, Row, rows_from_json, table

BENCHES = (
    "throughput", "scale", "latency", "logs", "store", "notify", "import_cost", "ssh", "slurm",
    "ui",
)  # fmt: skip
#: the benchmarks `--fallbacks` runs again with the portable mechanisms
FALLBACK_BENCHES = ("throughput", "latency")


def throughput_rows(text: str) -> list[Row]:
    rows = []
    for r in json.loads(text):
        targeted = r["workload"] in ("W2", "W3")
        rows.append(
            Row(
                f"throughput {r['workload']} {r['description']}, jobs/s",
                "≥ 0.6× baseline" if targeted else "",
                f"{r['ccd_jobs_s']:.0f}",
                f"{r['baseline_jobs_s']:.0f}",
                f"{r['ratio']:.2f}",
                met=r["ratio"] >= 0.6 if targeted else None,
            )
        )
    return rows


def command(name: str, quick: bool, repeat: int, fallbacks: bool = False) -> list[str]:
    args = [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--json"]
    if fallbacks:
        args.append("--fallbacks")
    if name == "throughput":
        args += ["--repeat", str(repeat)]
    elif name in ("scale", "latency", "logs", "store", "notify", "ui") and quick:
        args.append("--quick")
    elif name == "ssh" and quick:
        args += ["--repeat", "1", "--idle", "5"]
    elif name == "slurm" and quick:
        args += ["--jobs", "100"]
    if name == "scale":
        args += ["--repeat", "1" if quick else "3"]
    return args


def run(name: str, quick: bool, repeat: int, scratch: Path, fallbacks: bool = False) -> list[Row]:
    script = ROOT / "bench" / f"{name}.py"
    if not script.exists():
        return [Row(f"{name}: bench/{name}.py not written yet — hook only", "", "not run")]
    if name == "ssh" and os.geteuid() != 0:
        return [Row("ssh: needs root (starts sshd)", "", "not run")]
    start = time.monotonic()
    env = {**os.environ, SCRATCH_ENV: str(scratch)}
    done = subprocess.run(
        command(name, quick, repeat, fallbacks), capture_output=True, text=True, cwd=ROOT, env=env
    )
    print(f"# {name}: {time.monotonic() - start:.0f} s", file=sys.stderr)
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-1:])
        return [Row(f"{name}: FAILED", "", tail[:100], met=False)]
    try:
        if name == "throughput":  # its --json is indented over many lines
            return throughput_rows(done.stdout)
        return rows_from_json(done.stdout.strip().splitlines()[-1])
    except (ValueError, TypeError, KeyError) as exc:
        return [Row(f"{name}: output not in the row format ({exc})", "", "not read", met=False)]


#: run directories the disk probe creates
PROBE_JOBS = 1000
#: a probe above this (ms per run directory) means freshly freed inodes slow the disk
SLOW_PROBE_MS = 0.6
#: seconds between probes while waiting for the disk to settle
SETTLE_PAUSE = 20.0


def run_dir_probe(scratch: Path) -> float:
    """Milliseconds per job to create what a run directory holds (two directories,
    four files) where the benchmarks keep their daemons' state.

    The rows that launch many jobs follow this figure more than any change to ccd:
    on the development VM it went from 0.2 to 6 ms with the inodes freed in the
    minutes before (docs/benchmarks.md), so the table prints it from before and
    after the run.  The probe's files stay until the end for the same reason."""
    base = Path(tempfile.mkdtemp(prefix="probe-", dir=scratch))
    start = time.perf_counter()
    for i in range(PROBE_JOBS):
        attempt = base / "wf" / f"j{i}" / "1"
        attempt.mkdir(parents=True)
        for name in ("wrapper.sh", "log", "pid", "exit"):
            (attempt / name).write_bytes(b"")
    return (time.perf_counter() - start) / PROBE_JOBS * 1000


def wait_for_quiet_disk(scratch: Path, patience: float) -> float:
    """Probe until creating run directories is cheap again, for at most `patience`
    seconds; the last probe's figure.

    Inodes freed in the minutes before (a test suite's or an earlier benchmark's
    clean-up) make every file created meanwhile slow on this VM's ext4, whatever
    creates it; the probe's own files stay, so probing does not prolong that."""
    deadline = time.monotonic() + patience
    while True:
        probe = run_dir_probe(scratch)
        if probe <= SLOW_PROBE_MS or time.monotonic() >= deadline:
            break
        print(
            f"# the disk creates files slowly ({probe:.2f} ms per run directory):"
            f" waiting for it to settle, at most {deadline - time.monotonic():.0f} s more",
            file=sys.stderr,
        )
        time.sleep(SETTLE_PAUSE)
    if probe > SLOW_PROBE_MS:
        print("# still slow: the rows that launch many jobs will show it", file=sys.stderr)
    return probe


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} × {cpu}, {mem:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    parser.add_argument("--only", nargs="*", choices=BENCHES, help="run only these")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs (best kept)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--fallbacks",
        action="store_true",
        help="also throughput and latency with every platform fallback forced",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=360.0,
        help="seconds to wait at most for the disk to create files quickly (0: do not wait)",
    )
    args = parser.parse_args()
    rows: list[Row] = []
    # every benchmark's files stay here until all ran (see bench.common.remove_scratch)
    scratch = Path(tempfile.mkdtemp(prefix="ccd-bench-all-"))
    try:
        probe_before = wait_for_quiet_disk(scratch, args.settle)
        for name in args.only or BENCHES:
            rows += run(name, args.quick, args.repeat, scratch)
        for name in FALLBACK_BENCHES if args.fallbacks else ():
            rows += run(name, args.quick, args.repeat, scratch, fallbacks=True)
        probe_after = run_dir_probe(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    probe = f"run-directory probe {probe_before:.2f} ms/job before, {probe_after:.2f} after"
    stamp = time.strftime("%Y-%m-%d %H:%M")
    quick = ", --quick" if args.quick else ""
    text = f"{stamp}, {machine()}{quick}; {probe}\n\n{table(rows)}\n"
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text)
    missed = [r.measure for r in rows if r.met is False]
    print(f"{len(missed)} target(s) not met" + (": " + "; ".join(missed) if missed else ""))


if __name__ == "__main__":
    main()
