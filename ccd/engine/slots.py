"""The pools of running-job slots shared by every workflow: daemon-wide and per host.

A workflow's own ``concurrency`` limit is not here: `WorkflowRun` holds it.  A local
job takes, in this order: the workflow's limit, its resources (`ccd.engine.pool`),
the host's slot, the daemon's slot; one order for every job, so no two jobs can each
hold what the other waits for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ccd.config import DaemonConfig
from ccd.engine.pool import ResourcePool, is_local, pool_for, recorded_devices
from ccd.spec.model import ExecutorKind, Job


class Slots:
    """The daemon-wide and per-host pools of running-job slots."""

    def __init__(self, config: DaemonConfig) -> None:
        self._config = config
        self._global = asyncio.Semaphore(config.max_jobs)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._resources: dict[str, ResourcePool | None] = {}

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

    def resources(self, job: Job) -> ResourcePool | None:
        """The GPUs, CPUs and memory `job` takes while it runs; None: it counts none
        (not a local job, or its host declares no capacity; SSH and Slurm jobs never)."""
        if not is_local(job):
            return None
        if job.host not in self._resources:
            self._resources[job.host] = pool_for(self._config, job.host)
        return self._resources[job.host]

    def claim(self, workflow_id: str, job: Job, handle: Mapping[str, Any]) -> None:
        """Hold again what an attempt an earlier daemon launched holds (its handle
        records its GPU devices), before any new job can take it."""
        pool = self.resources(job)
        if pool is None:
            return
        amounts = pool.held_by(job)
        if amounts:
            pool.claim((workflow_id, job.name), amounts, recorded_devices(handle))

    def forget(self, workflow_id: str, job: Job) -> None:
        """`job` is final: what it still holds by a claim (an adopted attempt whose task
        never ran) is free again."""
        pool = self.resources(job)
        if pool is not None:
            pool.drop_claim((workflow_id, job.name))
