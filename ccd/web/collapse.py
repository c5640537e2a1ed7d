"""Big groups drawn as one node: an array's or foreach's elements, or a fan-out, over 50.

A 500-element sweep drawn element by element is a wall of boxes that Graphviz takes
seconds to lay out and nobody can read; drawn as one node (its colour: the most
telling state among its members, its second line: how many are in each state,
which the page keeps current) it is one box between its parents and its children.
Two kinds of group are folded: the elements of one job (``train[0]``, ``train[1]``,
…: ``train[×500]``), and, among the other jobs, those with the same parents and the
same children (a fan-out a script generated: ``fit-0 … fit-499 [×500]``).  The page
asks for a group by its node's name to draw it member by member (``?expand=``).
Pure: rows in, rows out, for `ccd.cli.graph.to_dot`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any, Final

#: a group over this many members is drawn as one node
COLLAPSE_OVER: Final = 50
#: an element's name: its group, then its index or value in brackets (`train[3]`)
ELEMENT: Final = re.compile(r"^(?P<group>.+)\[[^\[\]]*\]$")
#: which state colours a folded group: the first of these any member is in
GROUP_ORDER: Final = (
    "failed", "timed_out", "unreachable", "unknown", "running", "queued",
    "cancelled", "pending", "skipped", "succeeded",
)  # fmt: skip

Job = Mapping[str, Any]


def group_of(name: str) -> str | None:
    match = ELEMENT.match(name)
    return None if match is None else match["group"]


def group_state(states: Collection[str]) -> str:
    present = set(states)
    return next((s for s in GROUP_ORDER if s in present), "unknown")


def counts_text(states: Collection[str]) -> str:
    counts = Counter(states)
    return ", ".join(f"{counts[s]} {s}" for s in GROUP_ORDER if counts[s])


def _elements(jobs: Collection[Job]) -> dict[str, list[str]]:
    """Folded node name → the elements of each job with more than enough of them."""
    members: dict[str, list[str]] = {}
    for job in jobs:
        group = group_of(str(job["name"]))
        if group is not None:
            members.setdefault(group, []).append(str(job["name"]))
    return {f"{g}[×{len(n)}]": n for g, n in members.items() if len(n) > COLLAPSE_OVER}


def _fans(jobs: Collection[Job], taken: Collection[str]) -> dict[str, list[str]]:
    """Folded node name → jobs (not `taken`) with the same parents and children."""
    children: dict[str, list[str]] = {}
    for job in jobs:
        for parent in job.get("needs", []):
            children.setdefault(parent, []).append(str(job["name"]))
    alike: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for job in jobs:
        name = str(job["name"])
        if name not in taken:
            key = (tuple(sorted(job.get("needs", []))), tuple(sorted(children.get(name, []))))
            alike.setdefault(key, []).append(name)
    return {
        f"{names[0]} … {names[-1]} [×{len(names)}]": names
        for names in alike.values()
        if len(names) > COLLAPSE_OVER
    }


def groups(
    jobs: Collection[Job], expand: Collection[str] = (), keep: Collection[str] = ()
) -> dict[str, list[str]]:
    """The groups to fold: node name → members; not those named in `expand`, nor a
    group with a job of `keep` in it (the job a neighbourhood is drawn around)."""
    found = _elements(jobs)
    found.update(_fans(jobs, {m for members in found.values() for m in members}))
    kept = set(keep)
    return {
        name: members
        for name, members in found.items()
        if name not in expand and not kept.intersection(members)
    }


def collapse(
    jobs: list[dict[str, Any]], expand: Collection[str] = (), keep: Collection[str] = ()
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The rows to draw, each folded group one row; and the groups (node → members)."""
    folded = groups(jobs, expand, keep)
    if not folded:
        return jobs, {}
    rename = {member: name for name, members in folded.items() for member in members}
    out: dict[str, dict[str, Any]] = {}
    states: dict[str, list[str]] = {}
    for job in jobs:
        name = rename.get(job["name"], job["name"])
        needs = [rename.get(parent, parent) for parent in job.get("needs", [])]
        row = out.get(name)
        if row is None:
            row = out[name] = {**job, "name": name, "needs": []}
        row["needs"] = list(dict.fromkeys([*row["needs"], *(p for p in needs if p != name)]))
        if name != job["name"]:
            states.setdefault(name, []).append(str(job["state"]))
    for name, seen in states.items():
        row = out[name]
        row.update(state=group_state(seen), progress=None, message=counts_text(seen))
        for key in ("host", "executor", "attempt", "exit_code", "reason"):
            row.pop(key, None)  # a member's own, not the group's
    return list(out.values()), folded
