"""Slurm's vocabulary, as pure functions: batch directives, queries, answers, outcomes.

Everything here is table-driven and tested on real ``squeue``/``sacct``/``scontrol``
output; the poller and the attempts only run the queries and feed their text in.
The shell text that stages and submits a job is built next door, in `scripts`.
"""

from __future__ import annotations

import math
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ccd.executors.slurm.usage import job_usage, with_step
from ccd.spec.model import KNOWN_RESOURCES
from ccd.states import JobState
from ccd.usage import Usage

#: squeue's output format: id, state, reason, name ('|' never occurs in them)
SQUEUE_FORMAT = "%i|%T|%r|%j"
#: every job of this user, finished ones too while Slurm remembers them (MinJobAge)
SQUEUE_COMMAND = f"squeue -h -t all --me -o {shlex.quote(SQUEUE_FORMAT)}"
#: sacct's fields, in order (with -P: '|'-separated); the last ones are what the job
#: cost (`ccd.executors.slurm.usage`)
SACCT_FIELDS = (
    "JobID", "State", "ExitCode", "End", "JobName",
    "UserCPU", "SystemCPU", "MaxRSS", "Elapsed", "NodeList", "Start",
)  # fmt: skip
#: the fields every line has (older samples, and tests, stop here)
_SACCT_STATE_FIELDS = 5

#: resources key -> sbatch option
_OPTIONS = {
    "partition": "--partition",
    "time": "--time",
    "mem": "--mem",
    "cpus": "--cpus-per-task",
    "gpus": "--gpus",
    "gres": "--gres",
    "nodes": "--nodes",
    "ntasks": "--ntasks",
    "account": "--account",
    "qos": "--qos",
    "constraint": "--constraint",
}


class DirectiveError(ValueError):
    """A resources value that cannot become an sbatch option."""


def slurm_time(seconds: float) -> str:
    """Seconds as Slurm's D-HH:MM:SS, rounded up to whole minutes (Slurm's granularity)."""
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00"


def job_name(workflow_id: str, job: str, attempt: int) -> str:
    """The Slurm job name: finds an attempt whose id was never stored (crash after sbatch)."""
    return f"ccd.{workflow_id}.{job}.{attempt}"


def directives(
    resources: Mapping[str, Any],
    *,
    timeout: float | None,
    name: str,
    output: str,
    array: str | None = None,
) -> list[str]:
    """The ``#SBATCH`` lines of a job (values quoted for the shell that reads them)."""
    unknown = set(resources) - KNOWN_RESOURCES
    if unknown:
        raise DirectiveError(
            f"unknown resources {sorted(unknown)}; known: {sorted(KNOWN_RESOURCES)}"
        )
    options = [f"--job-name={name}", f"--output={output}", "--open-mode=append"]
    for key, option in _OPTIONS.items():
        if key in resources and resources[key] is not None:
            value = str(resources[key])
            if not value or "\n" in value:
                raise DirectiveError(f"resources.{key} must be a one-line value")
            options.append(f"{option}={value}")
    if "time" not in resources and timeout is not None:
        options.append(f"--time={slurm_time(timeout)}")
    if array is not None:
        options.append(f"--array={array}")
    extra = resources.get("extra", [])
    if isinstance(extra, str) or not isinstance(extra, Sequence):
        raise DirectiveError("resources.extra must be a list of sbatch arguments")
    options.extend(str(arg) for arg in extra)
    return [f"#SBATCH {shlex.quote(opt)}" for opt in options]


# -- reading Slurm's answers -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QueueEntry:
    job_id: str
    state: str
    reason: str
    name: str


def expand_job_ids(text: str) -> list[str]:
    """The job ids one squeue line stands for.

    A job array's pending elements share one line, ``123_[0-5,7%2]`` (``%2`` is
    the throttle): that is ``123_0`` … ``123_5`` and ``123_7``.  Any other id
    stands for itself.
    """
    match = re.fullmatch(r"(\d+)_\[([^\]]*)\]", text)
    if match is None:
        return [text]
    base, ranges = match.group(1), match.group(2).split("%", 1)[0]
    ids: list[str] = []
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            continue
        ids.extend(f"{base}_{task}" for task in range(int(first), int(last or first) + 1))
    return ids


