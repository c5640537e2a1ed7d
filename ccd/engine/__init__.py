"""The engine: one coroutine per job, started once its parents are final.

Every change is recorded as an `Event` through the store before or as it
happens; the engine keeps just enough in memory to drive the jobs (states,
outputs, unfinished-parent counts).

User cancel is explicit: a waiting job is settled as cancelled, a running job is
killed through its executor.  Daemon shutdown cancels the tasks, but leaves
every launched job running: the job protocol lets the next daemon adopt it.

    outcome   how an attempt ended: states, reasons, retry verdicts (pure)
    slots     the daemon-wide and per-host slot pools
    pool      local jobs' GPUs, CPUs and memory: waiters, grants, restored claims
    job       a job's in-memory state and the events that record it
    request   an attempt's command and environment
    attempt   one attempt's life: launch or adopt, timeout, kill, log markers
    run       one workflow's DAG: ready jobs, retries, cancel, skips
    engine    `Engine`: submit, retry, recover, cancel, close
"""

from __future__ import annotations

from ccd.engine.engine import Engine, new_workflow_id
from ccd.engine.outcome import Outcome, describe_exit, exit_reason, failure_kind

__all__ = ["Engine", "Outcome", "describe_exit", "exit_reason", "failure_kind", "new_workflow_id"]
