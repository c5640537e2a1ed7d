"""The shell text ccd sends to a cluster to submit, cancel and find jobs (pure builders).

A submission is one script for ``sh -s`` on the login node, run locally or on one
SSH channel: it creates the run directories, writes each wrapper and the
``batch.sh`` that sbatch runs (heredocs, so no file transfer), and ends with
sbatch, whose output is the new job id.  Nothing here runs anything; the
``#SBATCH`` lines themselves come from `model.directives`.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ccd.executors.wrapper import EXIT, PID, WRAPPER

#: in a run directory (or an array's directory): the script sbatch runs
BATCH = "batch.sh"
#: in an array element's run directory: the array's job name and the element's task id
ARRAY_TASK = "array_task"
#: prints only the job id (``ID`` or ``ID;cluster``: see `model.parse_sbatch`)
SBATCH = f"sbatch --parsable {BATCH}"


def heredoc(path: str, text: str) -> str:
    """Shell text that writes `text` to `path` verbatim."""
    while True:
        delimiter = f"CCD_EOF_{secrets.token_hex(8)}"
        if delimiter not in text:
            break
    body = text if text.endswith("\n") else text + "\n"
    return f"cat > {shlex.quote(path)} <<'{delimiter}'\n{body}{delimiter}\n"


def batch_script(lines: Sequence[str], run_dir: str) -> str:
    """The script sbatch runs: reset the exit file (a requeued job runs again), then
    the wrapper."""
    d = shlex.quote(run_dir)
    return (
        "#!/bin/sh\n"
        + "".join(f"{line}\n" for line in lines)
        + (f": > {d}/{EXIT}\nexec sh {d}/{WRAPPER}\n")
    )


def array_script(lines: Sequence[str], array_dir: str) -> str:
    """`batch_script` for a job array: task ``t`` runs the element linked at
    ``<array_dir>/t``."""
    d = shlex.quote(array_dir)
    return (
        "#!/bin/sh\n"
        + "".join(f"{line}\n" for line in lines)
        + (f't="$SLURM_ARRAY_TASK_ID"\n: > {d}/"$t"/{EXIT}\nexec sh {d}/"$t"/{WRAPPER}\n')
    )


def submit_script(run_dir: str, wrapper: str, lines: Sequence[str]) -> str:
    """Stage one attempt (its wrapper, its batch script) and sbatch it."""
    d = shlex.quote(run_dir)
    return (
        f"set -e\nmkdir -p {d}\n"
        + heredoc(f"{run_dir}/{WRAPPER}", wrapper)
        + heredoc(f"{run_dir}/{BATCH}", batch_script(lines, run_dir))
        + f"cd {d}\n{SBATCH}\n"
    )


@dataclass(frozen=True, slots=True)
class Element:
    """One array element to stage: its run directory and its wrapper's text."""

    run_dir: str
    wrapper: str


def array_submit_script(
    array_dir: str, name: str, elements: Sequence[Element], lines: Sequence[str]
) -> str:
    """Stage array elements (task ``t`` is ``elements[t]``) and sbatch them as one array.

    Each element's run directory records the array's job name and its task id
    (`ARRAY_TASK`), so that it can be found again after a crash (`probe_command`).
    """
    a = shlex.quote(array_dir)
    parts = [f"set -e\nmkdir -p {a}\n"]
    for task, element in enumerate(elements):
        d = shlex.quote(element.run_dir)
        parts.append(
            f"mkdir -p {d}\n"
            + heredoc(f"{element.run_dir}/{WRAPPER}", element.wrapper)
            + f"printf '%s\\n' {shlex.quote(name)} {task} > {d}/{ARRAY_TASK}\n"
            + f"ln -sfn {d} {a}/{task}\n"
        )
    parts.append(heredoc(f"{array_dir}/{BATCH}", array_script(lines, array_dir)))
    parts.append(f"cd {a}\n{SBATCH}\n")
    return "".join(parts)


def scancel_command(job_ids: Sequence[str]) -> str:
    return "scancel " + " ".join(job_ids)


# -- finding an attempt that was never recorded ------------------------------------------
def probe_command(run_dir: str) -> str:
    """What a run directory shows: staged at all, an array element, started."""
    d = shlex.quote(run_dir)
    return (
        f"test -e {d}/{WRAPPER} && echo staged; cat {d}/{ARRAY_TASK} 2>/dev/null; "
        f"test -e {d}/{PID} && echo started; true"
    )


@dataclass(frozen=True, slots=True)
class Probe:
    staged: bool
    started: bool
    #: an array element's (array job name, task id); None for a job of its own
    array_task: tuple[str, int] | None


def parse_probe(out: str) -> Probe:
    """`probe_command`'s output."""
    words = out.split()
    staged = "staged" in words
    array_task = None
    if staged and len(words) >= 3 and words[2].isdigit():
        array_task = words[1], int(words[2])
    return Probe(staged, "started" in words, array_task)