def parse_squeue(text: str) -> dict[str, QueueEntry]:
    """``squeue -h -o '%i|%T|%r|%j'`` output, by job id (array elements one by one)."""
    entries = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) != 4 or not parts[0]:
            continue
        for job_id in expand_job_ids(parts[0]):
            entries[job_id] = QueueEntry(job_id, parts[1].upper(), parts[2], parts[3])
    return entries


def squeue_named_command(name: str) -> str:
    """squeue for the ids of this user's jobs called `name` (read with `expand_job_ids`)."""
    return f"squeue -h -t all --me -n {shlex.quote(name)} -o %i"


def max_array_size(scontrol_config: str) -> int | None:
    """``MaxArraySize`` in ``scontrol show config`` output; None if it is not there."""
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", scontrol_config, re.M)
    return int(found.group(1)) if found else None


def task_ranges(tasks: Sequence[int]) -> str:
    """``--array`` text for task ids: ``0-3,7,9-10``."""
    ordered = sorted(set(tasks))
    parts: list[str] = []
    start = prev = ordered[0]
    for task in [*ordered[1:], None]:
        if task is not None and task == prev + 1:
            prev = task
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if task is not None:
            start = prev = task
    return ",".join(parts)


@dataclass(frozen=True, slots=True)
class Notice:
    """What Slurm's own ``*** JOB 12 ON node CANCELLED AT … ***`` line in a log says."""

    state: JobState
    reason: str
    line: str


#: the end of a notice line -> (ccd state, reason)
_NOTICE_CAUSES: tuple[tuple[str, JobState, str], ...] = (
    ("DUE TO TIME LIMIT", JobState.TIMED_OUT, "timeout"),
    ("DUE TO PREEMPTION", JobState.FAILED, "preempted"),
    ("DUE TO NODE FAILURE", JobState.FAILED, "node_fail"),
    ("DUE TO JOB REQUEUE", JobState.QUEUED, "requeued"),
)
_NOTICE = re.compile(
    r"\*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT \S+(?: (DUE TO [A-Z ]+?))? \*\*\*"
)


def slurm_notice(log_tail: str) -> Notice | None:
    """The last notice Slurm wrote into a job's output, if any."""
    found = None
    for match in _NOTICE.finditer(log_tail):
        found = match
    if found is None:
        return None
    cause = found.group(1) or ""
    for text, state, reason in _NOTICE_CAUSES:
        if cause == text:
            return Notice(state, reason, found.group(0))
    if cause:
        return Notice(JobState.FAILED, cause.lower().replace("due to ", ""), found.group(0))
    return Notice(JobState.CANCELLED, "cancelled in Slurm", found.group(0))


#: what slurmstepd writes when it kills a job for its memory: the accounting poller's
#: limit (JobAcctGatherParams=OverMemoryKill: the job ends FAILED, signal 9) or the
#: cgroup OOM killer (the job ends OUT_OF_MEMORY)
_MEMORY_NOTICE = re.compile(
    r"Exceeded job memory limit|exceeded memory limit|oom-kill event|out-of-memory handler"
)


def memory_exceeded(log_tail: str) -> bool:
    """True if Slurm's lines in a job's output say it was killed for its memory."""
    return _MEMORY_NOTICE.search(log_tail) is not None


def sacct_command(job_ids: Sequence[str], since: float) -> str:
    """One ``sacct`` for these jobs, from `since` (epoch seconds) on: without ``-S``
    sacct looks only at today, and a job submitted before midnight would vanish.
    Steps are listed too (no ``-X``): their MaxRSS is the job's peak memory."""
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since))
    fields = ",".join(SACCT_FIELDS)
    return f"sacct -P -n -S {start} -E now -o {fields} -j {','.join(job_ids)}"


@dataclass(frozen=True, slots=True)
class Accounting:
    job_id: str
    state: str  #: e.g. "CANCELLED by 1000" keeps its detail
    exit_code: int | None
    signal: int | None
    name: str
    #: when the job ended (epoch seconds); None while sacct does not know
    end: float | None = None
    #: what it cost, as far as accounting knows (None: sacct printed no such fields)
    usage: Usage | None = None


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """Slurm's ``ExitCode=code:signal``."""
    code, _, sig = text.strip().partition(":")
    try:
        return int(code), (int(sig) if sig else None)
    except ValueError:
        return None, None


