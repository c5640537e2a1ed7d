"""The daemon's executors by kind, each created on first use.

The SSH and Slurm executors import asyncssh (with `cryptography`), ~17 MB of
resident memory and ~0.3 s of start-up for a daemon that may never run a job
anywhere but here.  Their modules are imported, and the executors created, when
a job (or `ccctl hosts check`, or `gc` of a remote run directory) first needs one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from ccd.config import DaemonConfig
from ccd.executors.base import Executor
from ccd.executors.filewatch import FileWatcher
from ccd.executors.local import LocalExecutor
from ccd.platform import Mechanisms
from ccd.spec.model import ExecutorKind

if TYPE_CHECKING:
    from ccd.executors.ssh import SshExecutor
    from ccd.executors.ssh.link import HostLink


_KINDS = frozenset(ExecutorKind)


class Executors(Mapping[ExecutorKind, Executor]):
    """Every kind is supported (iteration lists them all); a kind's executor exists
    once it was looked up."""

    def __init__(
        self, config: DaemonConfig, filewatch: FileWatcher, mechanisms: Mechanisms | None = None
    ) -> None:
        self._config = config
        self._made: dict[ExecutorKind, Executor] = {
            ExecutorKind.LOCAL: LocalExecutor(config.runs_dir, filewatch, mechanisms)
        }
        self._ssh: SshExecutor | None = None

    @property
    def ssh(self) -> SshExecutor:
        """The SSH executor: it also owns the connections Slurm-over-SSH uses."""
        if self._ssh is None:
            from ccd.executors.ssh import SshExecutor

            self._ssh = SshExecutor(self._config)
        return self._ssh

    def _link(self, host: str) -> HostLink:
        return self.ssh.link(host)

    async def run_on(self, host: str, command: str) -> tuple[int, str, str]:
        """Run a short command on a remote host over its SSH connection (e.g. reading
        a job's input files for its cache key): exit status, stdout, stderr."""
        done = await self._link(host).run(command)
        status = done.exit_status if done.exit_status is not None else 255
        return status, str(done.stdout or ""), str(done.stderr or "")

    def _make(self, kind: ExecutorKind) -> Executor:
        if kind is ExecutorKind.SSH:
            return self.ssh
        if kind is ExecutorKind.SLURM:
            from ccd.executors.slurm.executor import SlurmExecutor

            return SlurmExecutor(self._config, self._link)
        raise AssertionError(f"no executor for {kind}")  # pragma: no cover - LOCAL is made

    def __getitem__(self, kind: ExecutorKind) -> Executor:
        if kind not in self:
            raise KeyError(kind)
        kind = ExecutorKind(kind)  # a plain "ssh" finds it too, as in a dict
        executor = self._made.get(kind)
        if executor is None:
            executor = self._made[kind] = self._make(kind)
        return executor

    def __iter__(self) -> Iterator[ExecutorKind]:
        return iter(ExecutorKind)

    def __len__(self) -> int:
        return len(ExecutorKind)

    def __contains__(self, kind: object) -> bool:
        return kind in _KINDS

    async def close(self) -> None:
        """Close the executors that were created (Slurm before the SSH links it uses)."""
        for kind in (ExecutorKind.SLURM, ExecutorKind.LOCAL):
            executor = self._made.get(kind)
            if executor is not None:
                await executor.close()
        if self._ssh is not None:
            await self._ssh.close()
