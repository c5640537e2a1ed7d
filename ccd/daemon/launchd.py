"""ccd as a launchd user agent on macOS: the plist `ccctl daemon install` writes.

It says what `ccd.daemon.units` says to systemd, in launchd's words: start at
login (``RunAtLoad``), start again after a crash but not after a clean stop
(``KeepAlive: {SuccessfulExit: false}``, systemd's ``Restart=on-failure``), and
leave the jobs alone when the daemon stops (``AbandonProcessGroup``, systemd's
``KillMode=process``: a wrapper runs in its own session anyway, so this is the
second line of defence).  The environment is the same `unit_variables` the
systemd unit gets; plist strings need no escaping, but XML cannot carry most
control characters.  Checked here by parsing it back (tests/unit/test_launchd.py)
and by ``plutil -lint`` where that exists (a Mac).
"""

from __future__ import annotations

import os
import plistlib
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from ccd.errors import CcdError

#: the agent's name for launchctl (and its file's, ``LABEL.plist``)
LABEL = "org.ccd-coordinator.ccd"
#: seconds launchd waits after SIGTERM before SIGKILL (systemd's TimeoutStopSec)
EXIT_TIMEOUT = 30
#: seconds between two starts after a crash (launchd's default is 10)
THROTTLE = 2


def agents_dir() -> Path:
    return Path.home() / "Library" / "LaunchAgents"


def render_agent(program: Sequence[str], variables: Mapping[str, str], log: Path) -> bytes:
    """The agent's plist: run `program` with `variables`, its output appended to `log`."""
    agent = {
        "Label": LABEL,
        "ProgramArguments": list(program),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1", **variables},
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "AbandonProcessGroup": True,
        "ExitTimeOut": EXIT_TIMEOUT,
        "ThrottleInterval": THROTTLE,
        "StandardOutPath": str(log),
        "StandardErrorPath": str(log),
    }
    for name, value in variables.items():
        # XML reads a carriage return back as a newline: refused too
        refused = sorted({c for c in value if ord(c) < 32 and c not in "\t\n"})
        if refused:
            raise CcdError(
                f"environment: {name}'s value has control characters a plist cannot hold "
                f"({', '.join(repr(c) for c in refused)}); only tab and newline are allowed"
            )
    return plistlib.dumps(agent, sort_keys=False)


def bootstrap_command(path: Path) -> str:
    return f"launchctl bootstrap gui/{os.getuid()} {shlex.quote(str(path))}"


def restart_command(path: Path) -> str:
    """What loads a changed plist: launchd reads it only when the agent is bootstrapped."""
    return f"launchctl bootout gui/{os.getuid()}/{LABEL}; {bootstrap_command(path)}"
