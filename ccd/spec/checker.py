"""The checker: walks a loaded document, runs the field and graph checks, builds the model.

`Checker.workflow` takes the data of a loaded file and returns a `Workflow`, or
raises `SpecError` with every problem it found, each located where it was
written. The checks of each job key live in `ccd.spec.fields`, those of the job
graph in `ccd.spec.graph`, those of output references in `ccd.spec.references`;
this module owns the document's shape (top-level keys, defaults, job names and
bodies), which keys go together (run or script, executor and host), and the
order problems are listed in.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from ccd.errors import Problem, SpecError
from ccd.spec import cloudmesh
from ccd.spec.build import Draft, build_jobs
from ccd.spec.environments import environment_problems, notebook_problems
from ccd.spec.fields import FIELD_CHECKS, NO_BASE_HINT, Bad, FieldContext
from ccd.spec.fields_cache import cache_path_problems
from ccd.spec.graph import graph_problems
from ccd.spec.hints import Suggestions, show, what
from ccd.spec.model import RUN_WORKDIR, ExecutorKind, Workflow
from ccd.spec.names import name_problem, safe_name
from ccd.spec.notify import checked_notify
from ccd.spec.params import checked_params
from ccd.spec.positions import PathKey, PositionLookup, Report, path_part
from ccd.spec.references import reference_problems
from ccd.spec.toplevel import top_concurrency, top_resume

#: more problems than this are summarised in one last problem
MAX_PROBLEMS: Final = 500

TOP_KEYS: Final = ("name", "concurrency", "params", "resume", "notify", "defaults", "jobs")
#: every key a job may have, in the order they are checked
JOB_KEYS: Final = tuple(FIELD_CHECKS)
_JOB_KEY_SET: Final = frozenset(JOB_KEYS)
_PER_JOB_ONLY: Final = frozenset({"name", "run", "script", "args", "needs", "array", "foreach"})
DEFAULT_KEYS: Final = tuple(key for key in JOB_KEYS if key not in _PER_JOB_ONLY)
_MERGED_KEYS: Final = frozenset({"env", "resources"})

LOCALHOST: Final = "localhost"
# problems about the whole file stay first even though they have no position
_GLOBAL_CODES: Final = frozenset({"empty-file", "file-too-large", "no-jobs"})

_Defaults = dict[str, tuple[object, PathKey]]


class Checker:
    """Checks one workflow document; collects every problem on the way."""

    def __init__(
        self,
        source: str,
        base_dir: Path | None,
        known_hosts: Collection[str],
        positions: PositionLookup,
        local_environment: bool = False,
        params: Mapping[str, str] | None = None,
    ) -> None:
        self.source = source
        #: parameter values given at submit, as text (``--set NAME=VALUE``)
        self.given_params = dict(params or {})
        #: hosts.localhost declares an environment: local jobs' programs come from it
        self.local_environment = local_environment
        self.base_dir = base_dir
        self.positions = positions
        self.problems: list[Problem] = []
        self.suggest = Suggestions()
        hosts = frozenset(host for host in known_hosts if isinstance(host, str)) | {LOCALHOST}
        self.context = FieldContext(base_dir, hosts, self.suggest)
        #: jobs whose missing command the cloudmesh conversion already reported
        self.commandless: frozenset[str] = frozenset()
        self.absolute_paths: dict[tuple[str, bool], str] = {}

    # Reporting ----------------------------------------------------------------

    def report(self, path: PathKey, code: str, message: str, *, at_key: bool = False) -> None:
        line, column = self.positions.key(path) if at_key else self.positions.value(path)
        self.problems.append(Problem(self.source, line, column, code, message))

    def report_all(self, reports: Iterable[Report]) -> None:
        for path, code, message, at_key in reports:
            self.report(path, code, message, at_key=at_key)

    def report_bad(self, path: PathKey, bad: Bad) -> None:
        self.report((*path, *bad.sub), bad.code, bad.message, at_key=bad.at_key)

    def fail(self) -> SpecError:
        return SpecError(finish(self.problems, self.source))

    # The document -------------------------------------------------------------

    def workflow(self, data: object, default_name: str) -> Workflow:
        if not isinstance(data, dict):
            self.report(
                (),
                "not-a-mapping",
                f"a workflow file is a mapping with a jobs: key, not {what(data)}; "
                "e.g. jobs: {hello: {run: echo hello}}",
            )
            raise self.fail()
        if cloudmesh.is_cloudmesh(data):
            data = self._from_cloudmesh(data)
        self.unknown_keys(data, (), TOP_KEYS, "at the top level")
        name = self._workflow_name(data, default_name)
        concurrency, reports = top_concurrency(data)
        self.report_all(reports)
        resume, reports = top_resume(data)
        self.report_all(reports)
        params, reports = checked_params(data.get("params"), self.given_params, self.suggest)
        self.report_all(reports)
        notify, reports = checked_notify(data.get("notify"), self.suggest)
        self.report_all(reports)
        defaults = self._defaults(data)
        drafts = self._jobs(data, defaults)
        self.report_all(graph_problems(drafts, self.suggest))
        self.report_all(reference_problems(drafts, self.suggest, _declared(data)))
        if self.problems:
            raise self.fail()
        jobs, reports = build_jobs(drafts)
        self.report_all(reports)
        if self.problems:
            raise self.fail()
        return Workflow(
            name=name,
            concurrency=concurrency,
            jobs=jobs,
            source=self.source,
            params=params,
            resume=resume,
            notify=notify,
        )

    def _from_cloudmesh(self, data: dict[Any, Any]) -> dict[Any, Any]:
        converted = cloudmesh.convert(data, self.positions, base_dir=self.base_dir)
        self.report_all(converted.problems)
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
            key_path = (*path, path_part(key))
            if key in _PER_JOB_ONLY and allowed is DEFAULT_KEYS:
                message = f"{key!r} cannot be a default; set it in each job that needs it"
            elif key == "name" and allowed is JOB_KEYS:
                message = "a job is named by its key under jobs:; remove name:"
            else:
                message = f"unknown key {show(key)} {where}{self.suggest(key, allowed)}"
            self.report(key_path, "unknown-key", message, at_key=True)

    def _workflow_name(self, data: dict[Any, Any], default_name: str) -> str:
        if "name" not in data:
            return safe_name(default_name)
        value = data["name"]
        if not isinstance(value, str):
            self.report(("name",), "wrong-type", f"name must be text, not {what(value)}")
        elif (problem := name_problem(value)) is not None:
            self.report(("name",), "bad-name", f"invalid workflow name {value!r}: {problem}")
        else:
            return value
        return safe_name(default_name)

    def _defaults(self, data: dict[Any, Any]) -> _Defaults:
        value = data.get("defaults")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.report(
                ("defaults",),
                "wrong-type",
                f"defaults must be a mapping of job keys, not {what(value)}",
            )
            return {}
        self.unknown_keys(value, ("defaults",), DEFAULT_KEYS, "in defaults")
        checked: _Defaults = {}
        for key in DEFAULT_KEYS:
            if key in value:
                path: PathKey = ("defaults", key)
                try:
                    checked[key] = (FIELD_CHECKS[key](value[key], self.context), path)
                except Bad as bad:
                    self.report_bad(path, bad)
        return checked

    # Jobs ---------------------------------------------------------------------

    def _jobs(self, data: dict[Any, Any], defaults: _Defaults) -> dict[str, Draft]:
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
                f"jobs must be a mapping from job names to jobs, not {what(jobs)}{hint}",
            )
            return {}
        drafts: dict[str, Draft] = {}
        for key, body in jobs.items():
            name = self._job_name(key)
            drafts[name] = self._job(name, body, defaults)
        return drafts

    def _job_name(self, key: object) -> str:
        """The job's name (reported when invalid; graph checks still need it)."""
        path: PathKey = ("jobs", path_part(key))
        if not isinstance(key, str):
            self.report(
                path,
                "bad-name",
                f"job name {key!r} is read as {what(key)}; quote it: '{key}'",
                at_key=True,
            )
            return str(key)
        problem = name_problem(key)
        if problem is not None:
            self.report(path, "bad-name", f"invalid job name {key!r}: {problem}", at_key=True)
        return key

    def _job(self, name: str, body: object, defaults: _Defaults) -> Draft:
        path: PathKey = ("jobs", name)
        draft = Draft(name, path)
        if not isinstance(body, dict):
            self._not_a_job(draft, body)
            return draft
        if not _JOB_KEY_SET.issuperset(body):
            self.unknown_keys(body, path, JOB_KEYS, f"in job {name!r}")
        draft.fields = self._fields(path, body, defaults)
        inherited, own = defaults.get("env", ({}, ()))[0], body.get("env")
        if inherited and isinstance(inherited, dict) and isinstance(own, dict):
            # located in defaults:, though merged into the job's env
            draft.env_defaults = frozenset(inherited).difference(own)
        needs = draft.fields.pop("needs", None)
        if needs is not None:
            names, draft.needs_path = needs
            assert isinstance(names, list)
            draft.needs = names
            draft.needs_listed = isinstance(body["needs"], list)
        self._check_command(draft, body)
        self._check_placement(draft)
        # an unknown host is reported already; its job is remote all the same
        host = draft.fields["host"][0] if "host" in draft.fields else body.get("host", LOCALHOST)
        remote = host != LOCALHOST
        self.report_all(
            environment_problems(
                draft,
                remote=remote,
                has_base=self.base_dir is not None,
                absolute=lambda path: self._absolute(path, remote=remote),
            )
        )
        self.report_all(
            notebook_problems(draft, remote=remote, local_environment=self.local_environment)
        )
        if "inputs" in draft.fields or "outputs_files" in draft.fields:
            self.report_all(cache_path_problems(draft, remote=remote))
        return draft

    def _not_a_job(self, draft: Draft, body: object) -> None:
        if body is None:
            self.report(
                draft.path,
                "missing-command",
                f"job {draft.name!r} is empty: give it run: (a command) or script: (a file)",
                at_key=True,
            )
            return
        hint = f"; did you mean {draft.name}: {{run: ...}}?" if isinstance(body, str) else ""
        self.report(
            draft.path,
            "wrong-type",
            f"job {draft.name!r} must be a mapping with run: or script:, not {what(body)}{hint}",
        )

    def _fields(self, path: PathKey, body: dict[Any, Any], defaults: _Defaults) -> _Defaults:
        """The checked value of each key `body` or `defaults` sets, and where it was written."""
        # this runs once per job: locals, not attribute look-ups
        fields = dict(defaults)
        checks, context = FIELD_CHECKS, self.context
        for key in JOB_KEYS:
            if key not in body:
                continue
            key_path = (*path, key)
            try:
                value = checks[key](body[key], context)
            except Bad as bad:
                self.report_bad(key_path, bad)
                continue
            if key in _MERGED_KEYS and key in fields:
                inherited = fields[key][0]
                assert isinstance(inherited, dict) and isinstance(value, dict)
                value = {**inherited, **value}
            fields[key] = (value, key_path)
        return fields

    def _check_command(self, draft: Draft, body: dict[Any, Any]) -> None:
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

    def _check_placement(self, draft: Draft) -> None:
        """Executor and host must agree; fill in the executor and workdir."""
        host = draft.fields.get("host", (LOCALHOST, ()))[0]
        executor_field = draft.fields.get("executor")
        if executor_field is None:
            kind = ExecutorKind.LOCAL if host == LOCALHOST else ExecutorKind.SSH
            draft.fields["executor"] = (kind, ())
        elif executor_field[0] is ExecutorKind.LOCAL and host != LOCALHOST:
            self.report(
                executor_field[1],
                "bad-value",
                f"job {draft.name!r}: executor local runs on this machine, but host is "
                f"{host!r}; use executor ssh or slurm, or host localhost",
            )
        # a Slurm job submitted on this machine shares its filesystem: only another
        # host makes paths remote
        remote = host != LOCALHOST
        workdir_field = draft.fields.get("workdir")
        if workdir_field is None:
            # a remote job starts in its home directory, as `ssh host cmd` does, and
            # so does a local one of a workflow that came without its file's path
            workdir = "~" if remote or self.base_dir is None else str(self.base_dir)
        elif workdir_field[0] == RUN_WORKDIR:
            draft.fields["workdir"] = (RUN_WORKDIR, ())  # the run directory, on any host
            return
        else:
            workdir = str(workdir_field[0])
            if not remote and self.base_dir is None and not workdir.startswith(("/", "~")):
                self.report(
                    workdir_field[1],
                    "relative-path",
                    f"job {draft.name!r}: workdir {workdir!r} is relative; {NO_BASE_HINT}",
                )
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
        # (a relative path without a base directory was reported; "/" only keeps it a path)
        return os.path.normpath(os.path.join(self.base_dir or "/", path))


def finish(problems: list[Problem], source: str) -> list[Problem]:
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


def _declared(data: dict[Any, Any]) -> list[str]:
    """The parameters the document declares (well formed or not: a reference to one
    that is badly declared is not a second problem)."""
    block = data.get("params")
    return [str(name) for name in block] if isinstance(block, dict) else []
