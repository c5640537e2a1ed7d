"""Fixtures shared by every test: an isolated environment and a real daemon."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ccd.cli.client import Client, path_of

if TYPE_CHECKING:
    from tests.netns import NetnsLab

#: real sshd hosts and network-namespace labs, for the SSH tests
pytest_plugins = ["tests.sshd", "tests.netns", "tests.slurm", "tests.slurmdbd"]

ROOT = Path(__file__).resolve().parent.parent
#: how long a test waits for something that should take well under a second
WAIT = 60.0


@pytest.fixture
def ccd_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """XDG dirs and the socket under fresh temporary directories (short socket path)."""
    runtime = Path(tempfile.mkdtemp(prefix="ccd-rt-"))
    env = {
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CCD_NO_AUTOSTART": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CCD_SOCKET", raising=False)
    monkeypatch.delenv("CCD_CONFIG", raising=False)
    yield env
    shutil.rmtree(runtime, ignore_errors=True)


def proc_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its slow reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@dataclass
class DaemonProc:
    """A real `ccd run` process on a temporary socket and state directory."""

    env: dict[str, str]
    socket: Path
    state_dir: Path
    config: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=Path)
    #: a command prefix, e.g. `ip netns exec NS` to run the daemon in a namespace
    wrap: list[str] = field(default_factory=list)
    #: more arguments of `ccd run`
    args: list[str] = field(default_factory=list)

    @property
    def client(self) -> Client:
        return Client(self.socket, timeout=WAIT)

    def start(self) -> None:
        cmd = [*self.wrap, sys.executable, "-m", "ccd.daemon.main", "run", "--log-level", "debug"]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        cmd += self.args
        self.log = self.state_dir.parent / "daemon.log"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=out,
                cwd=ROOT,
                start_new_session=True,
            )
        deadline = time.monotonic() + WAIT
        while self.client.ping() is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited at start:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"daemon did not answer:\n{self.log.read_text()}")
            time.sleep(0.01)  # waiting for another process to bind its socket

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=WAIT)
        self.proc = None
        return code

    # -- helpers used by the tests ------------------------------------------------------
    def submit(self, text: str, source: Path | None = None) -> str:
        params = {"source": str(source)} if source else None
        result = self.client.call("POST", "/v1/workflows", params=params, body=text.encode())
        return str(result["id"])

    def status(self, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.call("GET", path_of("workflows", ref))
        return result

    def jobs(self, ref: str) -> dict[str, dict[str, Any]]:
        return {j["name"]: j for j in self.status(ref)["jobs"]}

    def events(self, ref: str, follow: bool = False) -> list[dict[str, Any]]:
        lines = self.client.stream_lines(path_of("workflows", ref, "events"), {"follow": follow})
        return [json.loads(line) for line in lines if line.strip()]

    def wait_final(self, ref: str) -> dict[str, Any]:
        """Follow the event stream until the workflow is final (the stream ends then)."""
        self.events(ref, follow=True)
        status = self.status(ref)
        assert status["state"] != "running", status
        return status

    def wait_for_event(self, ref: str, predicate: Any) -> dict[str, Any]:
        for line in self.client.stream_lines(path_of("workflows", ref, "events"), {"follow": True}):
            if line.strip():
                event = json.loads(line)
                if predicate(event):
                    return event
        raise AssertionError("the workflow ended before the expected event")

    def log_of(self, ref: str, job: str, attempt: int | None = None) -> str:
        chunks = self.client.stream(
            path_of("workflows", ref, "jobs", job, "log"), {"attempt": attempt}
        )
        return b"".join(chunks).decode()


@pytest.fixture
def daemon_factory(ccd_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    started: list[DaemonProc] = []

    def make(config: str | None = None) -> DaemonProc:
        cfg_path = None
        if config is not None:
            cfg_path = tmp_path / "ccd.yaml"
            cfg_path.write_text(config)
        d = DaemonProc(
            env=dict(ccd_env),
            socket=Path(ccd_env["XDG_RUNTIME_DIR"]) / "ccd" / "ccd.sock",
            state_dir=Path(ccd_env["XDG_STATE_HOME"]) / "ccd",
            config=cfg_path,
        )
        started.append(d)
        return d

    yield make
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.stop(signal.SIGKILL)
    # jobs left behind by a test (detached on purpose) must not outlive it
    for d in started:
        runs = d.state_dir / "runs"
        for pid_file in runs.glob("*/*/*/pid") if runs.exists() else []:
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def daemon(daemon_factory: Any) -> DaemonProc:
    d: DaemonProc = daemon_factory()
    d.start()
    return d


def daemon_in_lab(daemon_factory: Any, lab: NetnsLab, directory: Path) -> DaemonProc:
    """A daemon in the lab's `ctl` namespace that knows host 1 of the lab as `far`
    (its sshd started here): keepalives notice a cut link in ~3.5 s, and the host's
    jobs are polled every 0.2 s."""
    host = lab.start_sshd(1)
    ssh_config = directory / "ssh_config"
    ssh_config.write_text("")
    d: DaemonProc = daemon_factory(
        f"""
ssh_config: {ssh_config}
hosts:
  far:
    hostname: {host.address}
    port: {host.port}
    user: {host.user}
    identity_file: {host.identity_file}
    known_hosts: {host.known_hosts}
    keepalive_interval: 1
    keepalive_count_max: 3
    connect_timeout: 3
    poll_interval: 0.2
"""
    )
    d.wrap = ["ip", "netns", "exec", lab.ctl]
    d.start()
    return d
