"""Declared job environments through a real daemon, on every executor: a real venv
(made here without pip), ``setup:``, ``env:`` expanding the job's own ``$PATH``,
and the host's declaration under the job's (local, SSH to the test sshd, Slurm)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ccd.cli.client import ApiError
from tests.conftest import DaemonProc
from tests.integration.test_ssh import host_yaml, remote_daemon
from tests.sshd import SshHost


def make_venv(parent: Path, name: str, python: str = sys.executable) -> Path:
    path = parent / name
    subprocess.run([python, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


@pytest.fixture
def shared_dir() -> Path:
    """A directory the test sshd's user can read (pytest's own tmp is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="ccd-env-", dir="/tmp"))
    path.chmod(0o755)
    return path


def test_local_jobs_get_the_hosts_venv_or_their_own_and_env_expands_path(
    daemon_factory: Callable[..., DaemonProc], tmp_path: Path
) -> None:
    host_venv, job_venv = make_venv(tmp_path, "host-venv"), make_venv(tmp_path, "job-venv")
    d = daemon_factory(f"hosts:\n  localhost:\n    venv: {host_venv}\n")
    d.start()
    spec = tmp_path / "wf.yaml"
    spec.write_text(
        textwrap.dedent("""
        name: envs
        defaults:
          env: {PATH: "/opt/ccd-x/bin:$PATH", LITERAL: "cost $1, $$HOME"}
        jobs:
          host:
            run: 'command -v python; echo "$PATH" | cut -d: -f1; echo "$LITERAL"'
          own:
            venv: job-venv
            setup: ['echo "setup sees $CCD_JOB"']
            run: 'command -v python'
    """)
    )
    wf = d.submit(spec.read_text(), source=spec)
    assert d.wait_final(wf)["state"] == "succeeded"
    assert d.log_of(wf, "host") == f"{host_venv}/bin/python\n/opt/ccd-x/bin\ncost $1, $HOME\n"
    assert d.log_of(wf, "own") == f"setup sees own\n{job_venv}/bin/python\n"


def test_a_missing_local_venv_is_refused_at_submit_with_its_position(
    daemon_factory: Callable[..., DaemonProc], tmp_path: Path
) -> None:
    d = daemon_factory("")
    d.start()
    spec = tmp_path / "wf.yaml"
    spec.write_text("name: bad\njobs:\n  a: {run: 'true', venv: .venv}\n")
    with pytest.raises(ApiError) as err:
        d.submit(spec.read_text(), source=spec)
    assert err.value.status == 422
    [problem] = err.value.body["problems"]
    assert (problem["line"], problem["code"]) == (3, "env-not-found")
    assert f"venv '.venv' not found (looked for {tmp_path}/.venv)" in problem["message"]


def test_remote_jobs_activate_the_venv_on_their_host_and_expand_its_path(
    daemon_factory: Callable[..., DaemonProc],
    tmp_path: Path,
    ssh_host: SshHost,
    shared_dir: Path,
) -> None:
    # the system's Python: the sshd's user can read it (this one may be under /root)
    venv = make_venv(shared_dir, "remote-venv", python="/usr/bin/python3")
    d = remote_daemon(daemon_factory, tmp_path, host_yaml("remote", ssh_host, venv=str(venv)))
    wf = d.submit(
        textwrap.dedent("""
        name: remote-env
        jobs:
          r:
            host: remote
            env: {PATH: "/opt/remote/bin:$PATH", WHERE: "${HOME}/x"}
            run: 'command -v python; echo "$PATH" | cut -d: -f1-2; echo "$WHERE"'
    """)
    )
    assert d.wait_final(wf)["state"] == "succeeded", d.log_of(wf, "r")
    # $HOME and $PATH are the host's (the sshd's user), after the venv's activation
    expected = f"{venv}/bin/python\n/opt/remote/bin:{venv}/bin\n/home/{ssh_host.user}/x\n"
    assert d.log_of(wf, "r") == expected


def test_slurm_jobs_run_their_setup_and_venv_in_the_batch_job(
    daemon_factory: Callable[..., DaemonProc], slurm_cluster: Any, tmp_path: Path
) -> None:
    venv = make_venv(tmp_path, "slurm-venv")
    d = daemon_factory(
        "kill_grace: 2\nhosts:\n  localhost:\n    setup: ['export FROM_HOST=h']\n"
        "    slurm: {poll_interval: 0.5}\n"
    )
    d.env.update(slurm_cluster.env)
    d.start()
    spec = tmp_path / "wf.yaml"
    spec.write_text(
        textwrap.dedent("""
        name: slurm-env
        jobs:
          b:
            executor: slurm
            venv: slurm-venv
            setup: ['export FROM_JOB="$FROM_HOST+j"']
            env: {BOTH: "$FROM_JOB"}
            run: 'command -v python; echo "$BOTH"'
    """)
    )
    wf = d.submit(spec.read_text(), source=spec)
    assert d.wait_final(wf)["state"] == "succeeded"
    assert d.log_of(wf, "b") == f"{venv}/bin/python\nh+j\n"
