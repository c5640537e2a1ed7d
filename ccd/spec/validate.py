"""From workflow YAML to a checked `Workflow`, or every problem at once.

The entry points are `load_workflow_file` and `load_workflow_text`; both raise
`SpecError` listing all problems found (each with file, line, column, a stable
code and a message that says what to do), never only the first one.

ccd's own format::

    name: mnist                 # optional; default: the file's stem
    concurrency: 8              # optional positive int
    defaults: {host: localhost, retries: 1, timeout: 2h}
    jobs:
      fetch: {run: ./fetch.sh}
      train: {needs: [fetch], script: train.py, args: [--epochs, "3"]}

cloudmesh-cc's ``workflow: {nodes: ..., dependencies: ...}`` format is
converted by `ccd.spec.cloudmesh` first and then checked the same way.

Defaults apply to every job; a job's own value wins, except that ``env`` and
``resources`` are merged key by key (the job's keys win).
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from pydantic import ValidationError

from ccd.errors import Problem, SpecError
from ccd.markers import compile_progress_regex
from ccd.spec import cloudmesh
from ccd.spec.durations import parse_duration
from ccd.spec.loader import MAX_BYTES, PathKey, PositionLookup, load_yaml, too_large
from ccd.spec.model import (
    JOB_NAME_PATTERN,
    KNOWN_RESOURCES,
    RETRY_KINDS,
    ArrayElement,
    ExecutorKind,
    Job,
    Workflow,
    element_name,
)

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["load_workflow_file", "load_workflow_text", "workflow_graph"]

#: more problems than this are summarised in one last problem
MAX_PROBLEMS: Final = 500
#: names become path components, so keep them well below file-name limits
MAX_NAME_LENGTH: Final = 128

TOP_KEYS: Final = ("name", "concurrency", "defaults", "jobs")
JOB_KEYS: Final = (
    "run",
    "script",
    "args",
    "needs",
    "host",
    "executor",
    "retries",
    "retry_delay",
    "retry_backoff",
    "retry_on",
    "timeout",
    "env",
    "workdir",
    "progress_regex",
    "resources",
    "array",
)
_JOB_KEY_SET: Final = frozenset(JOB_KEYS)
_PER_JOB_ONLY: Final = frozenset({"name", "run", "script", "args", "needs", "array"})
#: elements of one ``array:`` job at most
MAX_ARRAY: Final = 100_000
DEFAULT_KEYS: Final = tuple(key for key in JOB_KEYS if key not in _PER_JOB_ONLY)
_MERGED_KEYS: Final = frozenset({"env", "resources"})

_NAME = re.compile(JOB_NAME_PATTERN)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOCALHOST: Final = "localhost"
_NAME_RULE: Final = (
    "use letters, digits, '.', '_' and '-', starting with a letter or digit "
    "(names become directory names and environment-variable suffixes)"
)
#: candidates compared for did-you-mean hints, in all (the hints are best effort)
SUGGESTION_WORK: Final = 100_000


def load_workflow_file(
    path: str | os.PathLike[str], *, known_hosts: Collection[str] = (_LOCALHOST,)
) -> Workflow:
    """Read and validate the workflow file at `path`; raise SpecError with every problem."""
    file = Path(path)
    source = str(file)
    try:
        size = file.stat().st_size
        if size > MAX_BYTES:
            raise too_large(source, size)
        with file.open("rb") as stream:
            # read one byte more than allowed in case the file grew since stat
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise _no_position(source, "file-not-found", "workflow file not found") from None
    except IsADirectoryError:
        raise _no_position(
            source, "unreadable", "this is a directory; give the workflow file"
        ) from None
    except OSError as exc:
        raise _no_position(
            source, "unreadable", f"cannot read the workflow file: {exc.strerror or exc}"
        ) from None
    base_dir = file.absolute().parent
    return _load(data, source, base_dir, known_hosts, default_name=file.stem)


def load_workflow_text(
    text: str | bytes,
    *,
    source: str = "<string>",
    base_dir: str | os.PathLike[str],
    known_hosts: Collection[str] = (_LOCALHOST,),
) -> Workflow:
    """Validate workflow `text`; relative paths in it are relative to `base_dir`."""
    default_name = "workflow" if source.startswith("<") else Path(source).stem
    return _load(text, source, Path(os.path.abspath(base_dir)), known_hosts, default_name)


def workflow_graph(wf: Workflow) -> nx.DiGraph:
    """The DAG of `wf`: one node per job (in file order), edges parent -> child."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(wf.jobs)
    for name, job in wf.jobs.items():
        graph.add_edges_from((parent, name) for parent in job.needs)
    return graph


