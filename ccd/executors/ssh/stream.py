"""`HostStream`: one host's run directories, streamed by a follower on the host.

On each connection, once something is followed, ccd uploads the follower scripts
(``remote/``) into the host's runs directory (once: their names carry a hash of
their text) and runs one of them on a long-lived exec channel: ``python3`` when
the host has 3.6 or later (inotify through ctypes), else POSIX ``sh`` polling on
the host.  ccd tells it which run directories to follow and from which log offset
(the local copy's size), and it sends back log bytes, exit files, vanished
wrappers and heartbeats (`frames`).  Nothing is polled over the network.

A follower that exits is started again with ccd's offsets (a few times, with
backoff); one that cannot start (no upload, no channel, no sh) makes this
connection fall back to SFTP polling, and every attempt followed meanwhile gets a
warning saying so.  A new connection tries the follower again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Protocol

import asyncssh

from ccd.config import HostConfig
from ccd.executors.poll import poll
from ccd.executors.ssh import frames
from ccd.executors.ssh.counts import Counts
from ccd.executors.ssh.follower import (
    FOLLOWER_DIR,
    HEARTBEAT,
    FollowerUnavailable,
    start_command,
    upload,
)

log = logging.getLogger(__name__)

#: a follower silent for this long is taken for stuck and started again
STUCK_AFTER = 60.0
#: seconds to wait for a starting follower's ready frame
START_TIMEOUT = 20.0
#: quick exits of a follower in a row before this connection falls back to SFTP
MAX_RESTARTS = 3
#: seconds before the first restart of a follower (doubled for each next one)
RETRY_PAUSE = 0.5


class RunCopy(Protocol):
    """The local copy of a run directory (`mirror.RemoteRunDir`)."""

    remote_dir: str
    #: bytes of the remote log the copy holds
    offset: int

    def append(self, offset: int, data: bytes) -> bool: ...


class Followed(Protocol):
    """A run directory as the stream (or the SFTP fallback) follows it."""

    @property
    def files(self) -> RunCopy: ...

    @property
    def pid(self) -> int:
        """The wrapper's pid on the host; 0 when it runs elsewhere (a Slurm node)."""
        ...

    @property
    def shared(self) -> bool:
        """Written on other machines (a shared filesystem): polled, its exit left to ccd."""
        ...

    def exit_seen(self, text: bytes, mtime: float) -> None: ...

    def vanished(self) -> None: ...

    def reachability(self, reachable: bool, reason: str | None) -> None: ...

    def warn(self, message: str) -> None: ...

    async def poll(self, sftp: asyncssh.SFTPClient) -> None:
        """One look over SFTP (the fallback poller's)."""
        ...

    async def refresh(self, sftp: asyncssh.SFTPClient) -> None:
        """Read the exit file and the log's new bytes now, over SFTP."""
        ...


class Host(Protocol):
    """What the stream needs of its `HostLink`."""

    name: str
    cfg: HostConfig
    counts: Counts

    def followed(self) -> Mapping[str, Followed]: ...

    async def wait_followed(self) -> None:
        """Return once something is followed."""
        ...

    def runs_root(self) -> str: ...


