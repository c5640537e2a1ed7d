"""What one attempt is launched with: its command and environment, parents' outputs resolved."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ccd.commands import resolve
from ccd.config import DaemonConfig
from ccd.engine.job import JobRun
from ccd.executors.base import LaunchRequest
from ccd.spec.model import Workflow


class _Outputs(Mapping[str, Mapping[str, str]]):
    """Jobs' outputs by job name, without copying them for every launch."""

    def __init__(self, jobs: Mapping[str, JobRun]) -> None:
        self._jobs = jobs

    def __getitem__(self, name: str) -> Mapping[str, str]:
        return self._jobs[name].outputs

    def __iter__(self) -> Iterator[str]:
        return iter(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)


def is_ancestor(spec: Workflow, ancestor: str, job: str) -> bool:
    """Whether `job` (transitively) needs `ancestor`: only asked for an output
    reference, so the parents are walked then instead of keeping a graph."""
    seen: set[str] = set()
    todo = list(spec.jobs[job].needs)
    while todo:
        name = todo.pop()
        if name == ancestor:
            return True
        if name not in seen:
            seen.add(name)
            todo.extend(spec.jobs[name].needs)
    return False


def launch_request(
    workflow_id: str,
    spec: Workflow,
    jobs: Mapping[str, JobRun],
    jr: JobRun,
    config: DaemonConfig,
) -> LaunchRequest:
    """The request for `jr`'s current attempt; raises MissingOutput."""
    job = jr.spec
    base_env = {
        "CCD_WORKFLOW": spec.name,
        "CCD_WORKFLOW_ID": workflow_id,
        "CCD_JOB": job.name,
        "CCD_ATTEMPT": str(jr.attempt),
        "PYTHONUNBUFFERED": "1",
    }
    if job.array is not None:
        base_env["CCD_ARRAY_INDEX"] = str(job.array.index)
        base_env["CCD_ARRAY_VALUE"] = job.array.value
    host = config.hosts.get(job.host)
    resolved = resolve(
        job,
        outputs=_Outputs(jobs),
        is_ancestor=lambda other: is_ancestor(spec, other, job.name),
        base_env=base_env,
        python=host.python if host is not None else "python3",
    )
    return LaunchRequest(workflow_id, job, jr.attempt, resolved.command, resolved.env)
