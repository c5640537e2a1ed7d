"""Jobs added to a running workflow, checked against its live DAG.

The text is a fragment of a workflow file: ``jobs:`` (and ``defaults:`` for
them). Each job is checked as in a file; the graph and reference checks see the
workflow's jobs too, as stand-ins that cannot be wrong themselves (they were
checked when they came): a new job may need any job, old or new, and refer to
outputs of its ancestors among them; a name already in the workflow, a parent
in neither, or a cycle among the new jobs is a problem at its line and column.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Final

from ccd.spec.build import Draft, build_jobs
from ccd.spec.checker import LOCALHOST, Checker
from ccd.spec.graph import graph_problems
from ccd.spec.loader import load_yaml
from ccd.spec.model import Job, Workflow
from ccd.spec.references import reference_problems

#: the top-level keys of a fragment of jobs to add
FRAGMENT_KEYS: Final = ("defaults", "jobs")


def load_added_jobs(
    text: str | bytes,
    running: Workflow,
    *,
    source: str = "<request>",
    base_dir: str | os.PathLike[str] | None,
    known_hosts: Collection[str] = (LOCALHOST,),
    local_environment: bool = False,
) -> dict[str, Job]:
    """The jobs of the fragment `text` to add to `running` (its live spec); raises
    SpecError with every problem."""
    document = load_yaml(text, source)
    base = None if base_dir is None else Path(os.path.abspath(base_dir))
    checker = _AdditionChecker(source, base, known_hosts, document.positions, local_environment)
    checker.problems.extend(document.problems)
    return checker.added(document.data, running)


class _AdditionChecker(Checker):
    def added(self, data: object, running: Workflow) -> dict[str, Job]:
        if not isinstance(data, dict):
            self.report((), "not-a-mapping", "jobs to add are a mapping with a jobs: key")
            raise self.fail()
        self.unknown_keys(data, (), FRAGMENT_KEYS, "in jobs to add")
        drafts = self._jobs(data, self._defaults(data))
        existing = stand_ins(running)
        for name, draft in drafts.items():
            if name in existing:
                self.report(
                    draft.path,
                    "duplicate-job",
                    f"workflow '{running.name}' has a job {name!r} already; "
                    "give the new job another name",
                    at_key=True,
                )
        every = {**existing, **drafts}
        self.report_all(graph_problems(every, self.suggest))
        self.report_all(reference_problems(every, self.suggest))
        if self.problems:
            raise self.fail()
        jobs, reports = build_jobs(every, only=drafts)
        self.report_all(reports)
        if self.problems:
            raise self.fail()
        return jobs


def stand_ins(running: Workflow) -> dict[str, Draft]:
    """The running workflow's jobs as drafts the graph and reference checks read:
    their parents, and an array (or a foreach job's elements) as one job with its
    values, as the file wrote it."""
    drafts: dict[str, Draft] = {}
    groups: dict[str, list[str]] = {}
    for name, job in running.jobs.items():
        element = job.array
        if element is not None:
            groups.setdefault(element.group, []).append(element.value)
            name = element.group
        if name not in drafts:
            draft = Draft(name, ("jobs", name))
            draft.needs = [_group_of(parent, running) for parent in job.needs]
            if job.foreach is not None:
                draft.fields["foreach"] = (job.foreach, ())
            drafts[name] = draft
    for group, values in groups.items():
        drafts[group].fields["array"] = (values, ())
    for draft in drafts.values():
        draft.needs = list(dict.fromkeys(draft.needs))
    return drafts


def _group_of(name: str, running: Workflow) -> str:
    job = running.jobs.get(name)
    return job.array.group if job is not None and job.array is not None else name
