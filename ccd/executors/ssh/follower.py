"""The follower as ccd handles it: its scripts, putting them on a host, starting one.

The scripts are ``remote/follow.py`` and ``remote/follow.sh``.  They are uploaded
into ``<runs directory>/.ccd-follower/`` under names that carry a hash of their
text, so a host gets each version once, and daemons of two ccd versions never
overwrite each other's.  The sh follower keeps its state in a directory there too.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import shlex
from dataclasses import dataclass
from importlib import resources

import asyncssh

#: seconds between the follower's heartbeats and ccd's pings
HEARTBEAT = 5.0
#: a follower that has heard nothing from ccd for this long exits (a dead connection)
WATCHDOG = 30
#: seconds between the follower's full looks at watched directories (and wrapper pids)
SWEEP = 2.0
#: where the follower scripts and the sh follower's state live, in the runs directory
FOLLOWER_DIR = ".ccd-follower"


class FollowerUnavailable(Exception):
    """The follower cannot run on this connection; `permanent`: do not retry it here."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Script:
    name: str  # as uploaded: follow-<hash>.py
    text: bytes


def script(resource: str) -> Script:
    text = resources.files("ccd.executors.ssh").joinpath("remote", resource).read_bytes()
    stem, _, suffix = resource.partition(".")
    return Script(f"{stem}-{hashlib.sha256(text).hexdigest()[:12]}.{suffix}", text)


def start_command(py: str, sh: str, state: str, want: str, poll_interval: float) -> str:
    """The shell text that runs the python3 follower if it can, else the sh one."""
    tick = max(0.05, poll_interval)
    py_args = f"{tick:g} {SWEEP:g} {HEARTBEAT:g} {WATCHDOG}"
    beat, live = math.ceil(HEARTBEAT / tick), math.ceil(SWEEP / tick)
    sh_args = f"{tick:g} {beat} {live} {WATCHDOG} {shlex.quote(state)}"
    python = (
        "python3 -c 'import sys; sys.exit(sys.version_info < (3, 6))' 2>/dev/null && "
        f"exec python3 -I -S {shlex.quote(py)} {py_args}; "
    )
    shell = f"exec sh {shlex.quote(sh)} {sh_args}"
    if want == "python3":
        return f"cd / && {python}echo 'no python3 3.6 or later on the host' >&2; exit 1"
    if want == "sh":
        return f"cd / && {shell}"
    return f"cd / && {{ {python}{shell}; }}"


async def upload(sftp: asyncssh.SFTPClient, directory: str) -> tuple[str, str]:
    """Put the scripts on the host unless they are there; their paths."""
    paths = []
    for one in (script("follow.py"), script("follow.sh")):
        path = f"{directory}/{one.name}"
        paths.append(path)
        try:
            if (await sftp.stat(path)).size == len(one.text):
                continue
        except asyncssh.SFTPNoSuchFile:
            pass
        except (OSError, asyncssh.SFTPError) as exc:
            raise FollowerUnavailable(f"cannot look at {path}: {exc}", permanent=True) from exc
        try:
            await sftp.makedirs(directory, exist_ok=True)
            partial = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.part"
            async with sftp.open(partial, "wb") as fh:
                await fh.write(one.text)
            await sftp.posix_rename(partial, path)
        except (OSError, asyncssh.SFTPError) as exc:
            raise FollowerUnavailable(f"cannot upload it to {path}: {exc}", permanent=True) from exc
    return paths[0], paths[1]
