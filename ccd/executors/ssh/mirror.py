"""A remote run directory's local copy: its log, appended by offset, and its exit file.

The local copy of the log is append-only and its size *is* the offset to read the
remote log from, so a dropped connection, a restarted follower or a daemon
restart resumes exactly where the copy ends: no line lost, none repeated.  Bytes
come from the host's follower (`append`) or, where it cannot run, from SFTP reads
(`read_exit`, `drain`).  Used by SSH jobs and by Slurm jobs on a cluster reached
over SSH.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh

from ccd.executors.follow import CHUNK
from ccd.executors.ssh.link import HostLink
from ccd.executors.wrapper import EXIT, LOG, parse_exit_file
from ccd.usage import USAGE, Usage, parse_usage

#: the most a usage file can hold that is worth reading (one short line)
_USAGE_MAX = 4096


class RemoteRunDir:
    def __init__(
        self, link: HostLink, remote_dir: str, local_dir: Path, on_growth: Callable[[], None]
    ) -> None:
        self.link = link
        self.remote_dir = remote_dir
        self.local_dir = local_dir
        self._on_growth = on_growth
        local_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log_path = local_dir / LOG
        # the copy is created with its first bytes: most jobs print nothing, and a
        # stat is cheaper than creating a file (the log's readers take none for empty)
        try:
            self.offset = os.stat(self.log_path).st_size
        except FileNotFoundError:
            self.offset = 0
        self._mirror: int | None = None
        self._closed = False
        self._remote_log: asyncssh.SFTPClientFile | None = None
        self._log_generation = -1

    def _write(self, data: bytes) -> None:
        if self._mirror is None:
            self._mirror = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(self._mirror, data)

    def append(self, offset: int, data: bytes) -> bool:
        """Add the remote log's bytes that start at `offset` (streamed by the follower).

        Bytes the copy already has are skipped; False if they start past its end
        (a gap: the caller asks for them again from `self.offset`).
        """
        if self._closed:
            return True
        if offset > self.offset:
            return False
        data = data[self.offset - offset :]
        if data:
            self._write(data)
            self.offset += len(data)
            self._on_growth()
        return True

    async def read_exit(self, sftp: asyncssh.SFTPClient) -> tuple[int | None, float]:
        """The exit code (None: not written yet) and when it was written, over SFTP."""
        path = f"{self.remote_dir}/{EXIT}"
        # one stat per poll while the job runs; the file is opened only once it exists
        try:
            attrs = await sftp.stat(path)
        except asyncssh.SFTPNoSuchFile:
            return None, time.time()
        if not attrs.size:
            return None, time.time()  # being written (a single write(2)), or reset
        try:
            async with sftp.open(path, "rb") as fh:
                raw: bytes = await fh.read(64)
        except asyncssh.SFTPNoSuchFile:
            return None, time.time()
        return parse_exit_file(raw.decode(errors="replace")), float(attrs.mtime or time.time())

    async def read_usage(self, sftp: asyncssh.SFTPClient) -> Usage | None:
        """The figures the wrapper wrote before its exit file (None: it wrote none)."""
        try:
            async with sftp.open(f"{self.remote_dir}/{USAGE}", "rb") as fh:
                raw: bytes = await fh.read(_USAGE_MAX)
        except (OSError, asyncssh.SFTPError):
            return None
        return parse_usage(raw.decode(errors="replace"))

    async def drain(self, sftp: asyncssh.SFTPClient) -> None:
        """Append whatever the remote log gained since the last look, over SFTP."""
        if self._closed:
            return
        if self._remote_log is None or self._log_generation != self.link.generation:
            try:
                self._remote_log = await sftp.open(f"{self.remote_dir}/{LOG}", "rb")
            except asyncssh.SFTPNoSuchFile:
                return  # not created yet
            self._log_generation = self.link.generation
        while True:
            data: bytes = await self._remote_log.read(CHUNK, self.offset)
            if not data or not self.append(self.offset, data):
                return
            if len(data) < CHUNK:
                return

    def close(self, exit_code: int | None) -> None:
        """Stop copying; keep a local copy of the exit file for local readers."""
        self._closed = True
        if self._mirror is not None:
            with contextlib.suppress(OSError):
                os.close(self._mirror)
            self._mirror = None
        if exit_code is not None:
            (self.local_dir / EXIT).write_text(f"{exit_code}\n")
        if self._remote_log is not None:
            handle, self._remote_log = self._remote_log, None
            if self._log_generation == self.link.generation:
                # closing needs the connection, which may be gone: in the background
                self.link.spawn(handle.close(), "close remote log")
