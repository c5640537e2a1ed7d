"""Service-manager integration: the user unit, READY=1, and socket activation."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ccd.cli.client import Client
from tests.conftest import ROOT, WAIT


def test_user_unit_verifies_offline(tmp_path: Path) -> None:
    ccd = shutil.which("ccd")
    assert ccd is not None, "the ccd console script must be installed (pip install -e .)"
    unit = (ROOT / "systemd" / "ccd.service").read_text()
    assert "Type=notify" in unit and "KillMode=process" in unit
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    # the shipped unit points at ~/.local/bin; verify it with where ccd really is
    (unit_dir / "ccd.service").write_text(
        unit.replace("ExecStart=%h/.local/bin/ccd", f"ExecStart={ccd}")
    )
    verify_units(unit_dir / "ccd.service")


def verify_units(*units: Path) -> None:
    """`systemd-analyze --user verify` offline: any output at all is a failure."""
    runtime = tempfile.mkdtemp(prefix="ccd-sd-")
    result = subprocess.run(
        ["systemd-analyze", "--user", "verify", *map(str, units)],
        env={**os.environ, "XDG_RUNTIME_DIR": runtime},
        capture_output=True,
        text=True,
        timeout=60,
    )
    shutil.rmtree(runtime, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def start(env: dict[str, str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ccd.daemon.main", "run"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **kwargs,
    )  # type: ignore[call-overload]


def test_ready_notification(ccd_env: dict[str, str]) -> None:
    notify_path = Path(ccd_env["XDG_RUNTIME_DIR"]) / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(WAIT)
    proc = start({**ccd_env, "NOTIFY_SOCKET": str(notify_path)})
    try:
        message = listener.recv(4096).decode()
        assert "READY=1" in message
        # READY comes only once the API answers
        assert Client().ping() is not None
        proc.terminate()
        assert "STOPPING=1" in listener.recv(4096).decode()
        assert proc.wait(WAIT) == 0
    finally:
        proc.kill()
        listener.close()


def test_socket_activation_uses_the_passed_socket(ccd_env: dict[str, str]) -> None:
    path = Path(ccd_env["XDG_RUNTIME_DIR"]) / "activated.sock"
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(path))
    listening.listen(16)
    fd = listening.fileno()

    # what systemd does before exec: the socket becomes fd 3, LISTEN_PID is the new pid
    exec_as_systemd = (
        f"import os, sys; os.dup2({fd}, 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
        "os.execv(sys.executable, [sys.executable, '-m', 'ccd.daemon.main', 'run'])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", exec_as_systemd],
        env={**os.environ, **ccd_env, "LISTEN_FDS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=(fd,),
    )
    try:
        client = Client(path, timeout=WAIT)
        health = client.call("GET", "/v1/health")  # connects to the pre-bound socket
        assert health["pid"] == proc.pid
        default = Path(ccd_env["XDG_RUNTIME_DIR"]) / "ccd" / "ccd.sock"
        assert not default.exists(), "with a passed socket ccd must not create its own"
        proc.terminate()
        assert proc.wait(WAIT) == 0
        assert path.exists(), "a socket systemd passed is systemd's to remove"
    finally:
        proc.kill()
        listening.close()


def test_second_daemon_on_the_same_socket_is_refused(ccd_env: dict[str, str]) -> None:
    first = start(ccd_env)
    try:
        client = Client()
        import time

        deadline = time.monotonic() + WAIT
        while client.ping() is None:
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.01)  # waiting for another process to bind its socket
        second = start(ccd_env)
        _, err = second.communicate(timeout=WAIT)
        assert second.returncode != 0
        assert b"already listening" in err
        assert client.ping() is not None
    finally:
        first.kill()
        first.wait()


@pytest.mark.parametrize("length", [200])
def test_overlong_socket_path_is_a_clear_error(ccd_env: dict[str, str], length: int) -> None:
    proc = start({**ccd_env, "CCD_SOCKET": "/tmp/" + "x" * length})
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 1
    assert b"longer than" in err and b"Traceback" not in err


def test_repository_units_are_the_rendered_templates() -> None:
    from ccd.daemon.units import SOCKET, render_service

    assert (ROOT / "systemd" / "ccd.service").read_text() == render_service()
    assert (ROOT / "systemd" / "ccd.socket").read_text() == SOCKET


#: values systemd reads differently unless quoted: spaces, quotes, backslashes,
#: specifiers (%h), a `$` (literal in Environment=), tab and newline
HARD_ENVIRONMENT = """\
environment:
  CCD_TEST_VAR: hello
  PATH: "/opt/x bin/bin:$PATH"
  QUOTED: 'say "hi", it''s 100% %h \\ $$HOME'
  LINES: "one\\ttab\\ntwo"
