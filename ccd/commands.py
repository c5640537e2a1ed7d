"""What a job runs: its shell command and environment (pure).

Outputs of ancestors reach a job through references (``ccd.spec.references``):
in ``run:`` and ``args`` a reference becomes a reference to an environment
variable holding the value, so no output can inject shell syntax into the
job's command; in ``env:`` values the value is put in as literal text. An array
job's elements are ``NAME[0]``, ``NAME[1]``, …; a reference to the array as a
whole is a JSON list of its elements' values.

``env:`` values may use the job's own environment, ``$PATH`` or ``${HOME}``, by
the rules of `ccd.expand`; they are expanded where the job runs (``$PATH`` of a
remote job is its host's), so each becomes one sh word (`ccd.expand.shell_word`)
in which those references are the only thing the shell expands; an output's
value is never expanded.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ccd.expand import shell_word
from ccd.spec.model import Job
from ccd.spec.params import param_env_name, param_text
from ccd.spec.references import OPEN, Item, Malformed, ParamRef, Reference, parse

_NOT_ENV = re.compile(r"[^A-Za-z0-9_]")
#: a foreach element's item: the JSON text of the item (a text item as itself)
ITEM_ENV = "CCD_ITEM"
#: the executed copy of a notebook job's notebook, in its attempt's run directory
EXECUTED_NOTEBOOK = "output.ipynb"


class MissingOutput(Exception):
    """A job refers to an output that is not available; the message says which."""


def output_env_name(job: str, key: str) -> str:
    return f"CCD_OUTPUT_{_NOT_ENV.sub('_', job).upper()}_{key.upper()}"


def script_command(
    job: Job, python: str = "python3", quote: Callable[[str], str] = shlex.quote
) -> str:
    """The command that runs ``job.script``, found through ``$CCD_SCRIPT``.

    The executor sets CCD_SCRIPT: the file itself on this machine, its uploaded
    copy in the run directory on a remote host. `quote` makes each argument a
    shell word.
    """
    assert job.script is not None
    script = '"$CCD_SCRIPT"'
    args = "".join(f" {quote(a)}" for a in job.args)
    if job.script.endswith(".sh"):
        return f"exec sh {script}{args}"
    if job.script.endswith(".py"):
        return f"exec {shlex.quote(python)} -u {script}{args}"
    if job.script.endswith(".ipynb"):
        # the message names what the job ran with (its PATH, its interpreter) and the
        # command that installs papermill for exactly that interpreter
        py = shlex.quote(python)
        return (
            f'command -v papermill >/dev/null 2>&1 || {{ ccd_py=$(command -v {py}) || ccd_py=""\n'
            '  echo "ccd: notebooks run with papermill, which is not on this job\'s PATH ($PATH)"'
            " >&2\n"
            '  if [ -n "$ccd_py" ]; then echo "ccd: its Python is $ccd_py; install it there:'
            ' $ccd_py -m pip install papermill ipykernel" >&2\n'
            f'  else echo "ccd: and no {py} is on it either: install papermill where this job'
            ' finds it, or give the host its python:" >&2; fi\n'
            "  exit 127; }\n"
            # --log-output: each cell's output goes to the job's log as it is printed,
            # so a cell's markers and outputs are seen like any job's (papermill keeps
            # them only in the output notebook otherwise); no progress bar in the log
            f"exec papermill --log-output --no-progress-bar {script}"
            f' "$CCD_RUN_DIR/{EXECUTED_NOTEBOOK}"{notebook_parameters(job, quote)}{args}'
        )
    return f"exec {script}{args}"


def notebook_parameters(job: Job, quote: Callable[[str], str]) -> str:
    """papermill's options for ``params``: the literal ones as one YAML (JSON) text,
    so numbers stay numbers; a text with an output reference as ``-r NAME VALUE``
    (a text, through `quote`, which makes the reference a variable)."""
    literal = {k: v for k, v in job.params.items() if not (isinstance(v, str) and OPEN in v)}
    options = f" -y {shlex.quote(json.dumps(literal))}" if literal else ""
    for name, value in job.params.items():
        if name not in literal:
            options += f" -r {shlex.quote(name)} {quote(value)}"
    return options


@dataclass(frozen=True, slots=True)
class Resolved:
    command: str
    #: variables with literal values (CCD_*, the parents' outputs)
    env: dict[str, str]
    #: the job's ``env:``: each value one sh word, exported after its environment
    #: (venv, modules, ...) is set up, so that ``$PATH`` is the job's PATH
    exports: dict[str, str]


def _no_elements(name: str) -> Sequence[str] | None:
    return None


class _Substitution:
    """Resolves the references of one job against its ancestors' outputs."""

    def __init__(
        self,
        job: Job,
        outputs: Mapping[str, Mapping[str, str]],
        is_ancestor: Callable[[str], bool],
        elements: Callable[[str], Sequence[str] | None],
        env: dict[str, str],
        params: Mapping[str, Any],
    ) -> None:
        self.job = job
        self.outputs = outputs
        self.is_ancestor = is_ancestor
        self.elements = elements
        self.env = env
        self.params = params

    def value(self, ref: Reference) -> tuple[str, str]:
        """The variable a reference stands for in a shell command, and its value."""
        members = self.elements(ref.job) if ref.index is None else None
        sources = [ref.source] if members is None else list(members)
        values = [self._one(ref, source) for source in sources]
        value = values[0] if members is None else json.dumps(values)
        return output_env_name(ref.source, ref.key), value

    def _one(self, ref: Reference, source: str) -> str:
        if not self.is_ancestor(source):
            raise MissingOutput(
                f"'{ref.written}' refers to job '{source}', which is not an ancestor "
                f"of '{self.job.name}': add it to needs"
            )
        value = self.outputs.get(source, {}).get(ref.key)
        if value is None:
            raise MissingOutput(
                f"'{ref.written}': job '{source}' set no output '{ref.key}' "
                f"(print '::ccd output {ref.key}=VALUE' in it)"
            )
        return value

    def env_word(self, text: str) -> str:
        """An ``env:`` value as one sh word: ``$NAME`` expanded, outputs literal."""
        if OPEN not in text:
            return shell_word(text)
        return "".join(
            shell_word(part)
            if isinstance(part, str)
            # `$$` is a literal `$`: the value is not expanded
            else shell_word(self.variable(part)[1].replace("$", "$$"))
            for part in parse(text)
        )

    def shell(self, text: str, quote: Callable[[str], str] | None = None) -> str:
        """`text` as shell text: each reference a variable (in double quotes when the
        rest is quoted), the rest as written or through `quote`."""
        if OPEN not in text:
            return text if quote is None else quote(text)
        words = []
        for part in parse(text):
            if isinstance(part, str):
                words.append(part if quote is None else quote(part))
                continue
            name, value = self.variable(part)
            self.env[name] = value
            words.append("${" + name + "}" if quote is None else '"${' + name + '}"')
        return "".join(words)

    def variable(self, part: Reference | Malformed | Item | ParamRef) -> tuple[str, str]:
        """The variable a ``${{ … }}`` stands for, and its value."""
        if isinstance(part, ParamRef):
            if part.name not in self.params:
                raise MissingOutput(f"'{part.written}': the workflow has no param {part.name!r}")
            return param_env_name(part.name), param_text(self.params[part.name])
        if isinstance(part, Malformed):
            raise MissingOutput(f"{part.message} (ccd never passes '{OPEN}' to the shell)")
        if isinstance(part, Item):
            element = self.job.array
            if element is None or not element.foreach:
                raise MissingOutput(
                    f"'{part.written}' in job '{self.job.name}': only an element of a "
                    "foreach job has an item"
                )
            return ITEM_ENV, element.value
        return self.value(part)


