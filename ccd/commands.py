"""What a job runs: its shell command and environment (pure).

Outputs of parents reach a child in two ways: ``${{ jobs.NAME.outputs.KEY }}``
in ``run:`` becomes a reference to an environment variable holding the value,
so no output can inject shell syntax into the child's command; in ``env:``
values the text is substituted directly (no shell is involved there).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ccd.spec.model import Job

OUTPUT_REF = re.compile(
    r"\$\{\{\s*jobs\.([A-Za-z0-9][A-Za-z0-9._-]*)\.outputs\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}"
)
_NOT_ENV = re.compile(r"[^A-Za-z0-9_]")


class MissingOutput(Exception):
    """A job refers to an output that is not available; the message says which."""


def output_env_name(job: str, key: str) -> str:
    return f"CCD_OUTPUT_{_NOT_ENV.sub('_', job).upper()}_{key.upper()}"


def script_command(job: Job, python: str = "python3") -> str:
    """The command that runs ``job.script``, found through ``$CCD_SCRIPT``.

    The executor sets CCD_SCRIPT: the file itself on this machine, its uploaded
    copy in the run directory on a remote host.
    """
    assert job.script is not None
    script = '"$CCD_SCRIPT"'
    args = "".join(f" {shlex.quote(a)}" for a in job.args)
    if job.script.endswith(".sh"):
        return f"exec sh {script}{args}"
    if job.script.endswith(".py"):
        return f"exec {shlex.quote(python)} -u {script}{args}"
    if job.script.endswith(".ipynb"):
        return (
            "command -v papermill >/dev/null 2>&1 || { echo 'ccd: notebooks run with papermill, "
            "which is not installed on this host: pip install papermill' >&2; exit 127; }\n"
            f'exec papermill {script} "$CCD_RUN_DIR/output.ipynb"{args}'
        )
    return f"exec {script}{args}"


@dataclass(frozen=True, slots=True)
class Resolved:
    command: str
    env: dict[str, str]


def resolve(
    job: Job,
    *,
    outputs: Mapping[str, Mapping[str, str]],
    is_ancestor: Callable[[str], bool],
    base_env: Mapping[str, str],
    python: str = "python3",
) -> Resolved:
    """The command and environment of one attempt; raises MissingOutput."""
    env = dict(base_env)
    # every output of every direct parent is in the environment
    for parent in job.needs:
        for key, value in outputs.get(parent, {}).items():
            env[output_env_name(parent, key)] = value

    def lookup(match: re.Match[str]) -> tuple[str, str]:
        source, key = match.group(1), match.group(2)
        if not is_ancestor(source):
            raise MissingOutput(
                f"'{match.group(0)}' refers to job '{source}', which is not an ancestor "
                f"of '{job.name}': add it to needs"
            )
        if key not in outputs.get(source, {}):
            raise MissingOutput(
                f"'{match.group(0)}': job '{source}' set no output '{key}' "
                f"(print '::ccd output {key}=VALUE' in it)"
            )
        return output_env_name(source, key), outputs[source][key]

    def as_variable(match: re.Match[str]) -> str:
        name, value = lookup(match)
        env[name] = value
        return "${" + name + "}"

    for name, value in job.env.items():
        env[name] = OUTPUT_REF.sub(lambda m: lookup(m)[1], value)
    command = OUTPUT_REF.sub(as_variable, job.run) if job.run is not None else None
    if command is None:
        command = script_command(job, python)
    return Resolved(command=command, env=env)
