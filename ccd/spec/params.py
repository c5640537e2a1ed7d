"""Submit-time parameters: the top-level ``params:`` block and ``--set NAME=VALUE`` (pure).

A parameter is declared with its default (``epochs: 10``: an int, from the
value) or with its type (``data: {type: str}``: then it must be given, or
``{type: float, default: 0.1}``). Values given at submit are text and are read
as the declared type; the workflow then holds each parameter's value, which
``${{ params.NAME }}`` in ``run:``, ``args``, ``env`` and notebook ``params``
refers to (as ``$CCD_PARAM_NAME``, like an output: never spliced into a command).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from ccd.spec.hints import Suggestions, show, what
from ccd.spec.positions import Report

#: the types a parameter may have, by the name ``type:`` gives them
TYPES: Final = ("int", "float", "str", "bool")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUE, _FALSE = frozenset({"true", "yes", "1", "on"}), frozenset({"false", "no", "0", "off"})


def param_env_name(name: str) -> str:
    return f"CCD_PARAM_{name.upper()}"


def param_text(value: Any) -> str:
    """A parameter's value as a job sees it (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def type_of(value: object) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str" if isinstance(value, str) else None


def read_as(kind: str, text: str) -> Any:
    """`text` (as ``--set`` gives it) as a value of type `kind`; ValueError if it is none."""
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{text!r} is not true or false")
    return text


def checked_params(
    block: object, given: Mapping[str, str], suggest: Suggestions
) -> tuple[dict[str, Any], list[Report]]:
    """Each declared parameter's value (its default, or what was given), and reports."""
    if block is None:
        block = {}
    if not isinstance(block, dict):
        return {}, [
            (("params",), "wrong-type", f"params must be a mapping, not {what(block)}", False)
        ]
    values: dict[str, Any] = {}
    reports: list[Report] = []
    for name, spec in block.items():
        value, report = _one(name, spec, given)
        if report is not None:
            reports.append(report)
        elif value is not None:
            values[str(name)] = value
    for name in given:
        if name not in block:
            known = ", ".join(map(str, block)) or "none"
            message = (
                f"unknown param {name!r} given at submit{suggest(name, list(map(str, block)))}; "
                f"the workflow declares: {known}"
            )
            reports.append((("params",), "unknown-param", message, True))
    return values, reports


def _one(name: object, spec: object, given: Mapping[str, str]) -> tuple[Any, Report | None]:
    where = ("params", str(name))
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        message = (
            f"param name {show(name)} must be letters, digits and '_', not starting with a digit"
        )
        return None, (where, "bad-param", message, True)
    kind, default, problem = _declaration(name, spec)
    if problem is not None:
        return None, (where, "bad-param", problem, False)
    assert kind is not None
    if name in given:
        try:
            return read_as(kind, given[name]), None
        except ValueError:
            message = f"param {name} is {kind}: {given[name]!r} given at submit is not one"
            return None, (where, "bad-param", message, False)
    if default is None:
        message = f"param {name} has no default: give it at submit (--set {name}=VALUE)"
        return None, (where, "missing-param", message, False)
    return default, None


def _declaration(name: str, spec: object) -> tuple[str | None, Any, str | None]:
    """The type and default of one declaration, or what is wrong with it."""
    if not isinstance(spec, dict):
        kind = type_of(spec)
        if kind is None:
            return (
                None,
                None,
                (
                    f"param {name}: give a default (e.g. {name}: 10) or a type "
                    f"({name}: {{type: str}}), not {what(spec)}"
                ),
            )
        return kind, spec, None
    unknown = sorted(set(map(str, spec)) - {"type", "default", "help"})
    if unknown:
        return None, None, f"param {name}: unknown key {unknown[0]!r} (type, default, help)"
    default = spec.get("default")
    kind = spec.get("type", type_of(default))
    if kind not in TYPES:
        return None, None, f"param {name}: type must be one of {', '.join(TYPES)}, not {show(kind)}"
    if default is not None:
        if kind == "float" and type_of(default) == "int":
            default = float(default)
        if type_of(default) != kind:
            return None, None, f"param {name}: its default {show(default)} is not {kind}"
    return kind, default, None
