"""From checked drafts to the typed model: array jobs expanded, parents resolved.

A `Draft` is a job whose fields have been checked one by one; `build_jobs`
turns the drafts of a workflow into `Job` models once the whole file is known
to be valid (an array job becomes its elements, and needing it means needing
every one of them).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError

from ccd.spec.model import ArrayElement, Job, element_name
from ccd.spec.positions import PathKey, Report


@dataclass(slots=True)
class Draft:
    """A job on its way to becoming a `Job`."""

    name: str
    path: PathKey
    #: parents, as written
    needs: list[str] = field(default_factory=list)
    #: where needs: was written, and whether as a list (each parent at its index)
    needs_path: PathKey = ()
    needs_listed: bool = False
    #: checked value of each key and where it was written (job or defaults)
    fields: dict[str, tuple[object, PathKey]] = field(default_factory=dict)
    #: env keys the job took from defaults: (merged) when it has an env: of its own too
    env_defaults: frozenset[str] = frozenset()

    def need_path(self, index: int) -> PathKey:
        """Where the `index`-th parent was named (a path per parent only when asked:
        100,000 of them would cost more than the check that may report one)."""
        return (*self.needs_path, index) if self.needs_listed else self.needs_path


def build_jobs(
    drafts: dict[str, Draft], only: Collection[str] | None = None
) -> tuple[dict[str, Job], list[Report]]:
    """The jobs of `drafts` in file order, and a report for any the model refused;
    `only`: build just these (the others stand for jobs that exist already)."""
    jobs: dict[str, Job] = {}
    reports: list[Report] = []
    arrays: dict[str, list[str]] = {
        job_name: cast(list[str], draft.fields["array"][0])
        for job_name, draft in drafts.items()
        if "array" in draft.fields
    }
    members = {
        group: [element_name(group, i) for i in range(len(items))]
        for group, items in arrays.items()
    }
    for job_name, draft in drafts.items():
        if only is not None and job_name not in only:
            continue
        values: dict[str, Any] = {key: value for key, (value, _path) in draft.fields.items()}
        values.pop("array", None)
        parents = _parents(draft.needs, members)
        try:
            if job_name in arrays:
                jobs.update(_elements(job_name, arrays[job_name], parents, values))
            else:
                jobs[job_name] = Job(name=job_name, needs=parents, **values)
        except ValidationError as exc:
            # every value was checked before, so this is a bug; still say where
            for error in exc.errors():
                where = ".".join(str(part) for part in error["loc"])
                message = (
                    f"job {job_name!r}: {where}: {error['msg']} (this is a ccd bug; "
                    "please report it with the workflow file)"
                )
                reports.append((draft.path, "invalid-job", message, True))
    return jobs, reports


def _parents(needs: list[str], members: dict[str, list[str]]) -> list[str]:
    """Each parent once, in the order written; an array job stands for its elements."""
    if members:
        return list(
            dict.fromkeys(member for parent in needs for member in members.get(parent, [parent]))
        )
    return list(dict.fromkeys(needs))


def _elements(
    group: str, items: list[str], parents: list[str], values: dict[str, Any]
) -> dict[str, Job]:
    """The element jobs of the array job `group`, one per item."""
    elements: dict[str, Job] = {}
    for index, item in enumerate(items):
        element = ArrayElement(group=group, index=index, value=item, size=len(items))
        name = element_name(group, index)
        elements[name] = Job(name=name, needs=parents, array=element, **values)
    return elements
