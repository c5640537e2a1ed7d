"""Per-key checks of a job's fields: a table from key to a pure check function.

Each check takes the value as written and a `FieldContext` (the workflow's
directory, the known hosts, the did-you-mean budget) and returns the checked
value, or raises `Bad` saying what is wrong and where inside the value. The
same checks serve a job's keys and ``defaults:``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any, Final

from ccd.markers import compile_progress_regex
from ccd.spec.field_kit import (
    NO_BASE_HINT,
    Bad,
    FieldCheck,
    FieldContext,
    need_duration,
    need_text,
    plain_data,
    scalar_text,
)
from ccd.spec.fields_cache import CACHE_CHECKS
from ccd.spec.fields_software import SOFTWARE_CHECKS
from ccd.spec.hints import show, what
from ccd.spec.model import KNOWN_RESOURCES, RETRY_KINDS, ExecutorKind
from ccd.spec.positions import path_part

__all__ = ["FIELD_CHECKS", "NO_BASE_HINT", "Bad", "FieldCheck", "FieldContext"]

#: elements of one ``array:`` job at most
MAX_ARRAY: Final = 100_000

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _run(value: object, context: FieldContext) -> str:
    if isinstance(value, list):
        raise Bad(
            "wrong-type",
            "run must be one command line as text, not a list; join the words, "
            "or use script: with args:",
        )
    text = need_text(value, "run", "a command line")
    if not text.strip():
        raise Bad("bad-value", "run is empty; give the command to run")
    return text


def _script(value: object, context: FieldContext) -> str:
    text = need_text(value, "script", "a file path")
    if not text.strip():
        raise Bad("bad-value", "script is empty; give the path of a script file")
    path = os.path.expanduser(text)
    if context.base_dir is None and not os.path.isabs(path):
        raise Bad("relative-path", f"script {text!r} is relative; {NO_BASE_HINT}")
    path = os.path.normpath(os.path.join(context.base_dir or "/", path))
    if os.path.isdir(path):
        raise Bad("script-not-found", f"script {text!r} is a directory ({path}); give a file")
    if not os.path.isfile(path):
        raise Bad(
            "script-not-found",
            f"script {text!r} not found (looked for {path}); "
            "paths are relative to the workflow file's directory",
        )
    return path


def _args(value: object, context: FieldContext) -> list[str]:
    if not isinstance(value, list):
        raise Bad(
            "wrong-type",
            f"args must be a list, not {what(value)}; e.g. args: [--epochs, '3']",
        )
    return [scalar_text(item, f"args[{index}]", (index,)) for index, item in enumerate(value)]


def _needs(value: object, context: FieldContext) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise Bad(
            "wrong-type",
            f"needs must be a job name or a list of job names, not {what(value)}",
        )
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise Bad(
                "wrong-type", f"needs[{index}] must be a job name, not {what(item)}", (index,)
            )
    return list(value)


def _host(value: object, context: FieldContext) -> str:
    host = need_text(value, "host", "a host name")
    if host not in context.known_hosts:
        hint = context.suggest(host, sorted(context.known_hosts))
        raise Bad(
            "unknown-host",
            f"unknown host {host!r}{hint}; add it to the daemon config's hosts:",
        )
    return host


def _executor(value: object, context: FieldContext) -> ExecutorKind:
    text = need_text(value, "executor", "local, ssh or slurm")
    try:
        return ExecutorKind(text)
    except ValueError:
        choices = [kind.value for kind in ExecutorKind]
        raise Bad(
            "unknown-executor",
            f"unknown executor {text!r}{context.suggest(text, choices)}; use local, ssh or slurm",
        ) from None


def _retries(value: object, context: FieldContext) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Bad("wrong-type", f"retries must be a whole number, not {what(value)}")
    if value < 0:
        raise Bad("negative-number", "retries cannot be negative; use 0 for no retries")
    return value


def _retry_on(value: object, context: FieldContext) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Bad(
            "wrong-type",
            f"retry_on must be a list of failure kinds ({', '.join(RETRY_KINDS)}), "
            f"not {what(value)}",
        )
    for index, kind in enumerate(value):
        if kind not in RETRY_KINDS:
            raise Bad(
                "bad-value",
                f"unknown failure kind {kind!r}{context.suggest(kind, RETRY_KINDS)}; "
                f"use {', '.join(RETRY_KINDS)}",
                (index,),
            )
    return list(value)


def _retry_delay(value: object, context: FieldContext) -> float:
    return need_duration(value, "retry_delay")


def _retry_backoff(value: object, context: FieldContext) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Bad("wrong-type", f"retry_backoff must be a number, not {what(value)}")
    number = float(value) if abs(value) < 1e300 else math.inf
    if not math.isfinite(number) or number < 1:
        raise Bad(
            "bad-value",
            "retry_backoff must be a finite number of at least 1 "
            "(1 keeps the delay constant, 2 doubles it)",
        )
    return number


def _timeout(value: object, context: FieldContext) -> float | None:
    if value is None:
        return None
    seconds = need_duration(value, "timeout")
    if seconds == 0:
        raise Bad("bad-duration", "timeout must be longer than 0; leave it out for no time limit")
    return seconds


def _env(value: object, context: FieldContext) -> dict[str, str]:
    if not isinstance(value, dict):
        raise Bad("wrong-type", f"env must be a mapping of NAME: value, not {what(value)}")
    env: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            raise Bad(
                "bad-env-name",
                f"invalid environment variable name {show(key)}: use letters, digits "
                "and '_', not starting with a digit",
                (path_part(key),),
                at_key=True,
            )
        env[key] = scalar_text(item, f"env {key}", (key,))
    return env


def _workdir(value: object, context: FieldContext) -> str:
    text = need_text(value, "workdir", "a directory path")
    if not text.strip():
        raise Bad(
            "bad-value",
            "workdir is empty; leave it out to use the workflow's directory, or write "
            "workdir: run for the attempt's own run directory",
        )
    return text


def _progress_regex(value: object, context: FieldContext) -> str:
    text = need_text(value, "progress_regex", "a regular expression")
    try:
        compile_progress_regex(text)
    except ValueError as exc:
        raise Bad("bad-regex", str(exc)) from None
    return text


def _resources(value: object, context: FieldContext) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Bad(
            "wrong-type",
            f"resources must be a mapping (e.g. {{partition: gpu, mem: 16G}}), not {what(value)}",
        )
    for key in value:
        if isinstance(key, str) and key not in KNOWN_RESOURCES:
            raise Bad(
                "unknown-key",
                f"unknown resource {key!r}{context.suggest(key, KNOWN_RESOURCES)}; "
                f"known: {', '.join(sorted(KNOWN_RESOURCES))}",
                (key,),
                at_key=True,
            )
    extra = value.get("extra", [])
    if not isinstance(extra, list):
        raise Bad("wrong-type", "resources.extra must be a list of sbatch arguments", ("extra",))
    checked = plain_data(value, ())
    assert isinstance(checked, dict)
    return checked


def _array(value: object, context: FieldContext) -> list[str]:
    """``array: N`` (elements 0..N-1) or ``array: [values]``: each element's value."""
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise Bad(
            "wrong-type",
            f"array must be a count (array: 50) or a list of values "
            f"(array: [0.1, 0.2]), not {what(value)}",
        )
    if isinstance(value, int):
        if not 1 <= value <= MAX_ARRAY:
            raise Bad("bad-value", f"array must be between 1 and {MAX_ARRAY}, not {value}")
        return [str(i) for i in range(value)]
    if not value or len(value) > MAX_ARRAY:
        raise Bad("bad-value", f"array needs 1 to {MAX_ARRAY} values, not {len(value)}")
    values = []
    for index, item in enumerate(value):
        if isinstance(item, (dict, list)) or item is None:
            raise Bad(
                "wrong-type",
                f"array[{index}] must be a plain value (text or number), not {what(item)}",
                (index,),
            )
        values.append(str(item).lower() if isinstance(item, bool) else str(item))
    return values


#: every key a job may have, with its check, in the order they are checked
FIELD_CHECKS: Final[Mapping[str, FieldCheck]] = {
    "run": _run,
    "script": _script,
    "args": _args,
    "needs": _needs,
    "host": _host,
    "executor": _executor,
    "retries": _retries,
    "retry_delay": _retry_delay,
    "retry_backoff": _retry_backoff,
    "retry_on": _retry_on,
    "timeout": _timeout,
    "env": _env,
    "workdir": _workdir,
    "progress_regex": _progress_regex,
    "resources": _resources,
    "array": _array,
    **SOFTWARE_CHECKS,
    **CACHE_CHECKS,
}
