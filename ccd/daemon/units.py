"""The systemd user units of ccd, rendered for where ccd is installed.

`systemd/ccd.service` and `systemd/ccd.socket` in the repository are these
templates rendered with the defaults (a test keeps them equal).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

#: how the repository's copies start ccd (a `pip install --user` puts it there)
DEFAULT_EXEC = "%h/.local/bin/ccd run"

SERVICE = """\
# ccd as a systemd user service (written by `ccctl daemon install`).
#   systemctl --user daemon-reload && systemctl --user enable --now ccd
#   loginctl enable-linger "$USER"    # otherwise the service stops at your last logout
[Unit]
Description=ccd workflow coordinator

[Service]
# ccd sends READY=1 once its API socket is listening.
Type=notify
NotifyAccess=main
ExecStart={exec_start}
# Stop only the daemon: jobs run detached under the job protocol and the next
# daemon adopts them, so a restart or an upgrade never kills a computation.
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=2
Environment=PYTHONUNBUFFERED=1

[Install]
WantedBy=default.target
"""

SOCKET = """\
# Socket activation for ccd (written by `ccctl daemon install --socket`): systemd
# listens on the API socket and starts ccd.service on the first connection.
#   systemctl --user daemon-reload && systemctl --user enable --now ccd.socket
[Unit]
Description=ccd workflow coordinator API socket

[Socket]
ListenStream=%t/ccd/ccd.sock
SocketMode=0600
DirectoryMode=0700

[Install]
WantedBy=sockets.target
"""


def render_service(exec_start: str = DEFAULT_EXEC) -> str:
    return SERVICE.format(exec_start=exec_start)


@dataclass(frozen=True)
class Linger:
    enabled: bool | None  #: None: could not be asked (no systemd, no loginctl)
    detail: str


def linger(user: str) -> Linger:
    """Whether the user's services outlive their last logout (`loginctl` Linger)."""
    try:
        result = subprocess.run(
            ["loginctl", "show-user", user, "-p", "Linger"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Linger(None, f"cannot run loginctl: {exc}")
    out = result.stdout.strip()
    if result.returncode != 0 or not out.startswith("Linger="):
        return Linger(
            None,
            (result.stderr or out).strip().splitlines()[0]
            if (result.stderr or out).strip()
            else "loginctl gave no answer",
        )
    return Linger(out == "Linger=yes", out)