class HostStream:
    """The follower of one `HostLink`, on whichever connection is current."""

    def __init__(self, link: Host) -> None:
        self.link = link
        #: python3 or sh while a follower streams; None otherwise
        self.kind: str | None = None
        #: the follower's pid on the host, while it streams
        self.pid: int | None = None
        #: why this connection polls over SFTP instead; None while it does not
        self.fallback: str | None = None
        self._proc: asyncssh.SSHClientProcess[bytes] | None = None
        self._ids: dict[str, int] = {}
        self._keys: dict[int, str] = {}
        self._next = 0
        self._flushes: dict[int, asyncio.Future[bool]] = {}
        self._warned: set[str] = set()
        self._stderr = b""
        self._collector: asyncio.Task[None] | None = None
        self._outbox = bytearray()

    # -- what the link calls --------------------------------------------------------------
    def add(self, key: str, followed: Followed) -> None:
        if self._proc is not None:
            self._send_add(key, followed)
        elif self.fallback is not None:
            self._warn(key, followed)

    def drop(self, key: str) -> None:
        self._warned.discard(key)
        ident = self._ids.pop(key, None)
        if ident is not None:
            self._keys.pop(ident, None)
            self._write(frames.drop_command(ident))

    async def flush(self, key: str) -> bool:
        """Have the follower look at `key` now; True once all it found has arrived,
        False when no follower streams it (the caller reads over SFTP)."""
        ident = self._ids.get(key)
        if self._proc is None or ident is None:
            return False
        self._next += 1
        token = self._next
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._flushes[token] = future
        self._write(frames.flush_command(token, ident))
        try:
            return await future
        finally:
            self._flushes.pop(token, None)

    async def serve(self, conn: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient) -> None:
        """Follow the link's run directories on this connection until it closes."""
        want = self.link.cfg.follower
        failures = 0
        try:
            if want == "none":
                await self._poll_over_sftp(sftp)
            while True:
                await self.link.wait_followed()
                try:
                    proc = await self._start(conn, sftp, want)
                except (FollowerUnavailable, asyncssh.Error, OSError) as exc:
                    if conn.is_closed():
                        return  # not the follower's fault: the next connection tries again
                    if not isinstance(exc, FollowerUnavailable):
                        exc = FollowerUnavailable(str(exc), permanent=False)
                    failures += 1
                    if exc.permanent or failures >= MAX_RESTARTS:
                        await self._fall_back(sftp, str(exc))
                    await asyncio.sleep(RETRY_PAUSE * 2 ** (failures - 1))
                    continue
                started = asyncio.get_running_loop().time()
                await self._pump(proc)
                if conn.is_closed():
                    return
                quick = asyncio.get_running_loop().time() - started < STUCK_AFTER
                failures = failures + 1 if quick else 1
                reason = self._stderr.decode(errors="replace").strip() or "no message"
                log.warning(
                    "%s: the follower ended (%s); starting it again", self.link.name, reason
                )
                if failures >= MAX_RESTARTS:
                    await self._fall_back(sftp, f"the follower keeps ending: {reason}")
                await asyncio.sleep(RETRY_PAUSE * 2 ** (failures - 1))
        finally:
            self._reset()
            self.fallback = None

    # -- starting ------------------------------------------------------------------------
    async def _start(
        self, conn: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient, want: str
    ) -> asyncssh.SSHClientProcess[bytes]:
        directory = f"{self.link.runs_root()}/{FOLLOWER_DIR}"
        py, sh = await upload(sftp, directory)
        command = start_command(py, sh, directory, want, self.link.cfg.poll_interval)
        self.link.counts.execs += 1
        self.link.counts.followers += 1
        try:
            proc = await conn.create_process(command, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            raise FollowerUnavailable(
                f"sshd refused a channel for it ({exc.reason})", permanent=False
            ) from exc
        self._stderr = b""
        collect = self._collector = asyncio.create_task(self._collect_stderr(proc))
        try:
            line = await asyncio.wait_for(proc.stdout.readuntil(b"\n"), START_TIMEOUT)
            ready = frames.make_frame(frames.parse_header(line), b"")
        except (asyncio.IncompleteReadError, TimeoutError, frames.FrameError) as exc:
            proc.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collect, 2)
            self._collector = None
            message = self._stderr.decode(errors="replace").strip() or repr(exc)
            raise FollowerUnavailable(f"it did not start: {message}", permanent=True) from exc
        if not isinstance(ready, frames.Ready) or ready.version != frames.VERSION:
            proc.close()
            raise FollowerUnavailable(f"it answered {ready!r}", permanent=True)
        self.kind, self.pid = ready.kind, ready.pid
        self.fallback = None
        log.info("%s: %s follower %d streams its jobs", self.link.name, ready.kind, ready.pid)
        return proc

    async def _collect_stderr(self, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        with contextlib.suppress(Exception):
            while chunk := await proc.stderr.read(4096):
                self._stderr = (self._stderr + chunk)[-2000:]

    # -- streaming -------------------------------------------------------------------------
    async def _pump(self, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        """Tell the follower what to follow, then apply its frames until it ends."""
        self._proc = proc
        for key, followed in self.link.followed().items():
            self._send_add(key, followed)
        pinger = asyncio.create_task(self._ping())
        loop = asyncio.get_running_loop()
        try:
            # one deadline, moved on by every frame (wait_for would make a task a frame)
            async with asyncio.timeout(None) as silence:
                while True:
                    silence.reschedule(loop.time() + STUCK_AFTER)
                    header = frames.parse_header(await proc.stdout.readuntil(b"\n"))
                    payload = (
                        await proc.stdout.readexactly(header.payload) if header.payload else b""
                    )
                    self._apply(frames.make_frame(header, payload))
        except TimeoutError:
            log.warning("%s: the follower sent nothing for %gs", self.link.name, STUCK_AFTER)
        except (asyncio.IncompleteReadError, frames.FrameError) as exc:
            if isinstance(exc, frames.FrameError):
                log.warning("%s: follower: %s", self.link.name, exc)
        except (asyncssh.Error, OSError) as exc:
            log.info("%s: follower channel: %s", self.link.name, exc)
        finally:
            pinger.cancel()
            proc.close()
            self._reset()
            if self._collector is not None:
                # its last words say why the follower ended
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(self._collector, 2)
                self._collector = None

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            self._write(frames.PING)

    def _send_add(self, key: str, followed: Followed) -> None:
        self._next += 1
        ident = self._next
        old = self._ids.get(key)
        if old is not None:  # asked again (a gap): the follower drops the old id
            self._keys.pop(old, None)
            self._write(frames.drop_command(old))
        self._ids[key], self._keys[ident] = ident, key
        files = followed.files
        self._write(
            frames.add_command(
                ident,
                files.offset,
                shared=followed.shared,
                pid=followed.pid,
                run_dir=files.remote_dir,
            )
        )

    def _write(self, data: bytes) -> None:
        """Queue a command; what is queued in one pass of the loop goes as one write
        (one SSH packet for the 200 adds of a batch launch, not 200)."""
        if self._proc is None:
            return
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._send_outbox, self._proc)
        self._outbox += data

    def _send_outbox(self, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        data, self._outbox = bytes(self._outbox), bytearray()
        if proc is self._proc:
            with contextlib.suppress(asyncssh.Error, OSError, BrokenPipeError):
                proc.stdin.write(data)

    def _apply(self, frame: frames.Frame) -> None:
        self.link.counts.frames += 1
        match frame:
            case frames.LogBytes(ident, offset, data):
                self.link.counts.streamed += len(data)
                key, followed = self._target(ident)
                if followed is not None and not followed.files.append(offset, data):
                    log.warning(
                        "%s: log bytes of %s out of order; asking again", self.link.name, key
                    )
                    self._send_add(key, followed)
            case frames.ExitFile(ident, mtime, text):
                _, followed = self._target(ident, done=True)
                if followed is not None:
                    followed.exit_seen(text, mtime)
            case frames.Gone(ident):
                key, followed = self._target(ident, done=True)
                if followed is not None:
                    log.warning(
                        "%s: the wrapper of %s (pid %d) is gone without an exit file",
                        self.link.name,
                        key,
                        followed.pid,
                    )
                    followed.vanished()
            case frames.Flushed(token):
                future = self._flushes.get(token)
                if future is not None and not future.done():
                    future.set_result(True)
            case frames.Notice(text):
                log.info("%s: %s", self.link.name, text)

    def _target(self, ident: int, *, done: bool = False) -> tuple[str, Followed | None]:
        """The key and the followed of a frame's id (`done`: the follower forgot it)."""
        key = self._keys.get(ident)
        if key is None:
            return "", None
        if done:
            self._keys.pop(ident, None)
            if self._ids.get(key) == ident:
                del self._ids[key]
        return key, self.link.followed().get(key)

    def _reset(self) -> None:
        self._proc = None
        self.kind = self.pid = None
        self._ids.clear()
        self._keys.clear()
        for future in self._flushes.values():
            if not future.done():
                future.set_result(False)

    # -- the fallback: SFTP polling --------------------------------------------------------
    async def _fall_back(self, sftp: asyncssh.SFTPClient, reason: str) -> None:
        interval = self.link.cfg.poll_interval
        self.fallback = (
            f"cannot stream the logs of '{self.link.name}' ({reason}); "
            f"polling them over SFTP every {interval:g}s instead"
        )
        log.warning("%s", self.fallback)
        for key, followed in self.link.followed().items():
            self._warn(key, followed)
        await self._poll_over_sftp(sftp)

    def _warn(self, key: str, followed: Followed) -> None:
        if self.fallback is not None and key not in self._warned:
            self._warned.add(key)
            followed.warn(self.fallback)

    async def _poll_over_sftp(self, sftp: asyncssh.SFTPClient) -> None:
        """Read every followed run directory once per interval, until the connection ends."""
        while True:
            await self.link.wait_followed()
            # ticks missed while the host is unreachable are skipped (`poll`)
            async for _ in poll(self.link.cfg.poll_interval):
                followed = list(self.link.followed().values())
                if not followed:
                    break
                results = await asyncio.gather(
                    *(f.poll(sftp) for f in followed), return_exceptions=True
                )
                for target, result in zip(followed, results, strict=True):
                    if isinstance(result, Exception) and not connection_error(result):
                        log.warning("%s: polling %s failed: %r", self.link.name, target, result)


def connection_error(exc: BaseException) -> bool:
    return isinstance(
        exc,
        (asyncssh.ConnectionLost, asyncssh.DisconnectError, asyncssh.SFTPConnectionLost, OSError),
    )
