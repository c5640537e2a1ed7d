"""The launchd agent `ccctl daemon install` writes on macOS, read back by a plist parser.

There is no launchd here: the plist is parsed back with the standard library's
`plistlib` (the format's reader, independent of how it was written) and each key
is checked against what launchd.plist(5) says it does.  On a Mac `ccctl daemon
install` also runs ``plutil -lint`` on it.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from ccd.daemon.launchd import LABEL, bootstrap_command, render_agent
from ccd.errors import CcdError

PROGRAM = ["/opt/py/bin/python3", "-m", "ccd.daemon.main", "run", "--socket", "/tmp/ccd-1/ccd.sock"]


def test_the_agent_runs_ccd_at_login_restarts_it_after_a_crash_and_spares_the_jobs() -> None:
    text = render_agent(PROGRAM, {"PATH": "/opt/py/bin:/usr/bin", "Q": "a <b> & 'c'"}, Path("/l"))
    assert text.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist')
    agent = plistlib.loads(text, fmt=plistlib.FMT_XML)
    assert agent == {
        "Label": LABEL,
        "ProgramArguments": PROGRAM,
        "EnvironmentVariables": {
            "PYTHONUNBUFFERED": "1",
            "PATH": "/opt/py/bin:/usr/bin",
            "Q": "a <b> & 'c'",  # plist strings: escaped by the writer, read back as given
        },
        "RunAtLoad": True,
        # restarted when it exits non-zero or is killed, not after a clean stop
        "KeepAlive": {"SuccessfulExit": False},
        # launchd would otherwise kill what is left in the daemon's process group
        "AbandonProcessGroup": True,
        "ExitTimeOut": 30,
        "ThrottleInterval": 2,
        "StandardOutPath": "/l",
        "StandardErrorPath": "/l",
    }


@pytest.mark.parametrize("value", ["\x1b[1m", "a\rb", "\x00"])
def test_a_value_xml_cannot_carry_is_refused(value: str) -> None:
    with pytest.raises(CcdError, match="COLOUR's value has control characters a plist cannot"):
        render_agent(PROGRAM, {"COLOUR": value}, Path("/l"))


def test_tab_and_newline_survive_the_round_trip() -> None:
    agent = plistlib.loads(render_agent(PROGRAM, {"LINES": "one\ttab\ntwo"}, Path("/l")))
    assert agent["EnvironmentVariables"]["LINES"] == "one\ttab\ntwo"


def install(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ccd.cli", "daemon", "install", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_ccctl_daemon_install_writes_the_agent_and_says_how_to_load_it(
    ccd_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "ccd.yaml"
    config.write_text("environment:\n  CCD_TEST_VAR: hello\n")
    agents = tmp_path / "LaunchAgents"
    env = {**ccd_env, "CCD_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    result = install(env, "--manager", "launchd", "--directory", str(agents))
    assert result.returncode == 0, result.stderr
    path = agents / f"{LABEL}.plist"
    assert f"wrote {path}\n" in result.stdout
    assert f"load it with: launchctl bootstrap gui/{os.getuid()} {path}\n" in result.stdout
    assert result.stdout.count(bootstrap_command(path)) == 1
    agent = plistlib.loads(path.read_bytes())
    socket = Path(ccd_env["XDG_RUNTIME_DIR"]) / "ccd" / "ccd.sock"
    assert agent["ProgramArguments"] == [
        sys.executable,
        *("-m", "ccd.daemon.main", "run", "--socket", str(socket)),
    ]
    variables = agent["EnvironmentVariables"]
    assert variables["PATH"] == f"{Path(sys.executable).parent}:/usr/bin:/bin"
    assert (variables["CCD_TEST_VAR"], variables["CCD_CONFIG"]) == ("hello", str(config))
    assert "CCD_ENVIRONMENT_DIGEST" in variables  # the daemon knows the block is applied
    assert agent["StandardErrorPath"] == str(Path(ccd_env["XDG_STATE_HOME"]) / "ccd" / "ccd.log")
    assert "loginctl" not in result.stderr  # lingering is systemd's

    again = install(env, "--manager", "launchd", "--directory", str(agents))
    assert f"{path} is up to date" in again.stdout and "bootout" not in again.stdout
    config.write_text("environment:\n  CCD_TEST_VAR: changed\n")
    changed = install(env, "--manager", "launchd", "--directory", str(agents))
    assert f"updated {path}" in changed.stdout
    assert f"launchctl bootout gui/{os.getuid()}/{LABEL}" in changed.stdout


def test_socket_activation_is_refused_for_launchd(ccd_env: dict[str, str], tmp_path: Path) -> None:
    result = install(ccd_env, "--manager", "launchd", "--socket", "--directory", str(tmp_path))
    assert result.returncode == 1 and "--socket is for systemd" in result.stderr
    assert list(tmp_path.iterdir()) == []
