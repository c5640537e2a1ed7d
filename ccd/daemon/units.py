"""The systemd user units of ccd, rendered for where ccd is installed.

`systemd/ccd.service` and `systemd/ccd.socket` in the repository are these
templates rendered with the defaults (a test keeps them equal).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from ccd.daemon import environment
from ccd.errors import CcdError

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
{environment}
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


ENVIRONMENT_NOTE = """\
# The environment jobs start with: ccctl's interpreter directory first on PATH,
# then the daemon config's environment: block, its $NAME references expanded when
# `ccctl daemon install` wrote this (systemd expands nothing here). Edit the config
# and run that again rather than these lines.
"""


def render_service(
    exec_start: str = DEFAULT_EXEC, variables: Mapping[str, str] | None = None
) -> str:
    """The service unit; `variables` become its ``Environment=`` lines, in order."""
    lines = "".join(f"Environment={assignment(k, v)}\n" for k, v in (variables or {}).items())
    return SERVICE.format(
        exec_start=exec_start, environment=ENVIRONMENT_NOTE + lines if lines else ""
    )


def unit_variables(
    block: Mapping[str, str], base: Mapping[str, str], config: str | None = None
) -> dict[str, str]:
    """What the unit sets: PATH (`base`'s, or the block's value for it), the block's
    other variables expanded against `base`, the config file the daemon must read
    to find this same block, and the digest that tells the daemon they are set."""
    environment.check(block)
    resolved = environment.resolve(block, base)
    variables = {"PATH": _each_once(resolved.pop("PATH", base.get("PATH", "")))}
    variables.update(resolved)
    if config is not None:
        variables["CCD_CONFIG"] = config
    if block:
        variables[environment.MARKER] = environment.digest(block)
    return variables


def _each_once(path: str) -> str:
    # a directory's second place on PATH never finds anything: only noise in the unit
    return ":".join(dict.fromkeys(entry for entry in path.split(":") if entry))


#: what systemd's unquoting (systemd.syntax(7), C-style escapes) turns back into
#: the character; `%` is a specifier (systemd.unit(5)), `%%` a literal one
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "%": "%%"}


def assignment(name: str, value: str) -> str:
    """``NAME=value`` as one double-quoted word of ``Environment=``: systemd unquotes
    it, undoes the C escapes, then replaces specifiers.  ``$`` is left alone: in
    ``Environment=`` it has no special meaning (``$$`` is for ``ExecStart=``)."""
    refused = sorted({c for c in value if (ord(c) < 32 or ord(c) == 127) and c not in "\t\n"})
    if refused:
        raise CcdError(
            f"environment: {name}'s value has control characters systemd refuses "
            f"({', '.join(repr(c) for c in refused)}); only tab and newline are allowed"
        )
    return '"' + name + "=" + "".join(_ESCAPES.get(c, c) for c in value) + '"'


def exec_line(*words: str) -> str:
    """An ``ExecStart=`` command line: a word with a space, quote, ``%``, ``$`` or
    backslash double-quoted with C escapes, ``%`` as ``%%`` (a specifier otherwise)
    and ``$`` as ``$$`` (a variable there); other words as they are."""
    escapes = {**_ESCAPES, "$": "$$"}
    return " ".join(
        word
        if _PLAIN_WORD.fullmatch(word)
        else '"' + "".join(escapes.get(c, c) for c in word) + '"'
        for word in words
    )


#: a word systemd reads as it is written (the usual interpreter path)
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:=+@,-]+")


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
