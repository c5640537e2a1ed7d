"""`Workflow`: a workflow built in Python, checked exactly as a workflow file is.

The builder keeps no list of job keys.  ``wf.job(name, **keys)`` stores the same
plain mapping a YAML file holds under ``jobs:`` (handles become names, paths
text, timedeltas seconds), and `validate` hands the whole mapping to the
workflow-file checker (`ccd.spec.checker`): every key `ccd.spec.fields` knows
works, an unknown one gets the same "unknown key … did you mean" problem, and the
result is the same model, so the same canonical JSON, as the YAML would give.
Problems point at the Python line that added the job (see `ccd.sdk.origins`).

Relative paths (``script: train.py``, ``workdir: data``) are read from the
directory of the Python file that created the `Workflow` (the current directory
for ``python -c`` or a REPL), as a YAML file's are from its own directory;
``base_dir=`` chooses another.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from ccd.errors import CcdError, Problem, SpecError
from ccd.sdk.origins import BuilderChecker, FileOrigin, Origin, caller, directory_of
from ccd.spec import cloudmesh
from ccd.spec import model as spec_model
from ccd.spec.checker import Checker, finish
from ccd.spec.export import workflow_yaml
from ccd.spec.loader import load_yaml

__all__ = ["JobHandle", "Outputs", "Workflow"]

_TOP_KEYS = ("name", "concurrency", "defaults")


class Outputs:
    """``job.outputs["acc"]``: the text of a reference to that output,
    ``${{ jobs.NAME.outputs.acc }}``, for ``run:``, ``args`` and ``env`` values."""

    __slots__ = ("_job",)

    def __init__(self, job: str) -> None:
        self._job = job

    def __getitem__(self, key: str) -> str:
        return "${{ jobs." + self._job + ".outputs." + key + " }}"

    def __repr__(self) -> str:
        return f"<outputs of {self._job}>"


class JobHandle:
    """A job added to a `Workflow`: use it in ``needs=`` and for its outputs.

    ``str(handle)`` is the job's name; ``handle[3].outputs["x"]`` refers to the
    output of element 3 of an array job."""

    __slots__ = ("name", "outputs")

    def __init__(self, name: str) -> None:
        self.name = name
        self.outputs = Outputs(name)

    def __getitem__(self, index: int) -> JobHandle:
        return JobHandle(spec_model.element_name(self.name, index))

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"JobHandle({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobHandle) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class Workflow:
    """A workflow built in code.  ``Workflow("mnist", concurrency=4, defaults={...})``."""

    def __init__(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        params: Mapping[str, Any] | None = None,
        notify: Sequence[Mapping[str, Any]] | None = None,
        defaults: Mapping[str, Any] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        resume: bool | None = None,
    ) -> None:
        site = caller()
        self._top: dict[str, Any] = {"name": name}
        if concurrency is not None:
            self._top["concurrency"] = concurrency
        if params is not None:
            # submit-time parameters, as a file's params: block writes them
            self._top["params"] = _plain(params)
        if resume is not None:
            # reuse unchanged jobs' earlier runs, as a file's resume: true does
            self._top["resume"] = resume
        if defaults is not None:
            self._top["defaults"] = _plain(defaults)
        if notify is not None:
            # notifiers ({on: [...], webhook: URL}, ...), as a file's notify: lists them
            self._top["notify"] = _plain(list(notify))
        #: where relative paths are read from
        self.base_dir = directory_of(site.file) if base_dir is None else Path(base_dir).absolute()
        #: the file problems and `ccctl ls` name: the Python file that built it
        self.source = site.file if site.file.startswith("<") else os.path.abspath(site.file)
        self._origin: Origin = site
        self._default_name = "workflow"
        self._jobs: dict[str, Any] = {}
        self._origins: dict[str, Origin] = {}
        self._duplicates: list[Problem] = []

    # Building -----------------------------------------------------------------

    def job(
        self,
        name: str,
        *,
        run: str | None = None,
        script: str | os.PathLike[str] | None = None,
        args: Sequence[Any] | None = None,
        needs: str | JobHandle | Sequence[str | JobHandle] | None = None,
        host: str | None = None,
        executor: str | None = None,
        resources: Mapping[str, Any] | None = None,
        array: int | Sequence[Any] | None = None,
        env: Mapping[str, Any] | None = None,
        timeout: float | str | timedelta | None = None,
        retries: int | None = None,
        progress_regex: str | None = None,
        **keys: Any,
    ) -> JobHandle:
        """Add a job; any other key of a workflow file's job goes in `keys`
        (``retry_delay="5s"``, ``workdir="run"``, …).  None means "not set"."""
        given = {
            "run": run,
            "script": script,
            "args": args,
            "needs": needs,
            "host": host,
            "executor": executor,
            "resources": resources,
            "array": array,
            "env": env,
            "timeout": timeout,
            "retries": retries,
            "progress_regex": progress_regex,
            **keys,
        }
        body = {key: _plain(value) for key, value in given.items() if value is not None}
        return self._add(name, body, caller())

    def _add(self, name: str, body: object, origin: Origin) -> JobHandle:
        if name in self._jobs:
            where = origin.where(("jobs", name), True)
            self._duplicates.append(
                Problem(
                    *where,
                    "duplicate-key",
                    f"duplicate job {name!r} (first added at {self._origins[name]}); "
                    "a workflow holds each name once. Remove or rename one of them",
                )
            )
        else:
            self._jobs[name] = body
            self._origins[name] = origin
        return JobHandle(name)

    # Reading it back ----------------------------------------------------------

    @property
    def name(self) -> str:
        value = self._top.get("name", self._default_name)
        return value if isinstance(value, str) else str(value)

    @property
    def jobs(self) -> dict[str, JobHandle]:
        """A handle per job, by name, in the order they were added."""
        return {name: JobHandle(name) for name in self._jobs}

    def to_dict(self) -> dict[str, Any]:
        """The plain mapping a workflow file holds for this workflow."""
        return {**self._top, "jobs": {name: _copy(body) for name, body in self._jobs.items()}}

    def validate(
        self,
        known_hosts: Collection[str] | None = None,
        *,
        local_environment: bool | None = None,
        params: Mapping[str, str] | None = None,
    ) -> spec_model.Workflow:
        """The checked workflow, or `SpecError` (a `CcdError`) listing every problem,
        with the messages of ``ccctl validate``.  Hosts are checked against
        `known_hosts`; by default, as ``ccctl validate`` does, against the daemon
        config, which also says whether local jobs get their programs from an
        environment of ``hosts.localhost`` (`local_environment`: then a notebook job
        does not need papermill on this PATH)."""
        hosts: Collection[str]
        if known_hosts is None:
            hosts, declared = _configured()
            local_environment = declared if local_environment is None else local_environment
        else:
            hosts = known_hosts
        checker = BuilderChecker(
            self.source,
            self.base_dir,
            hosts,
            self._origin,
            self._origins,
            local_environment=bool(local_environment),
            params=params,
        )
        checker.problems.extend(self._duplicates)
        return checker.workflow(self.to_dict(), self._default_name)

    def to_yaml(
        self,
        known_hosts: Collection[str] | None = None,
        *,
        local_environment: bool | None = None,
    ) -> str:
        """The checked workflow (see `validate`) as canonical YAML, what ``ccctl
        export`` writes: paths absolute, defaults merged into each job, so it means
        the same read from anywhere."""
        return workflow_yaml(self.validate(known_hosts, local_environment=local_environment))

    def hosts(self) -> set[str]:
        """The hosts its jobs and defaults name (the daemon checks them on submit)."""
        bodies = [self._top.get("defaults"), *self._jobs.values()]
        return {b["host"] for b in bodies if isinstance(b, dict) and isinstance(b.get("host"), str)}

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r}: {len(self._jobs)} jobs>"

    # A workflow file ----------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Workflow:
        """The workflow file at `path` (ccd's format or cloudmesh-cc's), to extend or
        submit.  Its problems are reported by `validate`, at its own lines; only a
        file that cannot be read as a workflow at all raises here."""
        file = Path(path)
        source = str(file)
        try:
            text = file.read_bytes()
        except OSError as exc:
            raise CcdError(f"cannot read {source}: {exc.strerror or exc}") from None
        base_dir = file.absolute().parent
        document = load_yaml(text, source)
        data, positions = document.data, document.positions
        if document.problems:
            raise SpecError(finish(document.problems, source))
        if isinstance(data, dict) and cloudmesh.is_cloudmesh(data):
            converted = cloudmesh.convert(data, positions, base_dir=base_dir)
            if converted.problems or converted.data is None:
                checker = Checker(source, base_dir, (), positions)
                checker.report_all(converted.problems)
                raise checker.fail()
            data, positions = converted.data, converted.positions
        if not isinstance(data, dict) or not isinstance(data.get("jobs", {}), dict):
            # the checker says what is wrong with the file's shape, where
            Checker(source, base_dir, (), positions).workflow(data, file.stem)
            raise AssertionError("the checker accepted a workflow without a jobs mapping")
        return cls._of_file(data, source, base_dir, FileOrigin(source, positions), file.stem)

    @classmethod
    def _of_file(
        cls, data: dict[Any, Any], source: str, base_dir: Path, origin: FileOrigin, stem: str
    ) -> Workflow:
        wf = cls.__new__(cls)
        wf._top = {key: value for key, value in data.items() if key != "jobs"}
        wf.base_dir, wf.source, wf._origin = base_dir, source, origin
        wf._default_name = stem
        wf._jobs, wf._origins, wf._duplicates = {}, {}, []
        for name, body in (data.get("jobs") or {}).items():
            wf._jobs[name] = body
            wf._origins[str(name)] = origin
        return wf


def _plain(value: Any) -> Any:
    """`value` as a workflow file would hold it."""
    if isinstance(value, JobHandle):
        return value.name
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | range):
        return [_plain(item) for item in value]
    return value


def _copy(value: Any) -> Any:
    """A copy of nested mappings and lists, so the caller cannot change the workflow."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _configured() -> tuple[set[str], bool]:
    """The daemon config's hosts, and whether it gives local jobs an environment."""
    # only when asked: the config and its checks are no part of building
    from ccd.config import load_config
    from ccd.executors.environment import declares_environment

    config = load_config()
    return config.known_hosts(), declares_environment(config.host_config("localhost"))
