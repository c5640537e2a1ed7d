"""`SlurmPoller`: everything ccd asks one cluster about its jobs, in batches.

One ``squeue -t all`` per poll interval for every job of this user, whatever their
number, on a fixed grid (`poll`); one ``sacct`` per poll for the jobs that have
left the queue, when the cluster keeps accounting; cancels asked for in the same
moment share one ``scancel``.  A failing squeue changes no job's state: the
poller warns once per outage and asks less often until the controller answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from ccd.config import SlurmSettings
from ccd.executors.base import LaunchError
from ccd.executors.poll import poll
from ccd.executors.slurm.access import Cluster
from ccd.executors.slurm.model import (
    SQUEUE_COMMAND,
    Accounting,
    QueueEntry,
    expand_job_ids,
    max_array_size,
    parse_sacct,
    parse_squeue,
    queue_state,
    sacct_command,
    squeue_named_command,
)
from ccd.executors.slurm.scripts import scancel_command

log = logging.getLogger(__name__)

#: longest wait between two polls while squeue keeps failing
MAX_POLL_BACKOFF = 60.0
#: seconds to gather cancels into one scancel call
CANCEL_GATHER = 0.05
#: Slurm's default MaxArraySize, used when the cluster does not say
DEFAULT_MAX_ARRAY_SIZE = 1001


class Tracked(Protocol):
    """What the poller needs of an attempt."""

    slurm_id: str
    #: epoch seconds: bounds the window sacct searches
    submitted: float

    async def update(self, entry: QueueEntry | None, record: Accounting | None) -> None: ...

    def warn(self, message: str) -> None: ...


def _real(slurm_id: str) -> bool:
    """Whether Slurm knows this id (a recovered job Slurm forgot has ``unknown:…``)."""
    return slurm_id[:1].isdigit()


class SlurmPoller:
    """All of one cluster's jobs: one squeue per interval, batched sacct and scancel."""

    def __init__(self, cluster: Cluster, settings: SlurmSettings) -> None:
        self.cluster = cluster
        self.interval = settings.poll_interval
        self.max_scancel = settings.max_scancel_batch
        #: None: not known yet (``auto`` finds out on first use)
        self.sacct: bool | None = {"yes": True, "no": False}.get(settings.sacct)
        self._sacct_required = settings.sacct == "yes"
        self._attempts: dict[str, Tracked] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: the wait before the next squeue after a failing one; the interval while it answers
        self._backoff = self.interval
        self._to_cancel: list[Tracked] = []
        self._cancel_task: asyncio.Task[None] | None = None
        self._max_array: int | None = None

    async def run(self, command: str, stdin: str | None = None) -> tuple[int, str, str]:
        return await self.cluster.run(command, stdin)

    def follow(self, attempt: Tracked) -> None:
        self._attempts[attempt.slurm_id] = attempt
        self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(
                self._poll_forever(), name=f"slurm poll {self.cluster.name}"
            )

    def unfollow(self, attempt: Tracked) -> None:
        self._attempts.pop(attempt.slurm_id, None)

    async def close(self) -> None:
        tasks = [t for t in (self._task, self._cancel_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._cancel_task = None

    async def max_array_size(self) -> int:
        """The cluster's MaxArraySize (task ids must stay below it), asked once."""
        if self._max_array is None:
            code, out, _ = await self.run("scontrol show config")
            found = max_array_size(out) if code == 0 else None
            self._max_array = DEFAULT_MAX_ARRAY_SIZE if found is None else found
        return self._max_array

    # -- polling --------------------------------------------------------------------------
    async def _poll_forever(self) -> None:
        while True:
            if not self._attempts:
                self._changed.clear()
                await self._changed.wait()
                continue
            # An external system: asked once per interval for all jobs at once, the
            # interval counted from one squeue's start to the next one's
            async for _ in poll(self.interval):
                if not self._attempts or not await self._poll_once():
                    break
            if self._backoff > self.interval:
                # squeue failed: wait longer each time, and start a new grid after
                await asyncio.sleep(self._backoff)

    async def _poll_once(self) -> bool:
        """One squeue and what follows from it; False if squeue failed."""
        # a job submitted while squeue runs is not in its answer, yet not missing
        asked = list(self._attempts.values())
        code, out, err = await self.run(SQUEUE_COMMAND)
        if code != 0:
            # the controller or munge is down: that says nothing about the jobs
            if self._backoff == self.interval:  # once per outage, not once per poll
                self._warn_all(
                    f"squeue failed ({code}): {err.strip() or out.strip()}; job "
                    "states are kept and ccd keeps asking"
                )
            self._backoff = min(2 * self._backoff, MAX_POLL_BACKOFF)
            return False
        if self._backoff != self.interval:
            log.info("squeue on %s answers again", self.cluster.name)
            self._backoff = self.interval
        await self._apply(parse_squeue(out), asked)
        return True

    def _warn_all(self, message: str) -> None:
        log.warning("%s: %s", self.cluster.name, message)
        for attempt in list(self._attempts.values()):
            attempt.warn(message)

    async def _apply(self, entries: dict[str, QueueEntry], attempts: Sequence[Tracked]) -> None:
        # sacct for the jobs gone from the queue (how they ended) and for those squeue
        # shows ended (what they cost): one call for all of them
        ended = [
            a
            for a in attempts
            if (entry := entries.get(a.slurm_id)) is None or queue_state(entry.state) is None
        ]
        records = await self._accounting(ended) if ended else {}
        results = await asyncio.gather(
            *(a.update(entries.get(a.slurm_id), records.get(a.slurm_id)) for a in attempts),
            return_exceptions=True,
        )
        for attempt, result in zip(attempts, results, strict=True):
            if isinstance(result, Exception):
                log.warning("%s: updating %r failed: %r", self.cluster.name, attempt, result)

    async def _accounting(self, attempts: Sequence[Tracked]) -> dict[str, Accounting]:
        """One sacct for every job that left the queue (when the cluster has accounting)."""
        ids = [a.slurm_id for a in attempts if _real(a.slurm_id)]
        if self.sacct is False or not ids:
            return {}
        # an explicit window: sacct's default is "since midnight"
        since = min(a.submitted for a in attempts) - 3600
        code, out, err = await self.run(sacct_command(ids, since))
        if code == 0:
            self.sacct = True
            return parse_sacct(out)
        no_accounting = code == 127 or "accounting storage is disabled" in err.lower()
        if self.sacct is None and not self._sacct_required and no_accounting:
            self.sacct = False
            log.info(
                "%s: sacct not usable (%s); finished jobs are read from their exit files",
                self.cluster.name,
                err.strip(),
            )
        else:
            self._warn_all(f"sacct failed ({code}): {err.strip()}; ccd keeps asking")
        return {}

    # -- cancelling ---------------------------------------------------------------------
    async def cancel(self, attempt: Tracked) -> None:
        """scancel, batched: cancels asked for in the same moment share one call."""
        self._to_cancel.append(attempt)
        if self._cancel_task is None:
            self._cancel_task = asyncio.create_task(self._flush_cancels(), name="scancel")
        await asyncio.shield(self._cancel_task)

    async def _flush_cancels(self) -> None:
        # a workflow cancel wakes every job's monitor at once: let them all join
        await asyncio.sleep(CANCEL_GATHER)
        batch, self._to_cancel = self._to_cancel, []
        self._cancel_task = None
        await self._scancel([a.slurm_id for a in batch if _real(a.slurm_id)])

    async def _scancel(self, ids: list[str]) -> None:
        failed: list[str] = []
        errors: list[str] = []
        for start in range(0, len(ids), self.max_scancel):
            chunk = ids[start : start + self.max_scancel]
            code, _, err = await self.run(scancel_command(chunk))
            if code != 0:
                failed.extend(chunk)
                errors.append(err.strip())
        if failed:
            raise LaunchError(
                f"scancel failed ({'; '.join(errors)}); these Slurm jobs may still be "
                f"alive: {', '.join(failed)}"
            )

    # -- finding jobs by name -------------------------------------------------------------
    async def ids_named(self, name: str) -> list[str]:
        """Ids of this user's jobs called `name` (array elements one by one).

        While squeue cannot be asked (controller down) this waits: guessing "none"
        would submit the job a second time.
        """
        delay = self.interval
        while True:
            code, out, _ = await self.run(squeue_named_command(name))
            if code == 0:
                return [job_id for text in out.split() for job_id in expand_job_ids(text)]
            # a backoff after a failure, not a poll on the interval's grid
            await asyncio.sleep(delay)
            delay = min(2 * delay, MAX_POLL_BACKOFF)