def _no_position(source: str, code: str, message: str) -> SpecError:
    return SpecError([Problem(source, 0, 0, code, message)])


def _load(
    text: str | bytes,
    source: str,
    base_dir: Path,
    known_hosts: Collection[str],
    default_name: str,
) -> Workflow:
    try:
        document = load_yaml(text, source)
    except SpecError as exc:
        raise SpecError(_finish(exc.problems, source)) from None
    checker = _Checker(source, base_dir, known_hosts, document.positions)
    checker.problems.extend(document.problems)
    try:
        return checker.workflow(document.data, default_name)
    finally:
        # field_checks holds bound methods: a cycle that would keep the checker and
        # the document's positions (millions of tuples for 100,000 jobs) alive until
        # the cyclic garbage collector runs, instead of freeing them here
        checker.field_checks.clear()


class _Bad(Exception):
    """A value failed its check; `sub` locates the culprit inside the value."""

    def __init__(self, code: str, message: str, sub: PathKey = (), *, at_key: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sub = sub
        self.at_key = at_key


@dataclass(slots=True)
class _Draft:
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

    def need_path(self, index: int) -> PathKey:
        """Where the `index`-th parent was named (a path per parent only when asked:
        100,000 of them would cost more than the check that may report one)."""
        return (*self.needs_path, index) if self.needs_listed else self.needs_path


class _Checker:
    def __init__(
        self,
        source: str,
        base_dir: Path,
        known_hosts: Collection[str],
        positions: PositionLookup,
    ) -> None:
        self.source = source
        self.base_dir = base_dir
        self.known_hosts = frozenset(host for host in known_hosts if isinstance(host, str)) | {
            _LOCALHOST
        }
        self.positions = positions
        self.problems: list[Problem] = []
        self.suggestion_work = SUGGESTION_WORK
        #: jobs whose missing command the cloudmesh conversion already reported
        self.commandless: frozenset[str] = frozenset()
        self.absolute_paths: dict[tuple[str, bool], str] = {}
        self.field_checks: dict[str, Callable[[object], object]] = {
            "run": self._run,
            "script": self._script,
            "args": self._args,
            "needs": self._needs,
            "host": self._host,
            "executor": self._executor,
            "retries": self._retries,
            "retry_delay": self._retry_delay,
            "retry_backoff": self._retry_backoff,
            "retry_on": self._retry_on,
            "timeout": self._timeout,
            "env": self._env,
            "workdir": self._workdir,
            "progress_regex": self._progress_regex,
            "resources": self._resources,
            "array": self._array,
        }

    # Reporting ----------------------------------------------------------------

    def report(self, path: PathKey, code: str, message: str, *, at_key: bool = False) -> None:
        line, column = self.positions.key(path) if at_key else self.positions.value(path)
        self.problems.append(Problem(self.source, line, column, code, message))

    def report_bad(self, path: PathKey, bad: _Bad) -> None:
        self.report((*path, *bad.sub), bad.code, bad.message, at_key=bad.at_key)

    def suggest(self, word: object, candidates: Collection[str]) -> str:
        """`` (did you mean 'x'?)`` for the closest candidate, or ''."""
        if not isinstance(word, str) or not candidates:
            return ""
        # each look-up costs O(candidates): thousands of typos among thousands
        # of jobs would be quadratic, so the work for suggestions is bounded
        if len(candidates) > self.suggestion_work:
            return ""
        self.suggestion_work -= len(candidates)
        close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
        return f" (did you mean {close[0]!r}?)" if close else ""

    def fail(self) -> SpecError:
        return SpecError(_finish(self.problems, self.source))

    # The document -------------------------------------------------------------

    def workflow(self, data: object, default_name: str) -> Workflow:
        if not isinstance(data, dict):
            self.report(
                (),
                "not-a-mapping",
                f"a workflow file is a mapping with a jobs: key, not {_what(data)}; "
                "e.g. jobs: {hello: {run: echo hello}}",
            )
            raise self.fail()
        if cloudmesh.is_cloudmesh(data):
            data = self._from_cloudmesh(data)
        self.unknown_keys(data, (), TOP_KEYS, "at the top level")
        name = self._workflow_name(data, default_name)
        concurrency = self._concurrency(data)
        defaults = self._defaults(data)
        drafts = self._jobs(data, defaults)
        self._check_graph(drafts)
        if self.problems:
            raise self.fail()
        return self._build(name, concurrency, drafts)

    def _from_cloudmesh(self, data: dict[Any, Any]) -> dict[Any, Any]:
        converted = cloudmesh.convert(data, self.positions, base_dir=self.base_dir)
        for path, code, message, at_key in converted.problems:
            self.report(path, code, message, at_key=at_key)
        if converted.data is None:
            raise self.fail()
        self.positions = converted.positions
        self.commandless = converted.commandless
        return converted.data

    def unknown_keys(
        self, mapping: dict[Any, Any], path: PathKey, allowed: Collection[str], where: str
    ) -> None:
        for key in mapping:
            if key in allowed:
                continue
            key_path = (*path, _part(key))
            if key in _PER_JOB_ONLY and allowed is DEFAULT_KEYS:
                message = f"{key!r} cannot be a default; set it in each job that needs it"
            elif key == "name" and allowed is JOB_KEYS:
                message = "a job is named by its key under jobs:; remove name:"
            else:
                message = f"unknown key {_show(key)} {where}{self.suggest(key, allowed)}"
            self.report(key_path, "unknown-key", message, at_key=True)

    def _workflow_name(self, data: dict[Any, Any], default_name: str) -> str:
        if "name" not in data:
            return _safe_name(default_name)
        value = data["name"]
        if not isinstance(value, str):
            self.report(("name",), "wrong-type", f"name must be text, not {_what(value)}")
        elif (problem := _name_problem(value)) is not None:
            self.report(("name",), "bad-name", f"invalid workflow name {value!r}: {problem}")
        else:
            return value
        return _safe_name(default_name)

    def _concurrency(self, data: dict[Any, Any]) -> int | None:
        value = data.get("concurrency")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.report(
                ("concurrency",),
                "wrong-type",
                f"concurrency must be a whole number, not {_what(value)}",
            )
        elif value < 1:
            self.report(
                ("concurrency",),
                "bad-value",
                "concurrency must be at least 1; leave it out for no per-workflow limit",
            )
        else:
            return value
        return None

    def _defaults(self, data: dict[Any, Any]) -> dict[str, tuple[object, PathKey]]:
        value = data.get("defaults")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.report(
                ("defaults",),
                "wrong-type",
                f"defaults must be a mapping of job keys, not {_what(value)}",
            )
            return {}
        self.unknown_keys(value, ("defaults",), DEFAULT_KEYS, "in defaults")
        checked: dict[str, tuple[object, PathKey]] = {}
        for key in DEFAULT_KEYS:
            if key in value:
                path: PathKey = ("defaults", key)
                try:
                    checked[key] = (self.field_checks[key](value[key]), path)
                except _Bad as bad:
                    self.report_bad(path, bad)
        return checked

    # Jobs ---------------------------------------------------------------------

    def _jobs(
        self, data: dict[Any, Any], defaults: dict[str, tuple[object, PathKey]]
    ) -> dict[str, _Draft]:
        jobs = data.get("jobs")
        if jobs is None or jobs == {}:
            self.report(
                ("jobs",),
                "no-jobs",
                "no jobs: add a jobs: mapping, e.g. jobs: {hello: {run: echo hello}}",
                at_key="jobs" in data,
            )
            return {}
        if not isinstance(jobs, dict):
            listed = isinstance(jobs, list)
            hint = "; write 'NAME: {run: ...}', not '- name: NAME'" if listed else ""
            self.report(
                ("jobs",),
                "wrong-type",
                f"jobs must be a mapping from job names to jobs, not {_what(jobs)}{hint}",
            )
            return {}
        drafts: dict[str, _Draft] = {}
        for key, body in jobs.items():
            name = self._job_name(key)
            drafts[name] = self._job(name, body, defaults)
        return drafts

    def _job_name(self, key: object) -> str:
        """The job's name (reported when invalid; graph checks still need it)."""
        path: PathKey = ("jobs", _part(key))
        if not isinstance(key, str):
            self.report(
                path,
                "bad-name",
                f"job name {key!r} is read as {_what(key)}; quote it: '{key}'",
                at_key=True,
            )
            return str(key)
        problem = _name_problem(key)
        if problem is not None:
            self.report(path, "bad-name", f"invalid job name {key!r}: {problem}", at_key=True)
        return key

    def _job(self, name: str, body: object, defaults: dict[str, tuple[object, PathKey]]) -> _Draft:
        path: PathKey = ("jobs", name)
        draft = _Draft(name, path)
        if not isinstance(body, dict):
            if body is None:
                self.report(
                    path,
                    "missing-command",
                    f"job {name!r} is empty: give it run: (a command) or script: (a file)",
                    at_key=True,
                )
            else:
                hint = f"; did you mean {name}: {{run: ...}}?" if isinstance(body, str) else ""
                self.report(
                    path,
                    "wrong-type",
                    f"job {name!r} must be a mapping with run: or script:, not {_what(body)}{hint}",
                )
            return draft
        if not _JOB_KEY_SET.issuperset(body):
            self.unknown_keys(body, path, JOB_KEYS, f"in job {name!r}")
        # this runs once per job: locals, not attribute look-ups
        fields = draft.fields = dict(defaults)
        checks = self.field_checks
        for key in JOB_KEYS:
            if key not in body:
                continue
            key_path = (*path, key)
            try:
                value = checks[key](body[key])
            except _Bad as bad:
                self.report_bad(key_path, bad)
                continue
            if key in _MERGED_KEYS and key in fields:
                inherited = fields[key][0]
                assert isinstance(inherited, dict) and isinstance(value, dict)
                value = {**inherited, **value}
            fields[key] = (value, key_path)
        needs = fields.pop("needs", None)
        if needs is not None:
            names, draft.needs_path = needs
            assert isinstance(names, list)
            draft.needs = names
            draft.needs_listed = isinstance(body["needs"], list)
        self._check_command(draft, body)
        self._check_placement(draft)
        return draft

    def _check_command(self, draft: _Draft, body: dict[Any, Any]) -> None:
        has_run, has_script = "run" in body, "script" in body
        if has_run and has_script:
            self.report(
                (*draft.path, "script"),
                "run-and-script",
                f"job {draft.name!r} has both run: and script:; keep one "
                "(use script: with args: to pass arguments)",
                at_key=True,
            )
        elif not has_run and not has_script and draft.name not in self.commandless:
            self.report(
                draft.path,
                "missing-command",
                f"job {draft.name!r} has neither run: (a command) nor script: (a file); add one",
                at_key=True,
            )

    def _check_placement(self, draft: _Draft) -> None:
        """Executor and host must agree; fill in the executor and workdir."""
        host = draft.fields.get("host", (_LOCALHOST, ()))[0]
        executor_field = draft.fields.get("executor")
        kind = ExecutorKind.LOCAL if host == _LOCALHOST else ExecutorKind.SSH
        if executor_field is None:
            draft.fields["executor"] = (kind, ())
        elif executor_field[0] is ExecutorKind.LOCAL and host != _LOCALHOST:
            self.report(
                executor_field[1],
                "bad-value",
                f"job {draft.name!r}: executor local runs on this machine, but host is "
                f"{host!r}; use executor ssh or slurm, or host localhost",
            )
        elif isinstance(executor_field[0], ExecutorKind):
            kind = executor_field[0]
        # a Slurm job submitted on this machine shares its filesystem: only another
        # host makes paths remote
        remote = host != _LOCALHOST
        workdir_field = draft.fields.get("workdir")
        if workdir_field is None:
            # a remote job starts in its home directory, as `ssh host cmd` does
            workdir = "~" if remote else str(self.base_dir)
        else:
            workdir = str(workdir_field[0])
        draft.fields["workdir"] = (self._absolute(workdir, remote=remote), ())

    def _absolute(self, path: str, *, remote: bool) -> str:
        # most jobs share a handful of working directories
        found = self.absolute_paths.get((path, remote))
        if found is None:
            found = self.absolute_paths[(path, remote)] = self._make_absolute(path, remote=remote)
        return found

    def _make_absolute(self, path: str, *, remote: bool) -> str:
        if remote:
            # the remote home is the remote shell's to expand: keep ~, and read a
            # relative path from the home directory, where a remote job starts
            if path == "~" or path.startswith("~/") or path.startswith("/"):
                return path
            return "~/" + os.path.normpath(path)
        if path.startswith("~"):
            path = os.path.expanduser(path)
        return os.path.normpath(os.path.join(self.base_dir, path))

    # The graph ----------------------------------------------------------------

    def _check_graph(self, drafts: dict[str, _Draft]) -> None:
        order = {name: index for index, name in enumerate(drafts)}
        # Parents are usually written before their children; when every one is,
        # the file order is a topological order and there can be no cycle.
        backward = False
        for child, draft in drafts.items():
            position = order[child]
            for index, parent in enumerate(draft.needs):
                parent_position = order.get(parent)
                if parent_position is None:
                    self.report(
                        draft.need_path(index),
                        "unknown-parent",
                        f"job {child!r} needs {parent!r}, which is not a job in this "
                        f"workflow{self.suggest(parent, drafts)}",
                    )
                elif parent_position == position:
                    self.report(
                        draft.need_path(index),
                        "self-dependency",
                        f"job {child!r} needs itself; remove {parent!r} from its needs",
                    )
                elif parent_position > position:
                    backward = True
        if not backward:
            return
        edges = [
            (parent, child)
            for child, draft in drafts.items()
            for parent in draft.needs
            if parent != child and parent in order
        ]
        if _has_cycle(drafts, edges):
            self._report_cycles(drafts, edges)

    def _report_cycles(self, drafts: dict[str, _Draft], edges: list[tuple[str, str]]) -> None:
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
        for component in sorted(cycles, key=lambda c: min(order[n] for n in c)):
            start = min(component, key=order.__getitem__)
            cycle = _cycle_through(graph, component, start)
            shown = " -> ".join([*cycle, cycle[0]])
            self.report(
                where[(cycle[-1], cycle[0])],
                "cycle",
                f"cycle: {shown} (each job needs the one before it); remove one of these needs",
            )

    # Building -----------------------------------------------------------------

    def _build(self, name: str, concurrency: int | None, drafts: dict[str, _Draft]) -> Workflow:
        jobs: dict[str, Job] = {}
        # an array job becomes its elements; needing it means needing all of them
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
            values: dict[str, Any] = {key: value for key, (value, _path) in draft.fields.items()}
            values.pop("array", None)
            # each parent once, in the order written
            if members:
                parents = list(
                    dict.fromkeys(
                        member for parent in draft.needs for member in members.get(parent, [parent])
                    )
                )
            else:
                parents = list(dict.fromkeys(draft.needs))
            try:
                if job_name in arrays:
                    items = arrays[job_name]
                    for index, item in enumerate(items):
                        element = ArrayElement(
                            group=job_name, index=index, value=item, size=len(items)
                        )
                        element_job = element_name(job_name, index)
                        jobs[element_job] = Job(
                            name=element_job, needs=parents, array=element, **values
                        )
                    continue
                jobs[job_name] = Job(name=job_name, needs=parents, **values)
            except ValidationError as exc:
                # every value was checked above, so this is a bug; still say where
                for error in exc.errors():
                    where = ".".join(str(part) for part in error["loc"])
                    self.report(
                        draft.path,
                        "invalid-job",
                        f"job {job_name!r}: {where}: {error['msg']} (this is a ccd bug; "
                        "please report it with the workflow file)",
                        at_key=True,
                    )
        if self.problems:
            raise self.fail()
        return Workflow(name=name, concurrency=concurrency, jobs=jobs, source=self.source)

    # Field checks: each returns the checked value or raises _Bad --------------

    def _run(self, value: object) -> str:
        if isinstance(value, list):
            raise _Bad(
                "wrong-type",
                "run must be one command line as text, not a list; join the words, "
                "or use script: with args:",
            )
        text = _text(value, "run", "a command line")
        if not text.strip():
            raise _Bad("bad-value", "run is empty; give the command to run")
        return text

    def _script(self, value: object) -> str:
        text = _text(value, "script", "a file path")
        if not text.strip():
            raise _Bad("bad-value", "script is empty; give the path of a script file")
        path = os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(text)))
        if os.path.isdir(path):
            raise _Bad("script-not-found", f"script {text!r} is a directory ({path}); give a file")
        if not os.path.isfile(path):
            raise _Bad(
                "script-not-found",
                f"script {text!r} not found (looked for {path}); "
                "paths are relative to the workflow file's directory",
            )
        return path

    def _args(self, value: object) -> list[str]:
        if not isinstance(value, list):
            raise _Bad(
                "wrong-type",
                f"args must be a list, not {_what(value)}; e.g. args: [--epochs, '3']",
            )
        return [_scalar_text(item, f"args[{index}]", (index,)) for index, item in enumerate(value)]

    def _needs(self, value: object) -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise _Bad(
                "wrong-type",
                f"needs must be a job name or a list of job names, not {_what(value)}",
            )
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise _Bad(
                    "wrong-type", f"needs[{index}] must be a job name, not {_what(item)}", (index,)
                )
        return list(value)

    def _host(self, value: object) -> str:
        host = _text(value, "host", "a host name")
        if host not in self.known_hosts:
            raise _Bad(
                "unknown-host",
                f"unknown host {host!r}{self.suggest(host, sorted(self.known_hosts))}; "
                "add it to the daemon config's hosts:",
            )
        return host

    def _executor(self, value: object) -> ExecutorKind:
        text = _text(value, "executor", "local, ssh or slurm")
        try:
            return ExecutorKind(text)
        except ValueError:
            choices = [kind.value for kind in ExecutorKind]
            raise _Bad(
                "unknown-executor",
                f"unknown executor {text!r}{self.suggest(text, choices)}; use local, ssh or slurm",
            ) from None

    def _retries(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad("wrong-type", f"retries must be a whole number, not {_what(value)}")
        if value < 0:
            raise _Bad("negative-number", "retries cannot be negative; use 0 for no retries")
        return value

    def _retry_on(self, value: object) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _Bad(
                "wrong-type",
                f"retry_on must be a list of failure kinds ({', '.join(RETRY_KINDS)}), "
                f"not {_what(value)}",
            )
        for index, kind in enumerate(value):
            if kind not in RETRY_KINDS:
                raise _Bad(
                    "bad-value",
                    f"unknown failure kind {kind!r}{self.suggest(kind, RETRY_KINDS)}; "
                    f"use {', '.join(RETRY_KINDS)}",
                    (index,),
                )
        return list(value)

    def _retry_delay(self, value: object) -> float:
        return _duration(value, "retry_delay")

    def _retry_backoff(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Bad("wrong-type", f"retry_backoff must be a number, not {_what(value)}")
        number = float(value) if abs(value) < 1e300 else math.inf
        if not math.isfinite(number) or number < 1:
            raise _Bad(
                "bad-value",
                "retry_backoff must be a finite number of at least 1 "
                "(1 keeps the delay constant, 2 doubles it)",
            )
        return number

    def _timeout(self, value: object) -> float | None:
        if value is None:
            return None
        seconds = _duration(value, "timeout")
        if seconds == 0:
            raise _Bad(
                "bad-duration", "timeout must be longer than 0; leave it out for no time limit"
            )
        return seconds

    def _env(self, value: object) -> dict[str, str]:
        if not isinstance(value, dict):
            raise _Bad("wrong-type", f"env must be a mapping of NAME: value, not {_what(value)}")
        env: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
                raise _Bad(
                    "bad-env-name",
                    f"invalid environment variable name {_show(key)}: use letters, digits "
                    "and '_', not starting with a digit",
                    (_part(key),),
                    at_key=True,
                )
            env[key] = _scalar_text(item, f"env {key}", (key,))
        return env

    def _workdir(self, value: object) -> str:
        text = _text(value, "workdir", "a directory path")
        if not text.strip():
            raise _Bad(
                "bad-value", "workdir is empty; leave it out to use the workflow's directory"
            )
        return text

    def _progress_regex(self, value: object) -> str:
        text = _text(value, "progress_regex", "a regular expression")
        try:
            compile_progress_regex(text)
        except ValueError as exc:
            raise _Bad("bad-regex", str(exc)) from None
        return text

    def _array(self, value: object) -> list[str]:
        """``array: N`` (elements 0..N-1) or ``array: [values]``: each element's value."""
        if isinstance(value, bool) or not isinstance(value, (int, list)):
            raise _Bad(
                "wrong-type",
                f"array must be a count (array: 50) or a list of values "
                f"(array: [0.1, 0.2]), not {_what(value)}",
            )
        if isinstance(value, int):
            if not 1 <= value <= MAX_ARRAY:
                raise _Bad("bad-value", f"array must be between 1 and {MAX_ARRAY}, not {value}")
            return [str(i) for i in range(value)]
        if not value or len(value) > MAX_ARRAY:
            raise _Bad("bad-value", f"array needs 1 to {MAX_ARRAY} values, not {len(value)}")
        values = []
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)) or item is None:
                raise _Bad(
                    "wrong-type",
                    f"array[{index}] must be a plain value (text or number), not {_what(item)}",
                    (index,),
                )
            values.append(str(item).lower() if isinstance(item, bool) else str(item))
        return values

    def _resources(self, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _Bad(
                "wrong-type",
                f"resources must be a mapping (e.g. {{partition: gpu, mem: 16G}}), "
                f"not {_what(value)}",
            )
        for key in value:
            if isinstance(key, str) and key not in KNOWN_RESOURCES:
                raise _Bad(
                    "unknown-key",
                    f"unknown resource {key!r}{self.suggest(key, KNOWN_RESOURCES)}; "
                    f"known: {', '.join(sorted(KNOWN_RESOURCES))}",
                    (key,),
                    at_key=True,
                )
        extra = value.get("extra", [])
        if not isinstance(extra, list):
            raise _Bad(
                "wrong-type", "resources.extra must be a list of sbatch arguments", ("extra",)
            )
        checked = _plain_data(value, ())
        assert isinstance(checked, dict)
        return checked


# --- helpers ---------------------------------------------------------------------


def _text(value: object, key: str, meaning: str) -> str:
    if not isinstance(value, str):
        raise _Bad("wrong-type", f"{key} must be text ({meaning}), not {_what(value)}")
    return value


def _scalar_text(value: object, what: str, sub: PathKey) -> str:
    """A plain value as the text a process sees (true/false for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    hint = "; use '' for an empty value" if value is None else ""
    raise _Bad("wrong-type", f"{what} must be text or a number, not {_what(value)}{hint}", sub)


def _duration(value: object, key: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _Bad("bad-duration", f"{key}: {exc}") from None


def _plain_data(value: object, sub: PathKey) -> object:
    """`value` as JSON-compatible data (dates become ISO text), else _Bad."""
    if isinstance(value, dict):
        result: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Bad(
                    "wrong-type",
                    f"resource keys must be text; quote {key!r}",
                    (*sub, _part(key)),
                    at_key=True,
                )
            result[key] = _plain_data(item, (*sub, key))
        return result
    if isinstance(value, list):
        return [_plain_data(item, (*sub, index)) for index, item in enumerate(value)]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        raise _Bad("bad-value", "resource values must be finite numbers", sub)
    if value is None or isinstance(value, str | int | float):
        return value
    raise _Bad("wrong-type", f"resource values must be text or numbers, not {_what(value)}", sub)


def _name_problem(name: str) -> str | None:
    if len(name) > MAX_NAME_LENGTH:
        return f"longer than {MAX_NAME_LENGTH} characters"
    if not _NAME.fullmatch(name) or ".." in name:
        return _NAME_RULE
    return None


def _safe_name(stem: str) -> str:
    """A valid workflow name made from a file stem."""
    cleaned = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", stem)).lstrip("._-")
    cleaned = cleaned[:MAX_NAME_LENGTH].rstrip("._-")
    return cleaned or "workflow"


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


def _part(key: object) -> str | int:
    if isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool)):
        return key
    return str(key)


def _show(key: object) -> str:
    return repr(key) if isinstance(key, str) else str(key)


def _what(value: object) -> str:
    """How a value reads to a user, for 'must be X, not Y' messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    if isinstance(value, int | float):
        return f"a number ({value})" if abs(value) < 1e15 else "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime | date):
        return f"a date ({value.isoformat()}); quote it"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__


def _finish(problems: list[Problem], source: str) -> list[Problem]:
    """Problems without repeats, in file order, at most MAX_PROBLEMS of them."""
    unique = list(dict.fromkeys(problems))
    unique.sort(key=lambda p: (p.line == 0 and p.code not in _GLOBAL_CODES, p.line, p.column))
    if len(unique) > MAX_PROBLEMS:
        more = len(unique) - MAX_PROBLEMS
        unique = [
            *unique[:MAX_PROBLEMS],
            Problem(source, 0, 0, "too-many-problems", f"... and {more} more problems"),
        ]
    return unique


# problems about the whole file stay first even though they have no position
_GLOBAL_CODES: Final = frozenset({"empty-file", "file-too-large", "no-jobs"})