def resolve(
    job: Job,
    *,
    outputs: Mapping[str, Mapping[str, str]],
    is_ancestor: Callable[[str], bool],
    base_env: Mapping[str, str],
    python: str = "python3",
    elements: Callable[[str], Sequence[str] | None] = _no_elements,
    params: Mapping[str, Any] | None = None,
) -> Resolved:
    """The command and environment of one attempt; raises MissingOutput.

    `elements` names the elements of an array job (None for any other name);
    `params` are the workflow's parameters, each in the environment as well.
    """
    env = dict(base_env)
    for name, value in (params or {}).items():
        env[param_env_name(name)] = param_text(value)
    # every output of every direct parent is in the environment
    for parent in job.needs:
        for key, value in outputs.get(parent, {}).items():
            env[output_env_name(parent, key)] = value
    substitution = _Substitution(job, outputs, is_ancestor, elements, env, params or {})
    exports = {name: substitution.env_word(value) for name, value in job.env.items()}
    if job.run is not None:
        command = substitution.shell(job.run)
    else:
        command = script_command(job, python, lambda arg: substitution.shell(arg, shlex.quote))
    if OPEN in command:  # a safety net: nothing above leaves one
        raise MissingOutput(f"the command of '{job.name}' still holds '{OPEN}'")
    return Resolved(command=command, env=env, exports=exports)
