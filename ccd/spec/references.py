"""Output references in ``run:``, ``args`` and ``env`` values, and their checks (pure).

Three forms, each between ``${{`` and ``}}``:

* ``jobs.NAME.outputs.KEY``: the output KEY of the job NAME, an ancestor;
* ``jobs.NAME[I].outputs.KEY``: the output KEY of element I of the array job NAME;
* ``jobs.NAME.outputs.KEY`` where NAME is an array or foreach job: a JSON list of
  every element's KEY, in index order (every element must be an ancestor:
  ``needs: [NAME]``);

and ``${{ item }}`` in a ``foreach:`` job: the element's item (``$CCD_ITEM``), and
``${{ params.NAME }}``: a submit-time parameter (``$CCD_PARAM_NAME``).

`parse` splits a text into literal text, references and malformed pieces; the
validator (`reference_problems`) and the launch (`ccd.commands`) both use it, so
a ``${{`` the validator let through is resolved, never passed on as text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from ccd.spec.build import Draft
from ccd.spec.hints import Suggestions
from ccd.spec.model import element_name
from ccd.spec.positions import PathKey, Report

OPEN: Final = "${{"
CLOSE: Final = "}}"
FORMS: Final = "${{ jobs.NAME.outputs.KEY }} (or jobs.NAME[INDEX].outputs.KEY for one element)"
_ITEM_BODY = re.compile(r"\s*item\s*")
_PARAM_BODY = re.compile(r"\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*")
_BODY = re.compile(
    r"\s*jobs\.([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(\d+)\])?\.outputs\.([A-Za-z_][A-Za-z0-9_]*)\s*"
)
#: common slips, and what to write instead
_SLIPS: Final = (
    (re.compile(r"^\$\{\{\s*job\."), "'jobs.', not 'job.'"),
    (re.compile(r"\.output\."), "'.outputs.', not '.output.'"),
)


@dataclass(frozen=True, slots=True)
class Reference:
    """One well-formed reference, as written and as parsed."""

    written: str
    #: the job as written, without the element index
    job: str
    index: int | None
    key: str

    @property
    def source(self) -> str:
        """The job whose outputs are read: the job itself or one element of it."""
        return self.job if self.index is None else element_name(self.job, self.index)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A ``${{`` that does not start a well-formed reference; `message` says why."""

    written: str
    message: str


@dataclass(frozen=True, slots=True)
class Item:
    """``${{ item }}``: the item of a foreach job's element."""

    written: str


@dataclass(frozen=True, slots=True)
class ParamRef:
    """``${{ params.NAME }}``: a submit-time parameter of the workflow."""

    written: str
    name: str


Part = str | Reference | Malformed | Item | ParamRef


def parse(text: str) -> list[Part]:
    """`text` as literal parts, references and malformed pieces, in order."""
    parts: list[Part] = []
    start = 0
    while (at := text.find(OPEN, start)) >= 0:
        if at > start:
            parts.append(text[start:at])
        end = text.find(CLOSE, at + len(OPEN))
        if end < 0:
            written = text[at:]
            shown = written if len(written) <= 40 else written[:37] + "..."
            message = f"unclosed output reference '{shown}': end it with '{CLOSE}'; write {FORMS}"
            parts.append(Malformed(written, message))
            return parts
        written = text[at : end + len(CLOSE)]
        match = _BODY.fullmatch(text, at + len(OPEN), end)
        if match is None and _ITEM_BODY.fullmatch(text, at + len(OPEN), end):
            parts.append(Item(written))
        elif match is None and (param := _PARAM_BODY.fullmatch(text, at + len(OPEN), end)):
            parts.append(ParamRef(written, param.group(1)))
        elif match is None:
            parts.append(Malformed(written, _malformed(written)))
        else:
            name, index, key = match.groups()
            parts.append(Reference(written, name, None if index is None else int(index), key))
        start = end + len(CLOSE)
    if start < len(text):
        parts.append(text[start:])
    return parts


def _malformed(written: str) -> str:
    slips = [fix for pattern, fix in _SLIPS if pattern.search(written)]
    hint = f" ({'; '.join(slips)})" if slips else ""
    return f"malformed output reference '{written}'{hint}; write {FORMS}"


# --- validation ---------------------------------------------------------------------


def reference_problems(
    drafts: dict[str, Draft], suggest: Suggestions, params: Collection[str] = ()
) -> list[Report]:
    """Every malformed reference, every one to a job that is not an ancestor, and
    every one to a parameter the workflow does not declare (`params`)."""
    reports: list[Report] = []
    sizes = {name: _array_size(draft) for name, draft in drafts.items()}
    fans = {name for name, draft in drafts.items() if "foreach" in draft.fields}
    for name, draft in drafts.items():
        ancestors = _Ancestors(drafts, name)
        if name in fans and "array" in draft.fields:
            message = f"job {name!r} has both array: and foreach:; keep one"
            reports.append((draft.fields["foreach"][1], "array-and-foreach", message, True))
        for path, text in _texts(draft):
            for part in parse(text):
                if isinstance(part, str):
                    continue
                if isinstance(part, ParamRef):
                    problem = _param_problem(name, part, params, suggest)
                else:
                    problem = _part_problem(name, part, sizes, fans, ancestors, suggest)
                if problem is not None:
                    reports.append((path, *problem, False))
    return reports


