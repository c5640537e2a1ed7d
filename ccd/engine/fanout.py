"""``foreach:``: a job that becomes one element per item when its list is known (pure).

The list is a literal in the file, or an output of an ancestor holding a JSON
list (a whole array's or foreach job's output is the list of its elements'
values). When the job's parents have succeeded, the engine asks `items` for the
list and `elements` for the jobs that replace it: ``NAME[0]``, ``NAME[1]``, …,
each with the foreach job's parents, and `rewired` for its children, which then
wait for every element. The replacement is one event (``workflow.jobs_added``),
written before any element starts, so a restart sees either the foreach job
(and expands it again: nothing of it ran) or its elements, never both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ccd.spec.model import ArrayElement, Job, Workflow, element_name
from ccd.spec.references import Reference, parse

#: how much of a value that is not a JSON list a failure shows
SHOWN_BYTES = 200


class ForeachFailed(Exception):
    """The list cannot be had; the message names the parent, its output and what it held."""


def items(
    job: Job,
    outputs: Mapping[str, Mapping[str, str]],
    elements_of: Callable[[str], Sequence[str] | None],
) -> list[Any]:
    """The items `job` fans out over."""
    source = job.foreach
    if isinstance(source, list):
        return source
    assert isinstance(source, str)
    [ref] = parse(source.strip())
    assert isinstance(ref, Reference)
    members = elements_of(ref.job) if ref.index is None else None
    if members is not None:
        # a whole array's output: the list of its elements' values
        return [_output(ref, name, outputs) for name in members]
    text = _output(ref, ref.source, outputs)
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list):
        shown = text.encode()[:SHOWN_BYTES].decode(errors="replace")
        more = "…" if len(text.encode()) > SHOWN_BYTES else ""
        raise ForeachFailed(
            f"foreach: output '{ref.key}' of job '{ref.source}' is not a JSON list; "
            f"it holds {shown!r}{more}"
        )
    return value


def _output(ref: Reference, job: str, outputs: Mapping[str, Mapping[str, str]]) -> str:
    value = outputs.get(job, {}).get(ref.key)
    if value is None:
        raise ForeachFailed(
            f"foreach: job '{job}' set no output '{ref.key}' "
            f"(print '::ccd output {ref.key}=[...]' in it)"
        )
    return value


def item_text(item: Any) -> str:
    """An item as ``$CCD_ITEM`` holds it: a text as itself, anything else as JSON."""
    return item if isinstance(item, str) else json.dumps(item)


def elements(job: Job, texts: Sequence[str]) -> dict[str, Job]:
    """The jobs that replace `job`, one per item (`item_text` of each), in order."""
    size = len(texts)
    made: dict[str, Job] = {}
    for index, text in enumerate(texts):
        name = element_name(job.name, index)
        element = ArrayElement(group=job.name, index=index, value=text, size=size, foreach=True)
        made[name] = job.model_copy(
            update={"name": name, "foreach": None, "items": None, "array": element}
        )
    return made


def expanded(spec: Workflow) -> Workflow:
    """The DAG a stored spec runs as: each foreach job that fanned out (its ``items``
    recorded) replaced by its elements, its children needing all of them.

    The stored spec keeps the foreach job as written, so an export shows it so and
    the event that recorded the items stays small (the items, not 10,000 jobs)."""
    fanned = {name: job for name, job in spec.jobs.items() if job.items is not None}
    if not fanned:
        return spec
    members = {name: [element_name(name, i) for i in range(len(job.items or []))]
               for name, job in fanned.items()}  # fmt: skip
    jobs: dict[str, Job] = {}
    for name, job in spec.jobs.items():
        if name in fanned:
            jobs.update(elements(job, job.items or []))
        elif any(parent in fanned for parent in job.needs):
            needs = [m for parent in job.needs for m in members.get(parent, [parent])]
            jobs[name] = job.model_copy(update={"needs": list(dict.fromkeys(needs))})
        else:
            jobs[name] = job
    return spec.model_copy(update={"jobs": jobs})


def rewired(children: Iterable[Job], replaced: str, members: Sequence[str]) -> dict[str, Job]:
    """`children` of the job `replaced`, each needing every one of its `members` instead."""
    result: dict[str, Job] = {}
    for child in children:
        needs: list[str] = []
        for parent in child.needs:
            needs.extend(members if parent == replaced else (parent,))
        result[child.name] = child.model_copy(update={"needs": list(dict.fromkeys(needs))})
    return result
