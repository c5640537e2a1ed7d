"""What the benchmarks share: a real daemon in a scratch directory, and timed runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ccd.cli.client import Client, path_of  # noqa: E402


class BenchDaemon:
    """`ccd run` with its state, socket and config under `base`."""

    def __init__(self, base: Path, config: str) -> None:
        self.base = base
        config_file = base / "ccd.yaml"
        config_file.write_text(config)
        env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(base / "rt"),
            "XDG_STATE_HOME": str(base / "state"),
            "XDG_CONFIG_HOME": str(base / "config"),
            "CCD_NO_AUTOSTART": "1",
        }
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
            env=env,
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

    def run(self, text: str) -> tuple[str, float]:
        """Submit a workflow and follow it to its end; (id, seconds). Raises unless it succeeded."""
        start = time.perf_counter()
        wf = str(self.client.call("POST", "/v1/workflows", body=text.encode())["id"])
        for _ in self.client.stream_lines(path_of("workflows", wf, "events"), {"follow": True}):
            pass
        elapsed = time.perf_counter() - start
        state = self.client.call("GET", path_of("workflows", wf))["state"]
        if state != "succeeded":
            raise RuntimeError(f"workflow {wf} ended {state}; see {self.log}")
        return wf, elapsed

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
