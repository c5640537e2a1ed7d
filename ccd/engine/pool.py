"""Local resource slots: the GPUs, CPU cores and memory local jobs hold while they run.

A job that asks for ``resources: {gpus: N, cpus: N, mem: SIZE}`` on a host that
declares that kind (``hosts.localhost``) waits here until its whole request is free,
takes it all at once (no job ever holds a part and waits for the rest, so two jobs
cannot deadlock over it), and gives it back when the attempt ends.  Waiters are
served in arrival order, except that a later one may pass an earlier one whose
request does not fit yet when it only takes what is free beyond the earlier one's
request: a job waiting for 2 GPUs is not starved by a stream of 1-GPU jobs, while a
CPU-only job need not wait behind it.  The books themselves are `ccd.resources`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ccd.config import DaemonConfig
from ccd.errors import CcdError
from ccd.resources import Amounts, Capacity, Ledger, ResourceError, plus, requested
from ccd.spec.model import ExecutorKind, Job, Workflow

#: the handle key under which the engine records an attempt's GPU device ids
HANDLE_GPUS = "gpus"
#: the most over-capacity jobs one submit error lists
_MAX_LISTED = 10
#: a job, by (workflow id, job name)
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Grant:
    """What one attempt holds: the amounts, and which GPU devices."""

    amounts: Amounts
    devices: tuple[str, ...]


@dataclass(eq=False, slots=True)
class _Waiter:
    amounts: Amounts
    future: asyncio.Future[Grant]


class ResourcePool:
    """One host's local resources and the jobs waiting for them."""

    def __init__(self, host: str, capacity: Capacity) -> None:
        self.host = host
        self._ledger = Ledger(capacity)
        # a dict, not a deque: a cancelled waiter leaves from the middle in O(1)
        self._waiters: dict[_Waiter, None] = {}
        #: what adopted attempts hold until their task takes it over
        self._claims: dict[Key, Grant] = {}

    @property
    def free(self) -> Amounts:
        return self._ledger.free

    def amounts_of(self, job: Job) -> Amounts:
        """The part of `job`'s request this host counts; raises ResourceError, naming
        the job, for a bad value or more than the host has in all."""
        capacity = self._ledger.capacity
        try:
            amounts = capacity.limited(requested(job.resources))
        except ResourceError as exc:
            raise ResourceError(f"job '{job.name}': resources.{exc}") from None
        over = capacity.beyond(amounts)
        if over:
            raise ResourceError("; ".join(_too_much(job.name, self.host, *kind) for kind in over))
        return amounts

    def held_by(self, job: Job) -> Amounts:
        """What a running attempt of `job` holds: its request, even beyond what the
        host has now (its config may have changed since); nothing for a bad value."""
        try:
            return self._ledger.capacity.limited(requested(job.resources))
        except ResourceError:
            return Amounts()

    async def acquire(self, amounts: Amounts, waiting: Callable[[], None]) -> Grant:
        """Hold `amounts` once they are free (calls `waiting` first if they are not)."""
        waiter = _Waiter(amounts, asyncio.get_running_loop().create_future())
        self._waiters[waiter] = None
        self._wake()
        if not waiter.future.done():
            waiting()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release(waiter.future.result())  # granted just as it was cancelled
            else:
                self._waiters.pop(waiter, None)
                self._wake()  # it may have held back the waiters behind it
            raise

    def release(self, grant: Grant) -> None:
        self._ledger.give(grant.amounts, grant.devices)
        self._wake()

    def _wake(self) -> None:
        """Grant every waiter that fits, in order, each beyond what the earlier
        waiters that do not fit yet ask for."""
        reserved = Amounts()
        granted: list[_Waiter] = []
        for waiter in self._waiters:
            if self._ledger.exhausted(reserved):
                break  # the usual case: stop at once instead of walking every waiter
            if waiter.future.done():
                granted.append(waiter)  # cancelled, its task not resumed yet
            elif self._ledger.fits(waiter.amounts, reserved):
                devices = self._ledger.take(waiter.amounts)
                waiter.future.set_result(Grant(waiter.amounts, devices))
                granted.append(waiter)
            else:
                reserved = plus(reserved, waiter.amounts)
        for waiter in granted:
            del self._waiters[waiter]

    # -- adopted attempts after a restart ---------------------------------------------
    def claim(self, key: Key, amounts: Amounts, devices: Sequence[str] | None) -> None:
        """Hold what a running attempt holds already, before any new job can take it."""
        self._claims[key] = Grant(amounts, self._ledger.claim(amounts, devices))

    def take_claim(self, key: Key) -> Grant | None:
        return self._claims.pop(key, None)

    def drop_claim(self, key: Key) -> None:
        grant = self._claims.pop(key, None)
        if grant is not None:
            self.release(grant)


def _too_much(job: str, host: str, kind: str, asked: str, total: str) -> str:
    return (
        f"job '{job}' asks for {kind}: {asked}, but host '{host}' has {total} in all "
        f"(hosts.{host}.{kind} in the daemon config)"
    )


def pool_for(config: DaemonConfig, host: str) -> ResourcePool | None:
    """The resource pool of a host that declares any capacity; None: nothing to count."""
    cfg = config.hosts.get(host)
    if cfg is None or (cfg.gpus is None and cfg.cpus is None and cfg.mem is None):
        return None
    return ResourcePool(host, Capacity.of(cfg.gpus, cfg.cpus, cfg.mem))


def check_workflow(spec: Workflow, pools: Callable[[Job], ResourcePool | None]) -> None:
    """Refuse a workflow with a local job that asks for more than its host has in all
    (it would wait for ever), or for an amount that is not one; raises CcdError."""
    problems: list[str] = []
    for job in spec.jobs.values():
        pool = pools(job) if job.resources else None
        if pool is None:
            continue
        try:
            pool.amounts_of(job)
        except ResourceError as exc:
            problems.append(str(exc))
    if problems:
        more = len(problems) - _MAX_LISTED
        lines = problems[:_MAX_LISTED] + ([f"... and {more} more"] if more > 0 else [])
        raise CcdError("\n".join(lines))


def check_capacity(spec: Workflow, config: DaemonConfig) -> None:
    """`check_workflow` against the capacities `config` declares, for a validation
    that starts no engine (``ccctl validate``, ``/v1/validate``)."""
    pools: dict[str, ResourcePool | None] = {}

    def pool(job: Job) -> ResourcePool | None:
        if not is_local(job):
            return None
        if job.host not in pools:
            pools[job.host] = pool_for(config, job.host)
        return pools[job.host]

    check_workflow(spec, pool)


def gpu_env(devices: Sequence[str]) -> dict[str, str]:
    """The variables that tell a job which GPU devices it holds (none: none set)."""
    if not devices:
        return {}
    ids = ",".join(devices)
    return {"CUDA_VISIBLE_DEVICES": ids, "CCD_GPUS": ids}


def with_devices(handle: dict[str, Any], devices: Sequence[str]) -> dict[str, Any]:
    """The attempt's handle with its GPU devices, which a new daemon holds again."""
    return {**handle, HANDLE_GPUS: list(devices)} if devices else handle


def recorded_devices(handle: Mapping[str, Any]) -> list[str] | None:
    devices = handle.get(HANDLE_GPUS)
    if isinstance(devices, list) and all(isinstance(d, str) for d in devices):
        return devices
    return None


def is_local(job: Job) -> bool:
    return job.executor is ExecutorKind.LOCAL
