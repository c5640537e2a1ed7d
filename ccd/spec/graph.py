"""Checks of the job graph: parents that are not jobs, jobs that need themselves, cycles.

`graph_problems` runs once every job's fields are checked and returns what it
finds as reports; `workflow_graph` gives the DAG of a valid workflow to whoever
wants to draw or walk it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from typing import TYPE_CHECKING

from ccd.spec.build import Draft
from ccd.spec.hints import Suggestions
from ccd.spec.model import Workflow
from ccd.spec.positions import PathKey, Report

if TYPE_CHECKING:
    import networkx as nx


def workflow_graph(wf: Workflow) -> nx.DiGraph:
    """The DAG of `wf`: one node per job (in file order), edges parent -> child."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(wf.jobs)
    for name, job in wf.jobs.items():
        graph.add_edges_from((parent, name) for parent in job.needs)
    return graph


def graph_problems(drafts: dict[str, Draft], suggest: Suggestions) -> list[Report]:
    """Unknown parents, self-dependencies and cycles among `drafts` (in file order)."""
    order = {name: index for index, name in enumerate(drafts)}
    reports, backward = _parent_problems(drafts, order, suggest)
    # Parents are usually written before their children; when every one is,
    # the file order is a topological order and there can be no cycle.
    if not backward:
        return reports
    edges = [
        (parent, child)
        for child, draft in drafts.items()
        for parent in draft.needs
        if parent != child and parent in order
    ]
    if _has_cycle(drafts, edges):
        reports.extend(_cycle_problems(drafts, edges))
    return reports


def _parent_problems(
    drafts: dict[str, Draft], order: dict[str, int], suggest: Suggestions
) -> tuple[list[Report], bool]:
    """Reports for parents that are not jobs or are the job itself, and whether any
    parent is written after its child."""
    reports: list[Report] = []
    backward = False
    for child, draft in drafts.items():
        position = order[child]
        for index, parent in enumerate(draft.needs):
            parent_position = order.get(parent)
            if parent_position is None:
                reports.append(
                    (
                        draft.need_path(index),
                        "unknown-parent",
                        f"job {child!r} needs {parent!r}, which is not a job in this "
                        f"workflow{suggest(parent, drafts)}",
                        False,
                    )
                )
            elif parent_position == position:
                reports.append(
                    (
                        draft.need_path(index),
                        "self-dependency",
                        f"job {child!r} needs itself; remove {parent!r} from its needs",
                        False,
                    )
                )
            elif parent_position > position:
                backward = True
    return reports, backward


def _has_cycle(nodes: Collection[str], edges: list[tuple[str, str]]) -> bool:
    """Kahn's algorithm: jobs on (or after) a cycle never run out of waiting parents."""
    children: dict[str, list[str]] = {node: [] for node in nodes}
    waiting = dict.fromkeys(nodes, 0)
    for parent, child in edges:
        children[parent].append(child)
        waiting[child] += 1
    ready = [node for node, count in waiting.items() if count == 0]
    done = 0
    while ready:
        done += 1
        for child in children[ready.pop()]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return done < len(waiting)


def _cycle_problems(drafts: dict[str, Draft], edges: list[tuple[str, str]]) -> list[Report]:
    """One report per strongly connected component: a shortest cycle through its
    first job, at the need that closes it."""
    # networkx only for a file with a cycle: it costs ~20 MB and 0.1 s to import,
    # and a graph of 100,000 jobs a second to build
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(drafts)
    graph.add_edges_from(edges)
    where: dict[tuple[str, str], PathKey] = {}
    for child, draft in drafts.items():
        for index, parent in enumerate(draft.needs):
            if (parent, child) not in where:
                where[(parent, child)] = draft.need_path(index)
    order = {name: index for index, name in enumerate(drafts)}
    cycles = [c for c in nx.strongly_connected_components(graph) if len(c) > 1]
    reports: list[Report] = []
    for component in sorted(cycles, key=lambda c: min(order[n] for n in c)):
        start = min(component, key=order.__getitem__)
        cycle = _cycle_through(graph, component, start)
        shown = " -> ".join([*cycle, cycle[0]])
        reports.append(
            (
                where[(cycle[-1], cycle[0])],
                "cycle",
                f"cycle: {shown} (each job needs the one before it); remove one of these needs",
                False,
            )
        )
    return reports


def _cycle_through(graph: nx.DiGraph, component: set[str], start: str) -> list[str]:
    """A shortest cycle through `start` inside its strongly connected `component`."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in graph.successors(node):
            if child not in component:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return path[::-1]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    return [start]  # unreachable for a real component; keeps the caller total
