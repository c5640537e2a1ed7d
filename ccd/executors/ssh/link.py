"""One remote host: its connection, its channel budget and its stream.

A `HostLink` keeps one asyncssh connection to the host (with keepalives), opened
on demand and re-opened with backoff when it drops, plus one SFTP session on it
(uploads, and the fallback).  Short exec channels launch and signal jobs, at most
`max_channels` at a time so a server's ``MaxSessions`` is never exceeded, and
launches or kills asked for in the same moment share one (`launch`).  Every
running job's log and exit file come from the host's follower over one more
channel (`stream`), or, where it cannot run, from an SFTP poller.  No job holds
a channel while it runs, so 1,000 jobs fit in sshd's default of 10.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import asyncssh

from ccd.config import HostConfig
from ccd.executors.base import LaunchError
from ccd.executors.ssh.counts import Counts, count_sftp_requests
from ccd.executors.ssh.launch import (
    Batcher,
    Start,
    kill_command,
    launch_answer,
    launch_script,
)
from ccd.executors.ssh.stream import Followed, HostStream

log = logging.getLogger(__name__)

#: reconnect delays grow to this (seconds)
MAX_BACKOFF = 30.0
#: where run directories live on a host whose config sets no ``workdir:``
DEFAULT_REMOTE_ROOT = "~/.ccd/runs"


class HostFatal(LaunchError):
    """The host refuses us for a reason retrying will not fix (host key, authentication)."""


def describe_fatal(host: str, exc: Exception) -> str | None:
    """A user-facing message when `exc` will not go away by retrying, else None."""
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return (
            f"host key of '{host}' not verified ({exc.reason}). If the host is new, check "
            f"its fingerprint and add it: ssh-keyscan -p PORT HOSTNAME >> ~/.ssh/known_hosts "
            f"(or set known_hosts: in ccd's hosts config). If the key changed, find out why "
            f"before removing the old entry with ssh-keygen -R."
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return (
            f"authentication to '{host}' failed ({exc.reason}); check the user and "
            f"identity_file in ccd's hosts config or ~/.ssh/config, and that the key is "
            f"in the remote authorized_keys"
        )
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host '{host}': {exc.strerror}; check its hostname"
    if isinstance(exc, asyncssh.ConfigParseError):
        return f"ssh config error for '{host}': {exc}"
    return None


class HostLink:
    def __init__(self, name: str, cfg: HostConfig, ssh_config: Path) -> None:
        self.name = name
        self.cfg = cfg
        self._ssh_config = ssh_config
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._up = asyncio.Event()
        self._fatal: str | None = None
        self._fatal_changed = asyncio.Event()
        self._channels = asyncio.Semaphore(cfg.max_channels)
        self._followed: dict[str, Followed] = {}
        self._followed_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self.home: str = ""
        #: bumped on every new connection: SFTP file handles of an older one are dead
        self.generation = 0
        self.last_error: str | None = None
        self.counts = Counts()
        self.stream = HostStream(self)
        self._launches: Batcher[Start, int] = Batcher(self._launch_batch)
        self._kills = {sig: Batcher(self._kill_batch(sig)) for sig in ("TERM", "KILL")}

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._supervise(), name=f"ssh {self.name}")]

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        """Run `work` in the background, owned by the link (cancelled when it closes)."""
        task = asyncio.create_task(work, name=f"{name} on {self.name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        await self._launches.close()
        for kills in self._kills.values():
            await kills.close()
        tasks = [*self._tasks, *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(Exception):
                await self._conn.wait_closed()
        self._conn = self._sftp = None
        self._up.clear()

    def _connect_options(self) -> dict[str, Any]:
        cfg = self.cfg
        options: dict[str, Any] = {
            "keepalive_interval": cfg.keepalive_interval,
            "keepalive_count_max": cfg.keepalive_count_max,
            "connect_timeout": cfg.connect_timeout,
        }
        if self._ssh_config.exists():
            options["config"] = [str(self._ssh_config)]
        if cfg.port is not None:
            options["port"] = cfg.port
        if cfg.user is not None:
            options["username"] = cfg.user
        if cfg.identity_file is not None:
            options["client_keys"] = [str(Path(cfg.identity_file).expanduser())]
        if cfg.known_hosts is not None:
            options["known_hosts"] = str(Path(cfg.known_hosts).expanduser())
        return options

    async def _supervise(self) -> None:
        """Keep one connection open; reconnect with backoff; tell attempts when it drops."""
        backoff = 1.0
        while True:
            try:
                conn = await asyncssh.connect(
                    self.cfg.hostname or self.name, **self._connect_options()
                )
                sftp = await conn.start_sftp_client()
                count_sftp_requests(sftp, self.counts)
                self.home = await sftp.realpath(".")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every connect failure is reported, none is fatal here
                fatal = describe_fatal(self.name, exc)
                self._set_down(fatal or f"cannot connect to '{self.name}': {exc}", fatal)
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, MAX_BACKOFF)
                continue
            backoff = 1.0
            self._conn, self._sftp = conn, sftp
            self.generation += 1
            self._fatal = None
            self.last_error = None
            self._up.set()
            log.info("connected to %s", self.name)
            for followed in list(self._followed.values()):
                followed.reachability(True, None)
            serving = asyncio.create_task(self._serve(conn, sftp), name=f"ssh follow {self.name}")
            try:
                await conn.wait_closed()
            finally:
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
            self._conn = self._sftp = None
            self._set_down(f"connection to '{self.name}' lost; reconnecting", None)

    async def _serve(self, conn: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient) -> None:
        try:
            await self.stream.serve(conn, sftp)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug: say so, and let the connection be used anyway
            log.exception("%s: following jobs failed", self.name)

    def _set_down(self, reason: str, fatal: str | None) -> None:
        was_up = self._up.is_set()
        self._up.clear()
        self.last_error = reason
        if fatal != self._fatal:
            self._fatal = fatal
            self._fatal_changed.set()
        if was_up or fatal:
            log.warning("%s", reason)
        for followed in list(self._followed.values()):
            followed.reachability(False, reason)

    # -- using the connection --------------------------------------------------------
    async def ready(
        self, *, fail_fast: bool
    ) -> tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient]:
        """The live connection; waits while the host is unreachable.

        With `fail_fast`, a refusal that retrying cannot fix (host key, auth) raises
        `HostFatal` instead of waiting for the user to fix it.
        """
        self.start()
        while True:
            if self._up.is_set() and self._conn is not None and self._sftp is not None:
                return self._conn, self._sftp
            if fail_fast and self._fatal is not None:
                raise HostFatal(self._fatal)
            self._fatal_changed.clear()
            up = asyncio.ensure_future(self._up.wait())
            fatal = asyncio.ensure_future(self._fatal_changed.wait())
            try:
                await asyncio.wait({up, fatal}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                up.cancel()
                fatal.cancel()

    async def run(
        self, command: str, *, stdin: str | None = None, fail_fast: bool = False
    ) -> asyncssh.SSHCompletedProcess:
        """Run a short command on its own exec channel, within the channel budget."""
        while True:
            conn, _ = await self.ready(fail_fast=fail_fast)
            async with self._channels:
                self.counts.execs += 1
                try:
                    return await conn.run(command, input=stdin, check=False)
                except asyncssh.ChannelOpenError as exc:
                    # the server allows fewer sessions than we assumed: retry shortly
                    log.warning("%s refused a channel (%s); retrying", self.name, exc.reason)
                    await asyncio.sleep(0.2)
                except (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError) as exc:
                    log.warning("%s: connection dropped during a command (%s)", self.name, exc)
                    await asyncio.sleep(0.1)  # the supervisor notices and reconnects

    async def run_lines(
        self, command: str, stdin: str, on_line: Callable[[str], None]
    ) -> tuple[int, str]:
        """Run `command` (fail fast) like `run`, handing each line of its output to
        `on_line` as it comes; (exit status, stderr).  Retried after a dropped
        connection, so a line may come twice: `on_line` must not mind."""
        while True:
            conn, _ = await self.ready(fail_fast=True)
            async with self._channels:
                self.counts.execs += 1
                try:
                    async with conn.create_process(command, input=stdin) as proc:
                        stderr = asyncio.ensure_future(proc.stderr.read())
                        async for line in proc.stdout:
                            on_line(line)
                        await proc.wait()
                        return proc.exit_status or 0, str(await stderr)
                except asyncssh.ChannelOpenError as exc:
                    log.warning("%s refused a channel (%s); retrying", self.name, exc.reason)
                    await asyncio.sleep(0.2)
                except (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError) as exc:
                    log.warning("%s: connection dropped during a command (%s)", self.name, exc)
                    await asyncio.sleep(0.1)  # the supervisor notices and reconnects

    # -- launching and signalling, batched ------------------------------------------------
    async def launch(self, run_dir: str, wrapper: str) -> int:
        """Start one attempt's wrapper detached (with others asked for now); its pid."""
        return await self._launches.submit(Start(run_dir, wrapper))

    async def _launch_batch(
        self, starts: list[Start], deliver: Callable[[int, int | Exception], None]
    ) -> None:
        failed: list[int] = []

        def answer(line: str) -> None:
            found = launch_answer(line)
            if found is None:
                return
            index, pid = found
            if pid is not None:
                deliver(index, pid)  # that job runs: the engine hears of it now
            else:
                failed.append(index)

        self.counts.launch_execs += 1
        self.counts.launched += len(starts)
        status, stderr = await self.run_lines("sh -s", launch_script(starts), answer)
        why = stderr.strip() or f"the launch script ended with status {status}"
        for index in failed:
            deliver(index, LaunchError(f"cannot start the job in {starts[index].run_dir}: {why}"))
        for index, start in enumerate(starts):  # those it never answered for
            deliver(index, LaunchError(f"cannot start the job in {start.run_dir}: {why}"))

    async def signal(self, pid: int, sig: str) -> None:
        """Send `sig` (TERM or KILL) to the process group `pid` leads."""
        await self._kills[sig].submit(pid)

    def _kill_batch(
        self, sig: str
    ) -> Callable[[list[int], Callable[[int, Exception | None], None]], Awaitable[None]]:
        async def kill(pids: list[int], deliver: Callable[[int, Exception | None], None]) -> None:
            await self.run(kill_command(pids, sig))
            for index in range(len(pids)):
                deliver(index, None)

        return kill

    # -- following attempts ----------------------------------------------------------
    def follow(self, key: str, followed: Followed) -> None:
        self._followed[key] = followed
        self._followed_changed.set()
        self.start()
        self.stream.add(key, followed)
        if not self._up.is_set() and self.last_error is not None:
            followed.reachability(False, self.last_error)

    def unfollow(self, key: str) -> None:
        if self._followed.pop(key, None) is not None:
            self.stream.drop(key)

    def followed(self) -> Mapping[str, Followed]:
        return self._followed

    async def wait_followed(self) -> None:
        while not self._followed:
            self._followed_changed.clear()
            await self._followed_changed.wait()

    async def sync(self, key: str) -> None:
        """Bring `key`'s local copy up to date with the host now (its exit file too):
        through the follower, or over SFTP where none streams.  Waits for the host."""
        while key in self._followed:
            _, sftp = await self.ready(fail_fast=False)
            if await self.stream.flush(key):
                return
            followed = self._followed.get(key)
            if followed is None:
                return  # ended meanwhile
            if self.stream.kind is not None:
                await asyncio.sleep(0.05)  # a follower is starting: ask it
                continue
            try:
                await followed.refresh(sftp)
                return
            except (asyncssh.Error, OSError) as exc:
                log.info("%s: reading %s again after %s", self.name, key, exc)
                await asyncio.sleep(0.1)  # the supervisor notices and reconnects

    def stats(self) -> dict[str, Any]:
        """The link's state and counters (``GET /v1/hosts/NAME/link``)."""
        return {
            "host": self.name,
            "connected": self._up.is_set(),
            "follower": self.stream.kind,
            "follower_pid": self.stream.pid,
            "fallback": self.stream.fallback,
            "followed": len(self._followed),
            **self.counts.as_dict(),
        }

    def runs_root(self) -> str:
        """The host's runs directory, ``~`` resolved (so: once connected)."""
        return self.remote_path(self.cfg.workdir or DEFAULT_REMOTE_ROOT)

    def remote_path(self, path: str) -> str:
        """`path` with a leading ``~`` replaced by the remote home (known once connected)."""
        if path == "~":
            return self.home
        if path.startswith("~/"):
            return f"{self.home}/{path[2:]}"
        return path
