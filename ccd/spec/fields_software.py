"""The checks of the keys that declare a job's software (``venv``, ``conda``,
``modules``, ``container``, ``setup``), a notebook's ``params``, ``foreach`` and
``when``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ccd.spec.field_kit import Bad, FieldCheck, FieldContext, need_nonempty, plain_data
from ccd.spec.hints import show, what
from ccd.spec.model import TRIGGER_RULES
from ccd.spec.references import Reference, parse


def _venv(value: object, context: FieldContext) -> str:
    return need_nonempty(value, "venv", "the directory of a virtualenv, e.g. venv: .venv")


def _conda(value: object, context: FieldContext) -> str:
    return need_nonempty(value, "conda", "an environment's name or its prefix directory")


def _container(value: object, context: FieldContext) -> str:
    return need_nonempty(value, "container", "an image, e.g. docker://python:3.11 or a .sif file")


def _modules(value: object, context: FieldContext) -> list[str]:
    """``modules: [gcc/12, cuda]``, or the same as one text ``modules: gcc/12 cuda``."""
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise Bad("wrong-type", f"modules must be a list of module names, not {what(value)}")
    names = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip() or len(item.split()) != 1:
            raise Bad(
                "bad-value",
                f"modules[{index}] must be one module name (e.g. cuda/12.2), not {show(item)}",
                (index,),
            )
        names.append(item)
    return names


def _setup(value: object, context: FieldContext) -> list[str]:
    """Shell lines run before the job: a list, or one text of lines."""
    lines = value.splitlines() if isinstance(value, str) else value
    if not isinstance(lines, list):
        raise Bad("wrong-type", f"setup must be a list of shell lines, not {what(value)}")
    for index, line in enumerate(lines):
        if not isinstance(line, str):
            raise Bad(
                "wrong-type", f"setup[{index}] must be a shell line, not {what(line)}", (index,)
            )
    return [line for line in lines if line.strip()]


def _params(value: object, context: FieldContext) -> dict[str, Any]:
    """A notebook's parameters: names and plain values (papermill's parameters cell)."""
    if not isinstance(value, dict):
        raise Bad(
            "wrong-type",
            f"params must be a mapping of name: value (e.g. {{epochs: 10}}), not {what(value)}",
        )
    checked = plain_data(value, (), "params")
    assert isinstance(checked, dict)
    for name in checked:
        if not name.isidentifier():
            raise Bad(
                "bad-value",
                f"params name {name!r} is not a Python identifier "
                "(papermill sets each as a variable)",
                (name,),
                at_key=True,
            )
    return checked


def _foreach(value: object, context: FieldContext) -> str | list[Any]:
    """``foreach: [a, b]`` or ``foreach: ${{ jobs.NAME.outputs.KEY }}`` (a JSON list)."""
    if isinstance(value, list):
        if len(value) > MAX_FOREACH:
            raise Bad("bad-value", f"foreach has {len(value)} items; at most {MAX_FOREACH}")
        checked = plain_data(value, (), "foreach")
        assert isinstance(checked, list)
        return checked
    if isinstance(value, str):
        parts = parse(value.strip())
        if len(parts) == 1 and isinstance(parts[0], Reference):
            return value.strip()
    raise Bad(
        "wrong-type",
        "foreach must be a list (foreach: [a, b]) or one output reference holding a "
        f"JSON list (foreach: ${{{{ jobs.NAME.outputs.KEY }}}}), not {show(value)}",
    )


def _when(value: object, context: FieldContext) -> str:
    if not isinstance(value, str) or value not in TRIGGER_RULES:
        raise Bad(
            "bad-value",
            f"when must be one of {', '.join(TRIGGER_RULES)} (what of the parents' outcomes "
            f"the job runs after), not {show(value)}{context.suggest(str(value), TRIGGER_RULES)}",
        )
    return value


#: items of one ``foreach:`` at most (as for ``array:``)
MAX_FOREACH: Final = 100_000

#: the keys above, in the order they are checked (part of ``FIELD_CHECKS``)
SOFTWARE_CHECKS: Final[Mapping[str, FieldCheck]] = {
    "venv": _venv,
    "conda": _conda,
    "modules": _modules,
    "container": _container,
    "setup": _setup,
    "params": _params,
    "foreach": _foreach,
    "when": _when,
}
