"""What one attempt is launched with: its command and environment, parents' outputs resolved."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ccd.commands import ITEM_ENV, resolve
from ccd.config import DaemonConfig
from ccd.engine.job import JobRun
from ccd.executors.base import LaunchRequest
from ccd.executors.environment import effective
from ccd.spec.model import Workflow, element_name


class Outputs(Mapping[str, Mapping[str, str]]):
    """Jobs' outputs by job name, without copying them for every launch."""

    def __init__(self, jobs: Mapping[str, JobRun]) -> None:
        self._jobs = jobs

    def __getitem__(self, name: str) -> Mapping[str, str]:
        return self._jobs[name].outputs

    def __iter__(self) -> Iterator[str]:
        return iter(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)


def ancestors(spec: Workflow, job: str) -> set[str]:
    """The jobs `job` (transitively) needs."""
    seen: set[str] = set()
    todo = list(spec.jobs[job].needs)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(spec.jobs[name].needs)
    return seen


class _Ancestry:
    """Whether a job is an ancestor of one job: only asked for an output reference,
    so the parents are walked then (once) instead of keeping a graph."""

    def __init__(self, spec: Workflow, job: str) -> None:
        self._spec = spec
        self._job = job
        self._parents: frozenset[str] | None = None
        self._ancestors: set[str] | None = None

    def __call__(self, other: str) -> bool:
        # most references name a parent: no walk for those
        if self._parents is None:
            self._parents = frozenset(self._spec.jobs[self._job].needs)
        if other in self._parents:
            return True
        if self._ancestors is None:
            self._ancestors = ancestors(self._spec, self._job)
        return other in self._ancestors


def array_elements(spec: Workflow, name: str) -> list[str] | None:
    """The element names of the array job `name`, or None if it is no array job."""
    first = spec.jobs.get(element_name(name, 0))
    if first is None or first.array is None or first.array.group != name:
        return None
    return [element_name(name, index) for index in range(first.array.size)]


def launch_request(
    workflow_id: str,
    spec: Workflow,
    jobs: Mapping[str, JobRun],
    jr: JobRun,
    config: DaemonConfig,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> LaunchRequest:
    """The request for `jr`'s current attempt (`extra_env`: the engine's own variables,
    e.g. the GPU devices it holds); raises MissingOutput."""
    job = jr.spec
    base_env = {
        "CCD_WORKFLOW": spec.name,
        "CCD_WORKFLOW_ID": workflow_id,
        "CCD_JOB": job.name,
        "CCD_ATTEMPT": str(jr.attempt),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    if job.array is not None:
        base_env["CCD_ARRAY_INDEX"] = str(job.array.index)
        base_env["CCD_ARRAY_VALUE"] = job.array.value
        if job.array.foreach:
            base_env[ITEM_ENV] = job.array.value
    host = config.hosts.get(job.host)
    resolved = resolve(
        job,
        outputs=Outputs(jobs),
        is_ancestor=_Ancestry(spec, job.name),
        base_env=base_env,
        python=host.python if host is not None else "python3",
        elements=lambda name: array_elements(spec, name),
        params=spec.params,
    )
    return LaunchRequest(
        workflow_id,
        job,
        jr.attempt,
        resolved.command,
        resolved.env,
        resolved.exports,
        effective(job, host),
    )


def rerun_targets(spec: Workflow, job: str, downstream: bool) -> list[str]:
    """The jobs a rerun of `job` runs again, in spec order: the job (an array or
    foreach job: its elements), and with `downstream` every job that needs them."""
    targets = set(array_elements(spec, job) or ([job] if job in spec.jobs else []))
    if downstream and targets:
        children: dict[str, list[str]] = {}
        for name, other in spec.jobs.items():
            for parent in other.needs:
                children.setdefault(parent, []).append(name)
        todo = list(targets)
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in targets:
                    targets.add(child)
                    todo.append(child)
    return [name for name in spec.jobs if name in targets]
