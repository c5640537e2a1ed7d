"""What the benchmarks share: a real daemon in a scratch directory, timed runs, result rows."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ccd.cli.client import Client, path_of  # noqa: E402

#: set by run_all: the benchmarks leave their scratch directories under it, and run_all
#: removes them all once every benchmark ran
SCRATCH_ENV = "CCD_BENCH_SCRATCH"


def new_scratch(prefix: str) -> Path:
    """A new directory for one benchmark's files; `remove_scratch` it at the end."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get(SCRATCH_ENV) or None))


def remove_scratch(base: Path) -> None:
    """Remove a benchmark's scratch directory, unless run_all removes them all later.

    run_all does, once every benchmark ran: on ext4 without a journal the kernel
    steps over every inode freed in the last minutes each time it creates a file,
    so one benchmark's clean-up made the next one's jobs pay up to 1 ms per file
    they create (docs/benchmarks.md, "Session 5")."""
    if not os.environ.get(SCRATCH_ENV):
        shutil.rmtree(base, ignore_errors=True)


#: what `--fallbacks` of a benchmark sets: every platform mechanism's portable one
FALLBACKS = "all"


class BenchDaemon:
    """`ccd run` with its state, socket and config under `base`; `fallbacks`: the
    daemon's CCD_PLATFORM_FALLBACKS (None: the environment's, normally unset)."""

    def __init__(self, base: Path, config: str, fallbacks: str | None = None) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        config_file = base / "ccd.yaml"
        config_file.write_text(config)
        self.env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(base / "rt"),
            "XDG_STATE_HOME": str(base / "state"),
            "XDG_CONFIG_HOME": str(base / "config"),
            "CCD_NO_AUTOSTART": "1",
        }
        if fallbacks is not None:
            self.env["CCD_PLATFORM_FALLBACKS"] = fallbacks
        self.log = base / "daemon.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ccd.daemon.main",
                "run",
                "--config",
                str(config_file),
                "--log-level",
                "warning",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
            cwd=ROOT,
        )
        self.client = Client(base / "rt" / "ccd" / "ccd.sock", timeout=600)
        deadline = time.monotonic() + 60
        while self.client.ping() is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.log.read_text())
            time.sleep(0.01)  # waiting for another process to bind its socket

    @property
    def pid(self) -> int:
        return self.proc.pid

    def submit(self, text: str) -> tuple[str, float]:
        """Submit a workflow; (id, seconds until the daemon accepted it)."""
        start = time.perf_counter()
        wf = str(self.client.call("POST", "/v1/workflows", body=text.encode())["id"])
        return wf, time.perf_counter() - start

    def wait_for(self, wf: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first event of `wf` for which `predicate` holds (following the stream)."""
        for line in self.client.stream_lines(path_of("workflows", wf, "events"), {"follow": True}):
            if line.strip() and predicate(event := json.loads(line)):
                return dict(event)
        raise RuntimeError(f"workflow {wf} ended before the awaited event")

    def status(self, wf: str) -> dict[str, Any]:
        return dict(self.client.call("GET", path_of("workflows", wf)))

    def wait(self, wf: str) -> str:
        """Follow the workflow's event stream to its end; its final state."""
        for _ in self.client.stream_lines(path_of("workflows", wf, "events"), {"follow": True}):
            pass
        return str(self.client.call("GET", path_of("workflows", wf))["state"])

    def run(self, text: str) -> tuple[str, float]:
        """Submit a workflow and follow it to its end; (id, seconds). Raises unless it succeeded."""
        start = time.perf_counter()
        wf, _ = self.submit(text)
        state = self.wait(wf)
        elapsed = time.perf_counter() - start
        if state != "succeeded":
            raise RuntimeError(f"workflow {wf} ended {state}; see {self.log}")
        return wf, elapsed

    def ccctl(self, *args: str) -> tuple[float, subprocess.CompletedProcess[bytes]]:
        """Run `ccctl ARGS` as a new process (what a user's shell does); (seconds, result)."""
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "ccd.cli", *args], env=self.env, cwd=ROOT, capture_output=True
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"ccctl {' '.join(args)}: {done.stderr.decode()}")
        return elapsed, done

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


# -- memory -------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Periodic:
    """Calls `sample()` every `interval` in a thread while used as a context manager;
    a sample that returns False stops it."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> bool:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set() and self.sample():
            self._stop.wait(self._interval)


class RssSampler(Periodic):
    """Samples a process's RSS in a thread; `peak` and `samples` (MiB)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(interval)
        self.pid = pid
        self.samples: list[float] = []

    def sample(self) -> bool:
        try:
            self.samples.append(rss_mb(self.pid))
        except (OSError, KeyError):
            return False  # the process is gone
        return True

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)


# -- statistics ---------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    """The `p`-th percentile (0..100), nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


# -- result rows ----------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the run_all table."""

    measure: str
    target: str
    ccd: str
    baseline: str = ""
    ratio: str = ""
    met: bool | None = None  # None: reported, no target

    @property
    def met_text(self) -> str:
        return "—" if self.met is None else ("yes" if self.met else "NO")


def print_rows(rows: list[Row], as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(r) for r in rows]))
        return
    print(table(rows))


def table(rows: list[Row]) -> str:
    """A Markdown table: readable in a terminal and pasteable into docs/benchmarks.md."""
    head = ("measure", "target", "ccd", "baseline", "ratio", "met")
    cells = [head] + [(r.measure, r.target, r.ccd, r.baseline, r.ratio, r.met_text) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]

    def line(c: tuple[str, ...]) -> str:
        return "| " + " | ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *(line(c) for c in cells[1:])])


def rows_from_json(text: str) -> list[Row]:
    data: list[dict[str, Any]] = json.loads(text)
    return [Row(**d) for d in data]
