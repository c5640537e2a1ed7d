"""Big groups drawn as one node: the elements of an array or foreach job, over 50.

A 500-element sweep drawn element by element is a wall of boxes that Graphviz takes
seconds to lay out and nobody can read; drawn as one node ``train[×500]`` (its
colour: the most telling state among its elements, its second line: how many are
in each state, which the page keeps current) it is one box between its parents and
its children.  The page asks for a group by name to draw it element by element
(``?expand=train``).  Pure: rows in, rows out, for `ccd.cli.graph.to_dot`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any, Final

#: a group over this many elements is drawn as one node
COLLAPSE_OVER: Final = 50
#: an element's name: its group, then its index or value in brackets (`train[3]`)
ELEMENT: Final = re.compile(r"^(?P<group>.+)\[[^\[\]]*\]$")
#: which state colours a folded group: the first of these any element is in
GROUP_ORDER: Final = (
    "failed", "timed_out", "unreachable", "unknown", "running", "queued",
    "cancelled", "pending", "skipped", "succeeded",
)  # fmt: skip


def group_of(name: str) -> str | None:
    match = ELEMENT.match(name)
    return None if match is None else match["group"]


def folded_name(group: str, size: int) -> str:
    return f"{group}[×{size}]"


def group_state(states: Collection[str]) -> str:
    present = set(states)
    return next((s for s in GROUP_ORDER if s in present), "unknown")


def counts_text(states: Collection[str]) -> str:
    counts = Counter(states)
    return ", ".join(f"{counts[s]} {s}" for s in GROUP_ORDER if counts[s])


def folds(jobs: Collection[Mapping[str, Any]], expand: Collection[str] = ()) -> dict[str, str]:
    """Each element of a group to fold → its group's node name."""
    members: dict[str, list[str]] = {}
    for job in jobs:
        group = group_of(str(job["name"]))
        if group is not None:
            members.setdefault(group, []).append(str(job["name"]))
    return {
        name: folded_name(group, len(names))
        for group, names in members.items()
        if len(names) > COLLAPSE_OVER and group not in expand
        for name in names
    }


def collapse(
    jobs: list[dict[str, Any]], expand: Collection[str] = ()
) -> tuple[list[dict[str, Any]], bool]:
    """The rows to draw, big groups folded into one row each; and whether any was."""
    rename = folds(jobs, expand)
    if not rename:
        return jobs, False
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
            row.pop(key, None)  # an element's own, not the group's
    return list(out.values()), True
