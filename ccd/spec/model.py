"""The typed, validated workflow model that the engine runs.

These models are what a workflow file becomes once `ccd.spec.validate` has
accepted it: names checked, durations in seconds, paths absolute, the DAG
acyclic. They round-trip through JSON (`model_dump(mode="json")`) so the daemon
stores the exact spec it ran.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ccd.spec.notify import Notifier

#: A job name: becomes a path component and an environment-variable suffix.
JOB_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


#: what a failed attempt failed of, for ``retry_on``: a timeout, a non-zero exit,
#: a lost job, and the batch system's own outcomes
RETRY_KINDS = ("timeout", "exit", "lost", "oom", "node_fail", "preempted", "boot_fail")


#: ``when:``: what of its parents' outcomes a job runs after (success: all succeeded;
#: failure: one failed; always: all ended, however; any: one succeeded)
TRIGGER_RULES = ("success", "failure", "always", "any")
#: rules of jobs that do not decide the workflow's outcome (cleanup, alerting)
HOOK_RULES = frozenset({"failure", "always"})


#: ``cache:``: how a job's ``inputs`` count in its cache key (by their bytes, or by
#: size and modification time), or "off": the job always runs
CACHE_MODES = ("content", "mtime", "off")


#: the keys a job's ``resources:`` may hold (the Slurm executor maps each to an sbatch
#: option; ``extra`` is a list of raw sbatch arguments)
KNOWN_RESOURCES = frozenset(
    {
        "partition", "time", "mem", "cpus", "gpus", "gres", "nodes", "ntasks", "account", "qos",
        "constraint", "extra",
    }
)  # fmt: skip


#: ``workdir: run``: a job starts in its attempt's own run directory (``$CCD_RUN_DIR``),
#: so the elements of an array, and the attempts of a retry, never share files
RUN_WORKDIR = "run"


class ExecutorKind(StrEnum):
    LOCAL = "local"
    SSH = "ssh"
    SLURM = "slurm"


class ArrayElement(BaseModel):
    """One element of a job written with ``array:`` (a parameter sweep), or of a
    ``foreach:`` job, made when its list was known (at run time)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the job's name as written; its elements are ``group[0]``, ``group[1]``, …
    group: str
    index: int
    #: the element's value (``array: [a, b]``), or its index as text (``array: N``);
    #: a foreach item as JSON text (a text item as itself): ``$CCD_ITEM``
    value: str
    #: how many elements the array has
    size: int
    #: an element of a ``foreach:`` job (it has ``${{ item }}``)
    foreach: bool = False


def element_name(group: str, index: int) -> str:
    return f"{group}[{index}]"


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    #: shell command line, run with ``sh -c`` semantics (exactly one of run/script)
    run: str | None = None
    #: absolute path of a script file, run by its extension (.sh, .py, .ipynb)
    script: str | None = None
    #: extra arguments for ``script``
    args: list[str] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)
    host: str = "localhost"
    executor: ExecutorKind = ExecutorKind.LOCAL
    retries: int = 0
    #: seconds before the first retry; later retries multiply by ``retry_backoff``
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    #: failure kinds that are retried (see RETRY_KINDS); None: every failure
    retry_on: list[str] | None = None
    #: seconds; None means no limit
    timeout: float | None = None
    env: dict[str, str] = Field(default_factory=dict)
    #: absolute working directory (defaults to the workflow file's directory), or
    #: RUN_WORKDIR: the attempt's own run directory, made fresh for each attempt
    workdir: str
    #: regex whose named group ``progress`` (or first group) is a percentage
    progress_regex: str | None = None
    #: batch-scheduler resources (used by the slurm executor)
    resources: dict[str, Any] = Field(default_factory=dict)
    #: set on each element of an ``array:`` job
    array: ArrayElement | None = None
    #: the job's software environment (docs/environments.md); each overrides the
    #: host's, and `setup`/`modules` come after the host's own
    venv: str | None = None
    conda: str | None = None
    modules: list[str] = Field(default_factory=list)
    container: str | None = None
    setup: list[str] = Field(default_factory=list)
    #: a notebook's parameters (papermill's ``parameters`` cell)
    params: dict[str, Any] = Field(default_factory=dict)
    #: what of its parents' outcomes the job runs after (TRIGGER_RULES)
    when: str = "success"
    #: fan out at run time, one element per item: a literal list, or one output
    #: reference whose value is a JSON list (ccd.engine.fanout)
    foreach: str | list[Any] | None = None
    #: the items a foreach job fanned out over (each as ``$CCD_ITEM`` holds it), set
    #: in the stored spec when it did; no file sets it (ccd.engine.fanout.expanded)
    items: list[str] | None = None
    #: how the job's cache key counts its inputs (CACHE_MODES; "off": never reused)
    cache: str = "content"
    #: absolute paths (``~/…`` on a remote host) of files the job reads: in its key
    inputs: list[str] = Field(default_factory=list)
    #: files the job writes; an earlier run is reused only while they all exist
    outputs_files: list[str] = Field(default_factory=list)


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    #: jobs of this workflow running at once; None means only host/daemon limits apply
    concurrency: int | None = None
    #: jobs in file order
    jobs: dict[str, Job]
    #: the file it came from, or "<string>"
    source: str = "<string>"
    #: who hears of its end or its jobs' failures (ccd.spec.notify), besides the
    #: daemon config's own notifiers
    notify: list[Notifier] = Field(default_factory=list)
    #: submit-time parameters: each one's value (its default, or given at submit)
    params: dict[str, Any] = Field(default_factory=dict)
    #: reuse earlier runs of jobs whose cache key is unchanged (``--resume``)
    resume: bool = False
