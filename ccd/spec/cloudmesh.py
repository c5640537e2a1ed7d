"""cloudmesh-cc workflow files, converted to ccd's format before validation.

cloudmesh-cc writes::

    workflow:                      # or "cloudmesh:" in some of its examples
      nodes:
        start: {name: start, kind: local, host: local, exec: echo start, label: ...}
        train: {kind: ssh, host: rivanna, script: train.sh, user: ...}
      dependencies:
        - start,train,end          # a chain: start -> train -> end
    colors: {status: {...}}        # display only

The conversion keeps what decides how a job runs and ignores what cloudmesh-cc
used for drawing and bookkeeping:

* ``kind`` local/localhost -> executor local (then the job runs here whatever
  ``host`` says, as in cloudmesh-cc), ssh -> ssh, slurm -> slurm;
* ``host`` local/localhost -> localhost;
* ``exec``: a single ``.sh``/``.py``/``.ipynb`` file name is a script, anything
  else a command; ``script``: a file. When both are given the script wins if the
  file exists (cloudmesh-cc ran the script), else the command runs. With
  neither, cloudmesh-cc ran ``<name>.sh``; so does ccd if that file exists;
* ``parent`` lists (in files cloudmesh-cc saved with state) and
  ``dependencies`` (chains, or the saved ``{source, destination}`` form) become
  ``needs``;
* ``user``, ``venv``, ``directory`` and ``output`` are ignored: ccd takes the
  login from the host configuration and runs each attempt in its own
  directory. ccd's own job keys (env, retries, timeout, ...) may be used too.

A node that appears in no dependency still runs. Problems are reported against
the original file; the converted data comes with positions that point back to
where each value was written.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ccd.spec.hints import show
from ccd.spec.positions import PathKey, Pos, PositionLookup, Report, path_part

TOP_KEYS: Final = ("workflow", "cloudmesh", "name", "colors")
WORKFLOW_KEYS: Final = ("nodes", "dependencies", "name", "layout", "colors")
#: node keys that decide how the job runs
NODE_KEYS: Final = ("name", "kind", "host", "exec", "script", "parent")
#: ccd job keys a cloudmesh node may carry as well
CCD_KEYS: Final = (
    "args",
    "env",
    "retries",
    "retry_delay",
    "retry_backoff",
    "timeout",
    "workdir",
    "progress_regex",
    "resources",
)
#: keys cloudmesh-cc writes for display and bookkeeping; accepted and ignored
IGNORED_KEYS: Final = frozenset(
    {
        "label",
        "label_format",
        "format",
        "shape",
        "style",
        "color",
        "colors",
        "fillcolor",
        "status",
        "progress",
        "number",
        "created",
        "modified",
        "instance",
        "pid",
        "tstart",
        "tend",
        "user",
        "venv",
        "directory",
        "output",
    }
)
_KINDS: Final = {"local": "local", "localhost": "local", "ssh": "ssh", "slurm": "slurm"}
_LOCAL_HOSTS: Final = frozenset({"local", "localhost"})
_SCRIPT_FILE = re.compile(r"\S+\.(?:sh|py|ipynb)")


@dataclass(slots=True)
class Converted:
    #: the workflow in ccd's format, or None when there is nothing to validate
    data: dict[str, Any] | None
    positions: PositionLookup
    problems: list[Report] = field(default_factory=list)
    #: jobs without a usable command; their problem is already in `problems`
    commandless: frozenset[str] = frozenset()


def is_cloudmesh(data: dict[Any, Any]) -> bool:
    """Does this top-level mapping look like a cloudmesh-cc workflow?"""
    return "jobs" not in data and ("workflow" in data or "cloudmesh" in data)


def convert(data: dict[Any, Any], positions: PositionLookup, *, base_dir: Path | None) -> Converted:
    """Convert a cloudmesh-cc workflow (see the module docstring)."""
    return _Converter(positions, base_dir).run(data)


class RemappedPositions:
    """Positions of converted data, looked up where the original was written."""

    def __init__(self, original: PositionLookup) -> None:
        self.original = original
        #: converted path prefix -> original path prefix
        self.prefixes: dict[PathKey, PathKey] = {(): ()}

    def key(self, path: PathKey) -> Pos:
        return self.original.key(self._translate(path))

    def value(self, path: PathKey) -> Pos:
        return self.original.value(self._translate(path))

    def _translate(self, path: PathKey) -> PathKey:
        for end in range(len(path), -1, -1):
            target = self.prefixes.get(path[:end])
            if target is not None:
                return (*target, *path[end:])
        return path


class _Converter:
    def __init__(self, positions: PositionLookup, base_dir: Path | None) -> None:
        self.positions = RemappedPositions(positions)
        self.base_dir = base_dir
        self.problems: list[Report] = []
        self.commandless: set[str] = set()
        self.root: PathKey = ("workflow",)
        self.suggestion_work = 100_000

    def report(self, path: PathKey, code: str, message: str, *, at_key: bool = False) -> None:
        self.problems.append((path, code, message, at_key))

    def map(self, new: PathKey, old: PathKey) -> None:
        self.positions.prefixes[new] = old

    def run(self, data: dict[Any, Any]) -> Converted:
        self._unknown(data, (), TOP_KEYS, "at the top level of a cloudmesh-cc workflow")
        if "workflow" in data and "cloudmesh" in data:
            self.report(
                ("cloudmesh",),
                "unknown-key",
                "give either workflow: or cloudmesh:, not both; ccd reads workflow:",
                at_key=True,
            )
        key = "workflow" if "workflow" in data else "cloudmesh"
        self.root = (key,)
        body = data[key]
        if not isinstance(body, dict):
            self.report(self.root, "wrong-type", f"{key}: must be a mapping with nodes:")
            return self._result(None)
        self._unknown(body, self.root, WORKFLOW_KEYS, f"in {key}:")
        converted: dict[str, Any] = {}
        name_path = ("name",) if "name" in data else (*self.root, "name")
        if "name" in data or "name" in body:
            converted["name"] = data["name"] if "name" in data else body["name"]
            self.map(("name",), name_path)
        jobs = self._nodes(body)
        if jobs is None:
            return self._result(None)
        self._dependencies(body.get("dependencies"), jobs)
        converted["jobs"] = jobs
        return self._result(converted)

    def _result(self, data: dict[str, Any] | None) -> Converted:
        return Converted(data, self.positions, self.problems, frozenset(self.commandless))

    def _unknown(
        self,
        mapping: dict[Any, Any],
        path: PathKey,
        allowed: Collection[str],
        where: str,
        ignored: Collection[str] = (),
    ) -> None:
        for key in mapping:
            if key in allowed or key in ignored:
                continue
            close = (
                difflib.get_close_matches(key, [*allowed, *ignored], n=1, cutoff=0.6)
                if isinstance(key, str)
                else []
            )
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.report(
                (*path, path_part(key)),
                "unknown-key",
                f"unknown key {show(key)} {where}{hint}",
                at_key=True,
            )

    # Nodes --------------------------------------------------------------------

    def _nodes(self, body: dict[Any, Any]) -> dict[Any, dict[str, Any]] | None:
        nodes = body.get("nodes")
        nodes_path = (*self.root, "nodes")
        if not nodes:
            self.report(
                nodes_path if "nodes" in body else self.root,
                "no-jobs",
                "no nodes: a cloudmesh-cc workflow lists its jobs under nodes:",
                at_key=True,
            )
            return None
        if not isinstance(nodes, dict):
            self.report(nodes_path, "wrong-type", "nodes: must be a mapping of node names to nodes")
            return None
        self.map(("jobs",), nodes_path)
        jobs: dict[Any, dict[str, Any]] = {}
        for key, node in nodes.items():
            old = (*nodes_path, path_part(key))
            self.map(("jobs", path_part(key)), old)
            jobs[key] = self._node(key, node, old)
        return jobs

    def _node(self, key: object, node: object, old: PathKey) -> dict[str, Any]:
        name = str(key)
        new: PathKey = ("jobs", path_part(key))
        if not isinstance(node, dict):
            self.report(
                old,
                "wrong-type",
                f"node {name!r} must be a mapping with exec: or script:",
                at_key=node is None,
            )
            self.commandless.add(name)
            return {}
        self._unknown(node, old, (*NODE_KEYS, *CCD_KEYS), f"in node {name!r}", IGNORED_KEYS)
        if "name" in node and node["name"] != key:
            self.report(
                (*old, "name"),
                "bad-value",
                f"node {name!r} has name: {node['name']!r}; make them the same",
            )
        job: dict[str, Any] = {}
        for ccd_key in CCD_KEYS:
            if ccd_key in node:
                job[ccd_key] = node[ccd_key]
        self._placement(node, old, job)
        self._command(name, node, old, job)
        parents = node.get("parent")
        if parents:
            job["needs"] = self._parents(parents, (*old, "parent"), new)
        return job

    def _placement(self, node: dict[Any, Any], old: PathKey, job: dict[str, Any]) -> None:
        new = ("jobs", old[-1])
        kind = node.get("kind")
        executor: str | None = None
        if kind is not None:
            executor = _KINDS.get(kind) if isinstance(kind, str) else None
            if executor is None:
                self.report(
                    (*old, "kind"),
                    "unknown-executor",
                    f"kind {kind!r} is not supported by ccd; use local, ssh or slurm",
                )
            else:
                job["executor"] = executor
                self.map((*new, "executor"), (*old, "kind"))
        host = node.get("host")
        if executor == "local":
            return  # cloudmesh-cc ran local jobs here whatever host said
        if host is not None:
            job["host"] = "localhost" if isinstance(host, str) and host in _LOCAL_HOSTS else host
            self.map((*new, "host"), (*old, "host"))

    def _command(self, name: str, node: dict[Any, Any], old: PathKey, job: dict[str, Any]) -> None:
        new = ("jobs", old[-1])
        command, script = node.get("exec"), node.get("script")
        for key, value in (("exec", command), ("script", script)):
            if value is not None and not isinstance(value, str):
                self.report(
                    (*old, key),
                    "wrong-type",
                    f"{key} must be text (a command, or a .sh, .py or .ipynb file)",
                )
                self.commandless.add(name)
                return
        if isinstance(script, str) and self._exists(script):
            job["script"] = script
            self.map((*new, "script"), (*old, "script"))
        elif isinstance(command, str):
            target = "script" if _SCRIPT_FILE.fullmatch(command.strip()) else "run"
            job[target] = command.strip() if target == "script" else command
            self.map((*new, target), (*old, "exec"))
        elif isinstance(script, str):
            job["script"] = script  # validation reports that it does not exist
            self.map((*new, "script"), (*old, "script"))
        elif self._exists(f"{name}.sh"):
            job["script"] = f"{name}.sh"
        else:
            self.report(
                old,
                "missing-command",
                f"node {name!r} has neither exec: nor script:, and {name}.sh (which "
                "cloudmesh-cc would run) is not next to the workflow file; add one of them",
                at_key=True,
            )
            self.commandless.add(name)

    def _exists(self, relative: str) -> bool:
        if self.base_dir is None:  # no file, so nothing is next to it
            return False
        path = os.path.join(self.base_dir, os.path.expanduser(relative))
        return os.path.isfile(path)

    def _parents(self, parents: object, old: PathKey, new: PathKey) -> list[Any]:
        if isinstance(parents, str):
            parents = [parents]
        if not isinstance(parents, list):
            self.report(old, "wrong-type", "parent must be a list of node names")
            return []
        for index in range(len(parents)):
            self.map((*new, "needs", index), (*old, index))
        return list(parents)

    # Dependencies -------------------------------------------------------------

    def _dependencies(self, deps: object, jobs: dict[Any, dict[str, Any]]) -> None:
        path = (*self.root, "dependencies")
        if not deps:
            return
        if isinstance(deps, list):
            for index, chain in enumerate(deps):
                self._chain(chain, (*path, index), jobs)
        elif isinstance(deps, dict):
            for key, edge in deps.items():
                self._edge(edge, (*path, path_part(key)), jobs)
        else:
            self.report(
                path,
                "wrong-type",
                "dependencies must be a list of chains like 'a,b,c' (a runs before b, b before c)",
            )

    def _chain(self, chain: object, where: PathKey, jobs: dict[Any, dict[str, Any]]) -> None:
        if not isinstance(chain, str):
            self.report(where, "wrong-type", "a dependency is a chain of node names like 'a,b,c'")
            return
        names = [part.strip() for part in chain.split(",")]
        if "" in names:
            self.report(where, "bad-dependency", f"empty node name in dependency {chain!r}")
            return
        known = [(name, self._known(name, where, jobs, chain)) for name in names]
        for (parent, parent_ok), (child, child_ok) in itertools.pairwise(known):
            if parent_ok and child_ok:
                self._add_need(jobs, child, parent, where)

    def _edge(self, edge: object, where: PathKey, jobs: dict[Any, dict[str, Any]]) -> None:
        if not (
            isinstance(edge, dict)
            and isinstance(edge.get("source"), str)
            and isinstance(edge.get("destination"), str)
        ):
            self.report(
                where, "wrong-type", "a saved dependency is a mapping with source: and destination:"
            )
            return
        parent, child = edge["source"], edge["destination"]
        shown = f"{parent} -> {child}"
        if self._known(parent, where, jobs, shown) and self._known(child, where, jobs, shown):
            self._add_need(jobs, child, parent, where)

    def _known(
        self, name: str, where: PathKey, jobs: dict[Any, dict[str, Any]], chain: str
    ) -> bool:
        if name in jobs:
            return True
        hint = ""
        if self.suggestion_work >= len(jobs):  # each costs O(nodes); keep many typos linear
            self.suggestion_work -= len(jobs)
            candidates = [key for key in jobs if isinstance(key, str)]
            close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.report(
            where,
            "unknown-node",
            f"dependency {chain!r} names {name!r}, which is not a node{hint}",
        )
        return False

    def _add_need(
        self, jobs: dict[Any, dict[str, Any]], child: str, parent: str, where: PathKey
    ) -> None:
        needs = jobs[child].setdefault("needs", [])
        self.map(("jobs", child, "needs", len(needs)), where)
        needs.append(parent)