def parse_sacct(text: str) -> dict[str, Accounting]:
    """``sacct -P -n -o JobID,State,ExitCode,End,JobName,…``: one entry per job, its
    steps' lines (``123.batch``, ``123_4.0``) folded into its usage."""
    records: dict[str, Accounting] = {}
    steps: list[tuple[str, str]] = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < _SACCT_STATE_FIELDS:
            continue
        if "." in parts[0]:
            if len(parts) == len(SACCT_FIELDS):  # a step: only its MaxRSS counts
                steps.append((parts[0].partition(".")[0], parts[7]))
            continue
        code, sig = parse_exit_code(parts[2])
        end = parse_slurm_time(parts[3])
        usage = None
        if len(parts) == len(SACCT_FIELDS):
            usage = job_usage(parts[5], parts[6], parts[8], parts[9], parse_slurm_time(parts[10]))
        records[parts[0]] = Accounting(parts[0], parts[1], code, sig, parts[4], end, usage)
    for job_id, max_rss in steps:
        record = records.get(job_id)
        if record is not None and record.usage is not None:
            records[job_id] = replace(record, usage=with_step(record.usage, max_rss))
    return records


def parse_slurm_time(text: str) -> float | None:
    """A time sacct printed (``2026-11-25T10:00:01``, local time: as `sacct_command`'s
    ``-S`` is written) in epoch seconds; None for ``Unknown`` or ``None``."""
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


# -- outcomes ----------------------------------------------------------------------------
#: Slurm states that mean "waiting" (the job may still run)
QUEUED_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESV_DEL_HOLD",
        "SUSPENDED",
        "STOPPED",
        "SIGNALING",
        "STAGE_OUT",
    }
)
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING"})

#: terminal Slurm state -> (ccd state, reason)
_FINAL: dict[str, tuple[JobState, str | None]] = {
    "COMPLETED": (JobState.SUCCEEDED, None),
    "FAILED": (JobState.FAILED, None),
    "TIMEOUT": (JobState.TIMED_OUT, "timeout"),
    "OUT_OF_MEMORY": (JobState.FAILED, "oom"),
    "NODE_FAIL": (JobState.FAILED, "node_fail"),
    "PREEMPTED": (JobState.FAILED, "preempted"),
    "BOOT_FAIL": (JobState.FAILED, "boot_fail"),
    "DEADLINE": (JobState.FAILED, "deadline"),
    "CANCELLED": (JobState.CANCELLED, "cancelled"),
    "REVOKED": (JobState.CANCELLED, "revoked"),
    "SPECIAL_EXIT": (JobState.FAILED, "special_exit"),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    state: JobState
    reason: str | None
    exit_code: int | None


def final_verdict(slurm_state: str, exit_code: int | None, signal: int | None) -> Verdict | None:
    """A terminal Slurm state (as squeue, sacct or scontrol print it) as a ccd outcome.

    None when the state is not terminal.  ``CANCELLED by 1000`` keeps who cancelled.
    A COMPLETED job whose exit code is not 0 (e.g. OUT_OF_MEMORY recorded as
    ``0:125`` on some sites) is not called a success.
    """
    word, _, detail = slurm_state.strip().upper().partition(" ")
    word = word.rstrip("+")
    if word not in _FINAL:
        return None
    state, reason = _FINAL[word]
    if word == "CANCELLED" and detail:
        reason = f"cancelled {detail.lower()}"
    if state is JobState.SUCCEEDED and (exit_code not in (0, None) or signal not in (0, None)):
        state, reason = JobState.FAILED, f"completed with exit code {exit_code}:{signal}"
    if word == "COMPLETED" and signal == 125:
        state, reason = JobState.FAILED, "oom"
    return Verdict(state, reason, exit_code)


def queue_state(slurm_state: str) -> JobState | None:
    """squeue's state of a job still in the queue, as a ccd state (None if terminal/unknown)."""
    word = slurm_state.strip().upper().rstrip("+")
    if word in QUEUED_STATES:
        return JobState.QUEUED
    if word in RUNNING_STATES:
        return JobState.RUNNING
    return None


def parse_sbatch(text: str) -> str | None:
    """The job id printed by ``sbatch --parsable`` (``ID`` or ``ID;cluster``)."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    job_id = first.split(";", 1)[0].strip()
    return job_id if job_id.isdigit() else None
