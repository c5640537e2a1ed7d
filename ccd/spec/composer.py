"""The full YAML composer: data with every position, every problem, aliases and merges.

It builds the same data as the quick composer (`ccd.spec.quick`; both read
scalars by `ccd.spec.yaml_rules`) and also records where each key and value was
written, reports every duplicate or unusable key instead of stopping at the
first, and keeps aliases safe: an aliased value is shared, not copied, and only
its size is counted, so an alias bomb is refused after a few hundred bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from ccd.errors import Problem, SpecError
from ccd.spec.hints import show
from ccd.spec.positions import NO_POS, Document, PathKey, Pos, Positions, path_part
from ccd.spec.yaml_problems import reader_problem, syntax_problem
from ccd.spec.yaml_rules import (
    MAP_TAGS,
    MAX_DEPTH,
    MERGE_KEY,
    PLAIN_CACHE,
    SEQ_TAGS,
    BadScalar,
    Merge,
    Parser,
    resolve,
    scalar_value,
    unsupported_tag,
)

#: aliases may expand the document to max(MIN_EXPANSION, EXPANSION_FACTOR * composed nodes)
MIN_EXPANSION: Final = 100_000
EXPANSION_FACTOR: Final = 50
#: ``<<`` merges copy keys; more copies than this are refused before the end
MAX_MERGED_KEYS: Final = 1_000_000


def compose(text: str, source: str) -> Document:
    """Compose `text` with positions and problems; raise SpecError when it cannot be read."""
    composer = _Composer(text, source)
    try:
        return composer.run()
    except _Fatal as fatal:
        raise SpecError([*composer.problems, fatal.problem]) from None


class _Fatal(Exception):
    """Loading cannot go on; carries the problem that says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


_DISCARD: Final = object()  # a key that could not be used; its value is dropped
_NO_KEY: Final = object()  # a mapping frame that is waiting for a key


@dataclass(slots=True)
class _Anchor:
    value: object
    size: int
    depth: int


@dataclass(slots=True)
class _Frame:
    """A mapping or sequence whose end event has not arrived yet."""

    path: PathKey
    is_map: bool
    pos: Pos
    anchor: str | None
    items: list[object] = field(default_factory=list)
    mapping: dict[object, object] = field(default_factory=dict)
    size: int = 1
    depth: int = 0
    key: object = _NO_KEY
    key_pos: Pos = NO_POS
    #: where each key of this mapping was first written, for duplicate reports
    key_positions: dict[object, Pos] = field(default_factory=dict)
    merges: list[tuple[object, Pos, int]] = field(default_factory=list)


