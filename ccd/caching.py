"""Cache keys: what a job's result depends on, as named parts, and their digest (pure).

A job's key is the digest of its parts; two runs of a job with the same key
compute the same thing, so ``--resume`` reuses the earlier one. Each part names
one thing the job depends on, and its value is the thing itself when it is short
(a parameter's value, the host) or a digest of it (a command, a script's bytes, an
input file's content), so ``ccctl why`` can say which one changed without the
store keeping whole scripts:

=====================  ===============================================================
part                   what it holds
=====================  ===============================================================
``command``            the shell text the job runs (``run:``, or the script's command
                       line with its ``args``), outputs of ancestors as ``$CCD_OUTPUT_…``
``script``             the script file's bytes
``environment``        venv, conda, modules, container, setup (the job's over its host's)
``host``, ``executor`` where it runs
``workdir``            the directory it starts in
``env NAME``           each ``env:`` value as written
``variable NAME``      each variable ccd sets (ancestors' output values, foreach item,
                       array value) except those of one run only (workflow id, attempt)
``param NAME``         each parameter's value: every job sees every parameter
``input PATH``         each ``inputs:`` file (bytes, or size and mtime: ``cache: mtime``)
``parent NAME``        each parent's key and outputs: a parent that changed changes it
=====================  ===============================================================

Not in the key, by choice: retries, timeouts and Slurm resources (asking for more
memory does not change what a job computes), and the workflow's own name (reuse is
only between workflows of the same name anyway).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

#: variables ccd sets that differ between runs of the same job: not in its key
RUN_VARIABLES: Final = frozenset(
    {"CCD_WORKFLOW_ID", "CCD_ATTEMPT", "CCD_WORKFLOW", "CCD_JOB", "CUDA_VISIBLE_DEVICES"}
)
#: values up to this long are kept as they are in a part, longer ones as a digest
LITERAL_MAX: Final = 64
#: a part's value for an input file that does not exist
MISSING: Final = "missing"
DIGEST_PREFIX: Final = "sha256:"


def digest(data: bytes | str) -> str:
    """A short content digest (128 bits of SHA-256: collisions are not a concern)."""
    raw = data.encode() if isinstance(data, str) else data
    return DIGEST_PREFIX + hashlib.sha256(raw).hexdigest()[:32]


def shown(value: str) -> str:
    """A part's value: the text when it is short and printable, else its digest."""
    if len(value) <= LITERAL_MAX and value.isprintable():
        return value
    return digest(value)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_parts(
    *,
    command: str,
    script_digest: str | None,
    environment: str,
    host: str,
    executor: str,
    workdir: str,
    exports: Mapping[str, str],
    variables: Mapping[str, str],
    params: Mapping[str, Any],
    inputs: Mapping[str, str | None],
    parents: Mapping[str, tuple[str | None, Mapping[str, str]]],
) -> dict[str, str]:
    """The named parts of a job's cache key (see the module docstring).

    `environment`: its declaration as canonical JSON text (`canonical`); `inputs`:
    each input path's fingerprint (None: it does not exist); `parents`: each
    parent's key (None: it has none) and outputs."""
    parts = {
        "command": shown(command),
        "environment": shown(environment),
        "host": shown(host),
        "executor": executor,
        "workdir": shown(workdir),
    }
    if script_digest is not None:
        parts["script"] = script_digest
    for name, value in exports.items():
        parts[f"env {name}"] = shown(value)
    for name, value in variables.items():
        if name not in RUN_VARIABLES and not name.startswith("CCD_PARAM_"):
            parts[f"variable {name}"] = shown(value)
    for name, value in params.items():
        parts[f"param {name}"] = shown(value if isinstance(value, str) else canonical(value))
    for path, fingerprint in inputs.items():
        parts[f"input {path}"] = MISSING if fingerprint is None else fingerprint
    for name, (key, outputs) in parents.items():
        parts[f"parent {name}"] = digest(canonical([key, dict(outputs)]))
    return parts


def cache_key(parts: Mapping[str, str]) -> str:
    """The key of a job with these parts."""
    return digest(canonical(dict(parts)))[len(DIGEST_PREFIX) :]


def changes(before: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """What differs between two runs' parts, one sentence each, in a stable order."""
    said = []
    for name in sorted(before.keys() | now.keys(), key=_order):
        old, new = before.get(name), now.get(name)
        if old == new:
            continue
        if old is None:
            said.append(f"{name} is new ({_value(new)})")
        elif new is None:
            said.append(f"{name} is gone (was {_value(old)})")
        elif new == MISSING:
            said.append(f"{name} is missing")
        elif old.startswith(DIGEST_PREFIX) or new.startswith(DIGEST_PREFIX):
            said.append(f"{name} changed")
        elif name.startswith("input "):  # size and modification time: not worth showing
            said.append(f"{name} changed (size or modification time)")
        else:
            said.append(f"{name} changed: {old} -> {new}")
    return said


#: the order `changes` lists parts in: what a user edits most often first
_KINDS: Final = ("script", "command", "param", "input", "env", "variable", "parent")


def _order(name: str) -> tuple[int, str]:
    kind = name.split(" ", 1)[0]
    return (_KINDS.index(kind) if kind in _KINDS else len(_KINDS), name)


def _value(value: str | None) -> str:
    if value is None or value.startswith(DIGEST_PREFIX):
        return "its content"
    return value