def _param_problem(
    child: str, ref: ParamRef, params: Collection[str], suggest: Suggestions
) -> tuple[str, str] | None:
    if ref.name in params:
        return None
    declared = ", ".join(params) or "none"
    return "unknown-param", (
        f"'{ref.written}' in job {child!r}: the workflow declares no param {ref.name!r}"
        f"{suggest(ref.name, list(params))} (params: {declared})"
    )


def _part_problem(
    child: str,
    part: Reference | Malformed | Item,
    sizes: Mapping[str, int | None],
    fans: set[str],
    ancestors: _Ancestors,
    suggest: Suggestions,
) -> tuple[str, str] | None:
    if isinstance(part, Malformed):
        return "bad-reference", f"job {child!r}: {part.message}"
    if isinstance(part, Item):
        if child in fans:
            return None
        return "bad-reference", (
            f"'{part.written}' in job {child!r}: only a job with foreach: has an item"
        )
    if part.index is not None and part.job in fans:
        return "bad-reference", (
            f"'{part.written}' in job {child!r}: the elements of foreach job {part.job!r} "
            f"are known only when it runs; write jobs.{part.job}.outputs.{part.key} "
            "for all of them (a JSON list)"
        )
    return _reference_problem(child, part, sizes, ancestors, suggest)


def _reference_problem(
    child: str,
    ref: Reference,
    sizes: Mapping[str, int | None],
    ancestors: _Ancestors,
    suggest: Suggestions,
) -> tuple[str, str] | None:
    """The code and message of what is wrong with `ref` in job `child`, if anything."""
    where = f"'{ref.written}' in job {child!r}"
    if ref.job not in sizes:
        return "unknown-job", (
            f"{where} refers to job {ref.job!r}, which is not a job in this "
            f"workflow{suggest(ref.job, sizes)}"
        )
    size = sizes[ref.job]
    if ref.index is not None and size is None:
        return "bad-reference", (
            f"{where}: job {ref.job!r} is not an array job; write jobs.{ref.job}.outputs.{ref.key}"
        )
    if ref.index is not None and size is not None and ref.index >= size:
        return "bad-reference", f"{where}: array job {ref.job!r} has elements 0 to {size - 1}"
    if ref.job not in ancestors:
        return "not-an-ancestor", (
            f"{where} refers to job {ref.job!r}, which is not an ancestor "
            f"of {child!r}: add it to needs"
        )
    return None


def _texts(draft: Draft) -> Iterator[tuple[PathKey, str]]:
    """The values of `draft` in which references are resolved, and where each was written."""
    foreach = draft.fields.get("foreach")
    if foreach is not None and isinstance(foreach[0], str):
        yield foreach[1], foreach[0]
    run = draft.fields.get("run")
    if run is not None and isinstance(run[0], str) and OPEN in run[0]:
        yield run[1], run[0]
    args = draft.fields.get("args")
    if args is not None and isinstance(args[0], list):
        for index, arg in enumerate(args[0]):
            if isinstance(arg, str) and OPEN in arg:
                yield (*args[1], index), arg
    env = draft.fields.get("env")
    if env is not None and isinstance(env[0], dict):
        for key, value in env[0].items():
            if isinstance(value, str) and OPEN in value:
                inherited = key in draft.env_defaults
                yield ("defaults", "env", key) if inherited else (*env[1], key), value


def _array_size(draft: Draft) -> int | None:
    array = draft.fields.get("array")
    return len(array[0]) if array is not None and isinstance(array[0], list) else None


class _Ancestors:
    """The jobs one job needs, directly or through others, walked when first asked
    (parents that are no job are skipped: the graph checks report them)."""

    def __init__(self, drafts: dict[str, Draft], name: str) -> None:
        self._drafts = drafts
        self._name = name
        self._found: set[str] | None = None

    def __contains__(self, job: str) -> bool:
        # most references name a parent: no walk for those
        if job in self._drafts[self._name].needs:
            return True
        if self._found is None:
            self._found = self._walk()
        return job in self._found

    def _walk(self) -> set[str]:
        drafts = self._drafts
        seen: set[str] = set()
        todo = list(drafts[self._name].needs)
        while todo:
            parent = todo.pop()
            if parent not in seen and parent in drafts:
                seen.add(parent)
                todo.extend(drafts[parent].needs)
        return seen