class _Composer:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.positions = Positions()
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, _Anchor | _Frame] = {}
        self.composed = 0
        self.root: object = None
        self.root_size = 0
        self.documents = 0
        self.plain_tags: dict[str, str] = {}
        #: keys copied by ``<<`` merges so far (the only copying aliases cause)
        self.merged_keys = 0
        #: values brought in by aliases so far, and the most the file could allow
        self.aliased = 0
        self.early_limit = max(MIN_EXPANSION, EXPANSION_FACTOR * (len(text) + 1))

    # The event loop -----------------------------------------------------------

    def run(self) -> Document:
        parser = Parser(self.text)
        try:
            self._consume(parser)
        except yaml.MarkedYAMLError as exc:
            raise _Fatal(syntax_problem(self.text, self.source, exc)) from None
        except yaml.reader.ReaderError as exc:
            raise _Fatal(reader_problem(self.text, self.source, exc)) from None
        except yaml.YAMLError as exc:  # any other parser complaint, without a position
            raise _Fatal(self._problem(NO_POS, "yaml-syntax", f"YAML error: {exc}")) from None
        finally:
            parser.dispose()
        if self.root is None:
            raise _Fatal(
                self._problem(
                    NO_POS, "empty-file", "empty workflow file: it needs at least a jobs: mapping"
                )
            )
        limit = max(MIN_EXPANSION, EXPANSION_FACTOR * self.composed)
        if self.root_size > limit:
            raise _Fatal(self._bomb(limit))
        return Document(self.root, self.positions, self.problems)

    def _consume(self, parser: Any) -> None:
        while True:
            event = parser.get_event()
            kind = type(event)
            if kind is yaml.ScalarEvent:
                self.composed += 1
                self._scalar(event)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                self.composed += 1
                self._start(event, is_map=kind is yaml.MappingStartEvent)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                self._end()
            elif kind is yaml.AliasEvent:
                self._alias(event)
            elif kind is yaml.DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    raise _Fatal(
                        self._problem(
                            _pos(event),
                            "multiple-documents",
                            "a workflow file holds one YAML document; remove the second '---' "
                            "and what follows, or put it in its own file",
                        )
                    )
            elif kind is yaml.StreamEndEvent:
                return

    # Nodes --------------------------------------------------------------------

    def _scalar(self, event: Any) -> None:
        pos = _pos(event)
        value = self._construct(event, pos)
        self._child_path(pos)
        self._emit(value, pos, size=1, depth=0)
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchor(value, 1, 0)

    def _start(self, event: Any, *, is_map: bool) -> None:
        pos = _pos(event)
        allowed = MAP_TAGS if is_map else SEQ_TAGS
        if event.tag not in allowed:
            raise _Fatal(self._unsupported_tag(event.tag, pos))
        if len(self.stack) >= MAX_DEPTH:
            raise _Fatal(self._too_deep(pos))
        path = self._child_path(pos)
        frame = _Frame(path, is_map, pos, event.anchor)
        self.stack.append(frame)
        if event.anchor is not None:
            self.anchors[event.anchor] = frame

    def _end(self) -> None:
        frame = self.stack.pop()
        if frame.is_map:
            value: object = self._merged(frame) if frame.merges else frame.mapping
        else:
            value = frame.items
        depth = frame.depth + 1
        if frame.anchor is not None and self.anchors.get(frame.anchor) is frame:
            self.anchors[frame.anchor] = _Anchor(value, frame.size, depth)
        self._emit(value, frame.pos, size=frame.size, depth=depth)

    def _alias(self, event: Any) -> None:
        pos = _pos(event)
        anchor = self.anchors.get(event.anchor)
        if anchor is None:
            raise _Fatal(
                self._problem(
                    pos,
                    "undefined-alias",
                    f"alias *{event.anchor} has no anchor &{event.anchor} before it",
                )
            )
        if isinstance(anchor, _Frame):
            raise _Fatal(
                self._problem(
                    pos,
                    "recursive-alias",
                    f"alias *{event.anchor} is inside the value it refers to; "
                    "a workflow cannot contain itself",
                )
            )
        if len(self.stack) + anchor.depth > MAX_DEPTH:
            raise _Fatal(self._too_deep(pos))
        # The exact limit needs the final node count, but a document has no
        # more nodes than characters (give or take one): past this bound the
        # answer is already known, so a bomb early in a big file stops here.
        self.aliased += anchor.size
        if self.aliased > self.early_limit:
            raise _Fatal(self._bomb(self.early_limit))
        self._child_path(pos)
        self._emit(anchor.value, pos, size=anchor.size, depth=anchor.depth)

    def _child_path(self, pos: Pos) -> PathKey:
        """Path of the node that starts at `pos`; records its value position."""
        if not self.stack:
            path: PathKey = ()
        else:
            parent = self.stack[-1]
            if not parent.is_map:
                path = (*parent.path, len(parent.items))
            elif parent.key is _NO_KEY:
                return (*parent.path, "<key>")  # a key; keys are recorded in _emit
            elif parent.key is _DISCARD or parent.key is MERGE_KEY:
                return (*parent.path, "<discarded>")
            else:
                path = (*parent.path, path_part(parent.key))
        self.positions.set_value(path, pos)
        return path

    def _emit(self, value: object, pos: Pos, *, size: int, depth: int) -> None:
        """Hand a finished node, which starts at `pos`, to its parent (or make it the root)."""
        if not self.stack:
            self.root = "<<" if isinstance(value, Merge) else value
            self.root_size = size
            return
        parent = self.stack[-1]
        parent.depth = max(parent.depth, depth)
        if not parent.is_map:
            parent.items.append("<<" if isinstance(value, Merge) else value)
            parent.size += size
            return
        if parent.key is _NO_KEY:
            self._take_key(parent, value, pos)
            return
        key, parent.key = parent.key, _NO_KEY
        if key is MERGE_KEY:
            parent.merges.append((value, pos, size))
            parent.size += size
        elif key is not _DISCARD:
            parent.mapping[key] = "<<" if isinstance(value, Merge) else value
            parent.size += size

    def _take_key(self, parent: _Frame, key: object, key_pos: Pos) -> None:
        parent.key_pos = key_pos
        if isinstance(key, dict | list):
            self._report(
                key_pos, "bad-key", "a mapping key must be a plain value, not a list or mapping"
            )
            parent.key = _DISCARD
            return
        if isinstance(key, Merge):
            parent.key = MERGE_KEY
            return
        try:
            first = parent.key_positions.get(key)
        except TypeError:  # unhashable, e.g. a date inside something odd
            self._report(key_pos, "bad-key", f"cannot use {key!r} as a mapping key")
            parent.key = _DISCARD
            return
        if first is not None:
            self._report(
                key_pos,
                "duplicate-key",
                f"duplicate key {show(key)} (first at line {first[0]}, column {first[1]}); "
                "YAML would silently keep only the last one. Remove or rename one of them",
            )
            parent.key = _DISCARD
            return
        parent.key_positions[key] = key_pos
        parent.key = key
        self.positions.set_key((*parent.path, path_part(key)), key_pos)

    def _merged(self, frame: _Frame) -> dict[object, object]:
        """Apply ``<<`` merges: explicit keys win, then earlier merge sources."""
        result: dict[object, object] = {}
        for value, pos, _size in frame.merges:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(source, dict) for source in sources):
                self._report(
                    pos,
                    "bad-merge",
                    "'<<' merges a mapping or a list of mappings (usually aliases like *defaults)",
                )
                continue
            # One entry locates every merged key: a position per key would cost
            # as much as the merge itself.
            self.positions.set_merged(frame.path, pos)
            for source in sources:
                assert isinstance(source, dict)
                # Aliases are shared, not copied, so only merges can make this
                # loader build something big; stop that as it happens.
                self.merged_keys += len(source)
                if self.merged_keys > MAX_MERGED_KEYS:
                    raise _Fatal(self._bomb(MAX_MERGED_KEYS))
                for key, item in source.items():
                    result.setdefault(key, item)
        result.update(frame.mapping)
        return result

    # Scalars ------------------------------------------------------------------

    def _construct(self, event: Any, pos: Pos) -> object:
        tag = event.tag
        if tag is None and not event.style:
            tag = self._resolve_plain(event)
        try:
            return scalar_value(event, tag)
        except BadScalar as bad:
            raise _Fatal(self._problem(pos, bad.code, bad.message)) from None

    def _resolve_plain(self, event: Any) -> str:
        # Workflows repeat the same plain words (hosts, counts, true) a lot.
        tag = self.plain_tags.get(event.value)
        if tag is None:
            tag = resolve(event)
            if len(self.plain_tags) < PLAIN_CACHE:
                self.plain_tags[event.value] = tag
        return tag

    # Problems -----------------------------------------------------------------

    def _problem(self, pos: Pos, code: str, message: str) -> Problem:
        return Problem(self.source, pos[0], pos[1], code, message)

    def _report(self, pos: Pos, code: str, message: str) -> None:
        self.problems.append(self._problem(pos, code, message))

    def _unsupported_tag(self, tag: str, pos: Pos) -> Problem:
        return self._problem(pos, "yaml-tag", unsupported_tag(tag))

    def _bomb(self, limit: int) -> Problem:
        return self._problem(
            (1, 1),
            "alias-bomb",
            f"aliases (*name) and merges (<<) expand this document beyond {limit} values; "
            "refusing it. Write repeated parts out, or use defaults:",
        )

    def _too_deep(self, pos: Pos) -> Problem:
        return self._problem(
            pos, "too-deep", f"nested more than {MAX_DEPTH} levels deep; flatten the structure"
        )


def _pos(event: Any) -> Pos:
    mark = event.start_mark
    return mark.line + 1, mark.column + 1
