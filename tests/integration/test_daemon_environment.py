"""The daemon config's ``environment:`` block reaches local jobs, however ccd started:
by hand (``ccd run``), or from the unit ``ccctl daemon install`` wrote."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from tests.conftest import DaemonProc
from tests.unit.test_daemon_units import systemd_reads

CONFIG = textwrap.dedent("""
    environment:
      CCD_TEST_VAR: hello
      PATH: "/opt/x/bin:$PATH"
""")

SHOW = textwrap.dedent("""
    name: env
    jobs:
      show:
        run: 'echo "$CCD_TEST_VAR"; echo "$PATH"; echo "${CCD_ENVIRONMENT_DIGEST-no marker}"'
""")


def job_sees(d: DaemonProc) -> list[str]:
    wf = d.submit(SHOW)
    status = d.wait_final(wf)
    assert status["state"] == "succeeded", status
    return d.log_of(wf, "show").splitlines()


def test_a_local_job_inherits_the_environment_block(
    daemon_factory: Callable[..., DaemonProc],
) -> None:
    d = daemon_factory(CONFIG)
    d.env["PATH"] = "/usr/bin:/bin"
    d.start()
    assert job_sees(d) == ["hello", "/opt/x/bin:/usr/bin:/bin", "no marker"]
    health = d.client.call("GET", "/v1/health")
    assert health["job_path"] == "/opt/x/bin:/usr/bin:/bin"
    assert health["environment"] == ["CCD_TEST_VAR", "PATH"]

    status = subprocess.run(
        [sys.executable, "-m", "ccd.cli", "daemon", "status"],
        env={**os.environ, **d.env, "CCD_SOCKET": str(d.socket)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert "jobs start with PATH=/opt/x/bin:/usr/bin:/bin\n" in status.stdout
    assert "the daemon config's environment: sets CCD_TEST_VAR, PATH\n" in status.stdout
    assert "environment: CCD_TEST_VAR, PATH set" in d.log.read_text()


def test_started_from_the_installed_unit_the_block_applies_once(
    daemon_factory: Callable[..., DaemonProc], tmp_path: Path
) -> None:
    """What systemd does with the unit: its Environment= lines, read as systemd reads
    them, are the daemon's environment; the daemon must not prefix PATH again."""
    d = daemon_factory(CONFIG)
    assert d.config is not None
    env = {**os.environ, **d.env, "PATH": "/usr/bin:/bin", "CCD_CONFIG": str(d.config)}
    installed = subprocess.run(
        [sys.executable, "-m", "ccd.cli", "daemon", "install", "--directory", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    unit = (tmp_path / "ccd.service").read_text()
    for line in unit.splitlines():
        if line.startswith('Environment="'):
            name, value = systemd_reads(line.removeprefix("Environment=")).split("=", 1)
            d.env[name] = value
    python_dir = str(Path(sys.executable).parent)
    assert d.env["PATH"] == f"/opt/x/bin:{python_dir}:/usr/bin:/bin"
    d.start()
    assert job_sees(d) == ["hello", f"/opt/x/bin:{python_dir}:/usr/bin:/bin", "no marker"]
    assert "environment: CCD_TEST_VAR, PATH already set by the unit" in d.log.read_text()


def test_a_name_no_environment_can_hold_stops_the_daemon_with_the_reason(
    ccd_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "ccd.yaml"
    config.write_text("environment:\n  MY-VAR: 1x\n")
    done = subprocess.run(
        [sys.executable, "-m", "ccd.daemon.main", "run", "--config", str(config)],
        env={**os.environ, **ccd_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "ccd: daemon config: environment: invalid variable name 'MY-VAR'" in done.stderr
    assert "Traceback" not in done.stderr
