"""The pools of running-job slots shared by every workflow: daemon-wide and per host.

A workflow's own ``concurrency`` limit is not here: `WorkflowRun` holds it.
"""

from __future__ import annotations

import asyncio

from ccd.config import DaemonConfig
from ccd.spec.model import ExecutorKind, Job


class Slots:
    """The daemon-wide and per-host pools of running-job slots."""

    def __init__(self, config: DaemonConfig) -> None:
        self._config = config
        self._global = asyncio.Semaphore(config.max_jobs)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def host(self, name: str) -> asyncio.Semaphore:
        sem = self._hosts.get(name)
        if sem is None:
            sem = self._hosts[name] = asyncio.Semaphore(self._config.host_slots(name))
        return sem

    def of(self, job: Job) -> list[asyncio.Semaphore]:
        """The pools a job takes a slot of while it is launched and followed."""
        if job.executor is ExecutorKind.SLURM:
            # a batch job costs the daemon no process: only the cluster's queue limit
            key = f"slurm:{job.host}"
            sem = self._hosts.get(key)
            if sem is None:
                limit = self._config.host_config(job.host).slurm.max_jobs
                sem = self._hosts[key] = asyncio.Semaphore(limit)
            return [sem]
        return [self.host(job.host), self._global]