"""


def install(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccd.cli", "daemon", "install", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def environment_lines(unit: str) -> list[str]:
    return [line for line in unit.splitlines() if line.startswith("Environment=")]


def test_daemon_install_writes_units_that_verify(ccd_env: dict[str, str], tmp_path: Path) -> None:
    config = Path(ccd_env["XDG_CONFIG_HOME"]) / "ccd" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(HARD_ENVIRONMENT)
    target = tmp_path / "units"
    env = {**ccd_env, "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/bin"}
    result = install(env, "--socket", "--directory", str(target))
    assert result.returncode == 0, result.stderr
    service = (target / "ccd.service").read_text()
    assert f"ExecStart={sys.executable} -m ccd.daemon.main run" in service
    assert "ListenStream=%t/ccd/ccd.sock" in (target / "ccd.socket").read_text()
    assert "systemctl --user enable --now ccd.socket" in result.stdout
    job_path = f"/opt/x bin/bin:{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    assert f"jobs will start with PATH={job_path}\n" in result.stdout
    assert "the daemon config's environment: sets CCD_TEST_VAR, PATH, QUOTED, LINES" in (
        result.stdout
    )
    lines = environment_lines(service)
    assert lines[:5] == [
        "Environment=PYTHONUNBUFFERED=1",
        f'Environment="PATH={job_path}"',
        'Environment="CCD_TEST_VAR=hello"',
        'Environment="QUOTED=say \\"hi\\", it\'s 100%% %%h \\\\ $HOME"',
        'Environment="LINES=one\\ttab\\ntwo"',
    ]
    assert lines[5].startswith('Environment="CCD_ENVIRONMENT_DIGEST=') and len(lines) == 6
    # no systemd as PID 1 here: lingering cannot be asked, and the user is told
    assert "loginctl enable-linger" in result.stderr
    verify_units(target / "ccd.socket", target / "ccd.service")


def test_daemon_install_again_updates_the_unit_when_the_config_changed(
    ccd_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "ccd.yaml"
    config.write_text("environment:\n  CCD_TEST_VAR: hello\n")
    target = tmp_path / "units"
    env = {**ccd_env, "CCD_CONFIG": str(config)}
    first = install(env, "--directory", str(target))
    assert first.returncode == 0, first.stderr
    assert f"wrote {target / 'ccd.service'}" in first.stdout
    # the service reads the config the unit was written from
    assert f'Environment="CCD_CONFIG={config}"' in (target / "ccd.service").read_text()

    same = install(env, "--directory", str(target))
    assert f"{target / 'ccd.service'} is up to date" in same.stdout, same.stdout
    assert "restart" not in same.stdout

    config.write_text("environment:\n  CCD_TEST_VAR: 'hello again'\n")
    changed = install(env, "--directory", str(target))
    assert changed.returncode == 0, changed.stderr
    assert f"updated {target / 'ccd.service'}" in changed.stdout, changed.stdout
    assert "systemctl --user restart ccd" in changed.stdout
    service = (target / "ccd.service").read_text()
    assert 'Environment="CCD_TEST_VAR=hello again"' in environment_lines(service)
    verify_units(target / "ccd.service")


def test_daemon_install_refuses_a_value_systemd_cannot_hold(
    ccd_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "ccd.yaml"
    config.write_text('environment:\n  COLOUR: "\\e[1m"\n')
    target = tmp_path / "units"
    result = install({**ccd_env, "CCD_CONFIG": str(config)}, "--directory", str(target))
    assert result.returncode == 1
    assert "COLOUR's value has control characters systemd refuses" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (target / "ccd.service").exists()
