"""How the Slurm executor reaches a cluster: commands, and the files of a run directory.

A cluster is either this machine (ccd runs on a login node) or a login node reached
over SSH.  The executor only runs shell text there and reads each attempt's exit
file and log; `LocalCluster` and `SshCluster` do that directly or through the
host's `HostLink` (one connection, its channel budget, its follower and SFTP session).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import asyncssh

from ccd.executors.ssh.link import HostLink
from ccd.executors.ssh.mirror import RemoteRunDir
from ccd.executors.wrapper import EXIT, LOG, parse_exit_file
from ccd.usage import USAGE, Usage, parse_usage

#: bytes at the end of a log searched for Slurm's own notice lines
TAIL = 8192


class RunFiles(Protocol):
    """An attempt's run directory as the executor reads it."""

    #: the local file holding the log (the log itself, or a copy kept up to date)
    log_path: Path

    async def exit_file(self) -> tuple[int | None, float | None]:
        """The wrapper's exit code and when it wrote it (the exit file's mtime, on
        the cluster); (None, None) when it has not written one."""
        ...

    async def sync(self) -> None:
        """Bring the local log up to date and wake its readers."""
        ...

    async def usage(self) -> Usage | None:
        """The figures the wrapper wrote before its exit file (None: none)."""
        ...

    def tail(self) -> str:
        """The end of the local log (for Slurm's notices)."""
        ...

    async def close(self, exit_code: int | None) -> None: ...


class Cluster(Protocol):
    name: str

    async def run(self, command: str, stdin: str | None = None) -> tuple[int, str, str]:
        """Run shell text on the login node: (exit status, stdout, stderr)."""
        ...

    async def root(self) -> str:
        """The runs directory on the cluster's (shared) filesystem."""
        ...

    def files(
        self,
        run_dir: str,
        local_dir: Path,
        on_growth: Callable[[], None],
        running: Callable[[], bool],
        warn: Callable[[str], None],
    ) -> RunFiles:
        """Read `run_dir`; `on_growth` when the log grew, copied while `running()`;
        `warn` the attempt of trouble reading it."""
        ...

    async def upload(self, local: str, remote: str) -> None:
        """Put a local file (a job's script) at `remote` on the cluster."""
        ...


def read_tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL))
            return fh.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


async def run_local(command: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run shell text on this machine."""
    proc = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


# -- this machine ------------------------------------------------------------------------
class LocalRunFiles:
    def __init__(self, run_dir: Path, on_growth: Callable[[], None]) -> None:
        self.run_dir = run_dir
        self.log_path = run_dir / LOG
        self._on_growth = on_growth

    async def exit_file(self) -> tuple[int | None, float | None]:
        try:
            with (self.run_dir / EXIT).open() as fh:
                code = parse_exit_file(fh.read())
                mtime = os.fstat(fh.fileno()).st_mtime
        except FileNotFoundError:
            return None, None
        return (None, None) if code is None else (code, mtime)

    async def sync(self) -> None:
        self._on_growth()  # Slurm writes the log here itself: let the reader look

    async def usage(self) -> Usage | None:
        try:
            return parse_usage((self.run_dir / USAGE).read_text(errors="replace"))
        except OSError:
            return None

    def tail(self) -> str:
        return read_tail(self.log_path)

    async def close(self, exit_code: int | None) -> None:
        return None


class LocalCluster:
    name = "localhost"

    def __init__(self, runs_dir: Path) -> None:
        self._runs_dir = runs_dir

    async def run(self, command: str, stdin: str | None = None) -> tuple[int, str, str]:
        return await run_local(command, stdin)

    async def root(self) -> str:
        return str(self._runs_dir)

    def files(
        self,
        run_dir: str,
        local_dir: Path,
        on_growth: Callable[[], None],
        running: Callable[[], bool],
        warn: Callable[[str], None],
    ) -> RunFiles:
        return LocalRunFiles(Path(run_dir), on_growth)

    async def upload(self, local: str, remote: str) -> None:
        return None  # the login node's filesystem is this one: scripts run in place


# -- a login node over SSH ---------------------------------------------------------------
class SshRunFiles:
    """A run directory on the cluster, its log streamed here by the host's follower
    (which polls it on the cluster: a compute node writes it), or copied by the
    host's SFTP poller while the job runs where no follower can."""

    shared = True  # written by a compute node: polled on the login node
    pid = 0  # the wrapper runs on a compute node, not where the follower is

    def __init__(
        self,
        link: HostLink,
        remote_dir: str,
        local_dir: Path,
        on_growth: Callable[[], None],
        running: Callable[[], bool],
        warn: Callable[[str], None],
    ) -> None:
        self.link = link
        self.files = RemoteRunDir(link, remote_dir, local_dir, on_growth)
        self.log_path = self.files.log_path
        self._running = running
        self.warn = warn
        self._lock = asyncio.Lock()
        self._key = f"slurm:{remote_dir}"
        link.follow(self._key, self)

    # -- what the host's stream calls --------------------------------------------------
    def exit_seen(self, text: bytes, mtime: float) -> None:
        return None  # Slurm's queue and accounting decide the end (`SlurmAttempt`)

    def vanished(self) -> None:
        return None

    def reachability(self, reachable: bool, reason: str | None) -> None:
        return None  # the Slurm poller's squeue tells the attempts about outages

    async def poll(self, sftp: asyncssh.SFTPClient) -> None:
        if self._running():
            await self.refresh(sftp)

    async def refresh(self, sftp: asyncssh.SFTPClient) -> None:
        async with self._lock:
            await self.files.drain(sftp)

    # -- what the attempt calls --------------------------------------------------------
    async def exit_file(self) -> tuple[int | None, float | None]:
        _, sftp = await self.link.ready(fail_fast=False)
        code, written = await self.files.read_exit(sftp)  # the SFTP stat's mtime
        return (None, None) if code is None else (code, written)

    async def sync(self) -> None:
        await self.link.sync(self._key)

    def tail(self) -> str:
        return read_tail(self.log_path)

    async def usage(self) -> Usage | None:
        _, sftp = await self.link.ready(fail_fast=False)
        return await self.files.read_usage(sftp)

    async def close(self, exit_code: int | None) -> None:
        self.link.unfollow(self._key)
        self.files.close(exit_code)


class SshCluster:
    def __init__(self, link: HostLink) -> None:
        self.link = link
        self.name = link.name

    async def run(self, command: str, stdin: str | None = None) -> tuple[int, str, str]:
        result = await self.link.run(command, stdin=stdin)
        return result.exit_status or 0, str(result.stdout or ""), str(result.stderr or "")

    async def root(self) -> str:
        await self.link.ready(fail_fast=True)
        return self.link.runs_root()

    def files(
        self,
        run_dir: str,
        local_dir: Path,
        on_growth: Callable[[], None],
        running: Callable[[], bool],
        warn: Callable[[str], None],
    ) -> RunFiles:
        return SshRunFiles(self.link, run_dir, local_dir, on_growth, running, warn)

    async def upload(self, local: str, remote: str) -> None:
        _, sftp = await self.link.ready(fail_fast=True)
        await sftp.makedirs(str(Path(remote).parent), exist_ok=True)
        await sftp.put(local, remote)
