"""What every check of a job key shares: the failure it raises, the context it gets,
and the checks of plain values that several keys need."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from ccd.spec.durations import parse_duration
from ccd.spec.hints import Suggestions, what
from ccd.spec.positions import PathKey, path_part


class Bad(Exception):
    """A value failed its check; `sub` locates the culprit inside the value."""

    def __init__(self, code: str, message: str, sub: PathKey = (), *, at_key: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.sub = sub
        self.at_key = at_key


@dataclass(frozen=True, slots=True)
class FieldContext:
    """What checks need beyond the value: where the file is and what exists."""

    #: relative paths in the file are relative to this directory; None: the text came
    #: without its file's path, and a relative path has nothing to be relative to
    base_dir: Path | None
    known_hosts: frozenset[str]
    suggest: Suggestions


FieldCheck = Callable[[object, FieldContext], object]

#: what a relative path in a workflow without its file's path is told to do
NO_BASE_HINT = (
    "the workflow came without the path of its file, so relative paths have no "
    "directory: submit it with ccctl submit (or ?source=/abs/path/of/wf.yaml) or "
    "give an absolute path"
)


def need_text(value: object, key: str, meaning: str) -> str:
    if not isinstance(value, str):
        raise Bad("wrong-type", f"{key} must be text ({meaning}), not {what(value)}")
    return value


def need_nonempty(value: object, key: str, meaning: str) -> str:
    text = need_text(value, key, meaning)
    if not text.strip():
        raise Bad("bad-value", f"{key} is empty; give {meaning}")
    return text.strip()


def scalar_text(value: object, description: str, sub: PathKey) -> str:
    """A plain value as the text a process sees (true/false for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    hint = "; use '' for an empty value" if value is None else ""
    raise Bad("wrong-type", f"{description} must be text or a number, not {what(value)}{hint}", sub)


def need_duration(value: object, key: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise Bad("bad-duration", f"{key}: {exc}") from None


def plain_data(value: object, sub: PathKey, label: str = "resource") -> object:
    """`value` as JSON-compatible data (dates become ISO text), else Bad; `label`
    names what the data is in messages."""
    if isinstance(value, dict):
        result: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Bad(
                    "wrong-type",
                    f"{label} keys must be text; quote {key!r}",
                    (*sub, path_part(key)),
                    at_key=True,
                )
            result[key] = plain_data(item, (*sub, key), label)
        return result
    if isinstance(value, list):
        return [plain_data(item, (*sub, index), label) for index, item in enumerate(value)]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        raise Bad("bad-value", f"{label} values must be finite numbers", sub)
    if value is None or isinstance(value, str | int | float):
        return value
    raise Bad("wrong-type", f"{label} values must be text or numbers, not {what(value)}", sub)
