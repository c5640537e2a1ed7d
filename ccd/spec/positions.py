"""Where things were written in a workflow file, and the loaded document itself.

A path is the sequence of mapping keys and list indexes from the root, e.g.
``("jobs", "train", "needs", 0)``; a position is a 1-based (line, column).
Both composers, the cloudmesh conversion and the checks speak in these terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

from ccd.errors import Problem

PathKey = tuple[str | int, ...]
Pos = tuple[int, int]

NO_POS: Final[Pos] = (0, 0)

#: a problem found before positions are looked up: path, code, message, and
#: whether it is reported at the key (else at the value)
Report = tuple[PathKey, str, str, bool]


class PositionLookup(Protocol):
    """Anything that answers where a path was written (see `Positions`)."""

    def key(self, path: PathKey) -> Pos: ...

    def value(self, path: PathKey) -> Pos: ...


class Positions:
    """Where keys and values of a loaded document were written (1-based line, column).

    Lookups of paths that were not recorded (values that came in through an alias
    or merge) fall back to the nearest recorded ancestor, which is where that
    value was brought in.
    """

    __slots__ = ("_keys", "_merged", "_values")

    def __init__(self) -> None:
        self._keys: dict[PathKey, Pos] = {}
        self._values: dict[PathKey, Pos] = {}
        self._merged: dict[PathKey, Pos] = {}

    def set_key(self, path: PathKey, pos: Pos) -> None:
        self._keys[path] = pos

    def set_value(self, path: PathKey, pos: Pos) -> None:
        self._values[path] = pos

    def set_merged(self, path: PathKey, pos: Pos) -> None:
        """Keys of the mapping at `path` that no position was recorded for came from `pos`."""
        self._merged.setdefault(path, pos)

    def key(self, path: PathKey) -> Pos:
        """Position of the mapping key at the end of `path` (else of its value)."""
        found = self._keys.get(path)
        return found if found is not None else self.value(path)

    def value(self, path: PathKey) -> Pos:
        """Position of the value at `path`, or where it was brought in from."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            found = self._values.get(prefix) or self._keys.get(prefix)
            if found is None and end > 0:
                found = self._merged.get(prefix[:-1])
            if found is not None:
                return found
        return NO_POS


@dataclass(slots=True)
class Document:
    """A loaded YAML document: its data, positions, and non-fatal problems."""

    data: object
    positions: PositionLookup
    #: problems that did not stop loading (duplicate keys, bad keys, bad merges)
    problems: list[Problem] = field(default_factory=list)


def line_col(text: str, index: int) -> Pos:
    """1-based line and column of character `index` in `text`."""
    index = max(0, min(index, len(text)))
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def path_part(key: object) -> str | int:
    """A mapping key as a path component (keys that are neither text nor int become text)."""
    if isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool)):
        return key
    return str(key)
