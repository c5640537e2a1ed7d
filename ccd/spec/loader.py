"""YAML loading that remembers where everything was written.

`load_yaml` turns workflow text into plain Python data (dict, list, str, int,
float, bool, None, and the odd date or bytes) plus a `Positions` map from key
paths to 1-based (line, column), so that validation can point at the exact
spot of every problem.

It is built on the YAML *event* stream (libyaml's C parser when available) with
our own small, iterative composer instead of ``yaml.safe_load``, because we
need things safe_load does not do:

* duplicate keys are reported (every one, with both positions) instead of the
  last one silently winning;
* aliases are not copied: an aliased value is shared and only its size is
  counted, so an alias bomb ("billion laughs") is refused after reading its few
  hundred bytes, without building anything large (``<<`` merges do copy keys,
  and are bounded by `MAX_MERGED_KEYS`);
* nesting depth is bounded, so neither this code nor anything that later walks
  the data can run out of stack (libyaml's own composer segfaults on deeply
  nested input; Python's raises RecursionError);
* plain ``1:30`` stays the string "1:30" instead of YAML 1.1's base-60 number 90
  (YAML 1.2 dropped base 60; in a duration or a Slurm time it is a trap).

Data that came through an alias is shared between the places that use it, so
consumers must treat the result as read-only.

Most files are plain mappings, lists and scalars without a single problem, and
recording a position for every key and value costs as much as building the
data. So a file is first composed by a lean loop that records nothing
(`_quick_compose`); it gives up on anything out of the ordinary (anchors,
aliases, merges, duplicate keys, anything that is a problem) and the full
composer takes over, from the start. Positions are found the first time somebody asks for one
(`_LazyPositions`: a second, full parse of the same text), which for a valid
file is never.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import yaml

from ccd.errors import Problem, SpecError

#: files larger than this are refused before parsing
MAX_BYTES: Final = 32 * 1024 * 1024
#: deepest nesting of mappings/sequences accepted
MAX_DEPTH: Final = 100
#: aliases may expand the document to max(MIN_EXPANSION, EXPANSION_FACTOR * composed nodes)
MIN_EXPANSION: Final = 100_000
EXPANSION_FACTOR: Final = 50
#: ``<<`` merges copy keys; more copies than this are refused before the end
MAX_MERGED_KEYS: Final = 1_000_000

PathKey = tuple[str | int, ...]
Pos = tuple[int, int]

_NO_POS: Final[Pos] = (0, 0)
_PLAIN_CACHE: Final = 4096
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _MERGE, _VALUE = (
    _TAG + "str",
    _TAG + "int",
    _TAG + "float",
    _TAG + "merge",
    _TAG + "value",
)
_MAP_TAGS = frozenset({None, "!", _TAG + "map"})
_SEQ_TAGS = frozenset({None, "!", _TAG + "seq"})
# Scalar tags a workflow file may use; omap/set/pairs/python tags are refused.
_SCALAR_TAGS = frozenset(
    _TAG + name for name in ("null", "bool", "int", "float", "binary", "timestamp", "str")
)
_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PositionLookup(Protocol):
    """Anything that answers where a path was written (see `Positions`)."""

    def key(self, path: PathKey) -> Pos: ...

    def value(self, path: PathKey) -> Pos: ...


class Positions:
    """Where keys and values of a loaded document were written (1-based line, column).

    A path is the sequence of mapping keys and list indexes from the root, e.g.
    ``("jobs", "train", "needs", 0)``. Lookups of paths that were not recorded
    (values that came in through an alias or merge) fall back to the nearest
    recorded ancestor, which is where that value was brought in.
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
        return _NO_POS


@dataclass(slots=True)
class Document:
    """A loaded YAML document: its data, positions, and non-fatal problems."""

    data: object
    positions: PositionLookup
    #: problems that did not stop loading (duplicate keys, bad keys, bad merges)
    problems: list[Problem] = field(default_factory=list)


def load_yaml(text: str | bytes, source: str = "<string>") -> Document:
    """Load one YAML document; raise SpecError when it cannot be read at all."""
    decoded = _decode(text, source)
    try:
        data = _quick_compose(decoded)
    except _GiveUp:
        return _compose(decoded, source)
    return Document(data, _LazyPositions(decoded, source))


def _compose(text: str, source: str) -> Document:
    """The full composer: positions, every problem, aliases, merges and tags."""
    composer = _Composer(text, source)
    try:
        return composer.run()
    except _Fatal as fatal:
        raise SpecError([*composer.problems, fatal.problem]) from None


def line_col(text: str, index: int) -> Pos:
    """1-based line and column of character `index` in `text`."""
    index = max(0, min(index, len(text)))
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def too_large(source: str, size: int) -> SpecError:
    """The error for a workflow of `size` bytes over `MAX_BYTES`."""
    return SpecError(
        [
            Problem(
                source,
                0,
                0,
                "file-too-large",
                f"workflow file is {size / 2**20:.1f} MiB; the limit is "
                f"{MAX_BYTES // 2**20} MiB. Keep data in separate files and "
                "pass their paths to the jobs",
            )
        ]
    )


# --- decoding -----------------------------------------------------------------


def _decode(text: str | bytes, source: str) -> str:
    if len(text) > MAX_BYTES:
        raise too_large(source, len(text))
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            prefix = text[: exc.start].decode("utf-8", "replace")
            line, column = line_col(prefix, len(prefix))
            raise _single(
                source,
                line,
                column,
                "not-utf8",
                f"invalid UTF-8 (byte 0x{text[exc.start]:02x}); save the workflow file as UTF-8",
            ) from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line, column = line_col(text, exc.start)
        raise _single(
            source,
            line,
            column,
            "not-utf8",
            "text contains a lone surrogate character, which is not valid Unicode",
        ) from None
    return text.removeprefix("\ufeff")


def _single(source: str, line: int, column: int, code: str, message: str) -> SpecError:
    return SpecError([Problem(source, line, column, code, message)])


# --- the quick path ---------------------------------------------------------------


class _GiveUp(Exception):
    """The quick composer met something only the full composer handles."""


class _LazyPositions:
    """Positions of a document the quick composer loaded, found when first asked.

    The full composer parses the same text again: same events, so the same
    data and paths, now with every position recorded."""

    __slots__ = ("_positions", "_source", "_text")

    def __init__(self, text: str, source: str) -> None:
        self._text = text
        self._source = source
        self._positions: PositionLookup | None = None

    def key(self, path: PathKey) -> Pos:
        return self._found().key(path)

    def value(self, path: PathKey) -> Pos:
        return self._found().value(path)

    def _found(self) -> PositionLookup:
        if self._positions is None:
            self._positions = _compose(self._text, self._source).positions
            self._text = ""
        return self._positions


#: first characters of plain scalars that may be something other than text
_RESOLVED_FIRST: Final = frozenset(
    first for first in yaml.SafeLoader.yaml_implicit_resolvers if first
)
_MISSING: Final = object()
_NOT_IN_MAP: Final = object()  # the parent is a list, or this is the root


def _quick_compose(text: str) -> object:
    """The data of a plain document (mappings, lists and scalars; no anchors,
    aliases, merges or problems), or `_GiveUp`."""
    parser = _Parser(text)
    try:
        return _quick_events(parser)
    except (_BadScalar, TypeError, yaml.YAMLError):
        # a bad scalar, an unhashable key, or a parser error: the full composer says
        # which, where
        raise _GiveUp from None
    finally:
        parser.dispose()


def _quick_events(parser: Any) -> object:
    # One loop with local variables: this runs for every key and value of
    # 100,000-job workflows, where each method call would be felt.
    get_event = parser.get_event
    scalar_event, alias_event = yaml.ScalarEvent, yaml.AliasEvent
    map_start, seq_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
    map_end, seq_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
    document_start, stream_end = yaml.DocumentStartEvent, yaml.StreamEndEvent
    plain_cache: dict[str, object] = {}
    stack: list[tuple[Any, object]] = []
    # the open collection, and for a mapping its key waiting for a value
    # (_NO_KEY while the next scalar is a key); `key` is _NOT_IN_MAP for a list
    collection: Any = None
    key: object = _NOT_IN_MAP
    root: object = None
    documents = 0
    while True:
        event = get_event()
        kind = type(event)
        if kind is scalar_event:
            tag, string = event.tag, event.value
            if tag is None and not event.style:
                value = plain_cache.get(string, _MISSING)
                if value is _MISSING:
                    if string and string[0] not in _RESOLVED_FIRST:
                        value = _checked_str(string)
                    else:
                        value = _scalar_value(event, _resolve(event))
                        if value is _MERGE_KEY:
                            raise _GiveUp
                    if len(plain_cache) < _PLAIN_CACHE:
                        plain_cache[string] = value
            else:
                value = _scalar_value(event, tag)
                if value is _MERGE_KEY:
                    raise _GiveUp
            if event.anchor is not None:
                raise _GiveUp
        elif kind is map_start or kind is seq_start:
            is_map = kind is map_start
            if (
                event.anchor is not None
                or event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS)
                or len(stack) >= MAX_DEPTH
                or key is _NO_KEY  # a list or mapping as a key
            ):
                raise _GiveUp
            stack.append((collection, key))
            collection, key = ({}, _NO_KEY) if is_map else ([], _NOT_IN_MAP)
            continue
        elif kind is map_end or kind is seq_end:
            value = collection
            collection, key = stack.pop()
        elif kind is document_start:
            documents += 1
            if documents > 1:
                raise _GiveUp
            continue
        elif kind is stream_end:
            break
        elif kind is alias_event:
            raise _GiveUp
        else:  # stream start, document end
            continue
        # hand the finished value to its parent
        if key is _NOT_IN_MAP:
            if collection is None:
                root = value
            else:
                collection.append(value)
        elif key is _NO_KEY:
            if value in collection:  # a duplicate key; TypeError for an unhashable one
                raise _GiveUp
            key = value
        else:
            collection[key] = value
            key = _NO_KEY
    if root is None:
        raise _GiveUp  # an empty file: the full composer explains
    return root


# --- composing ------------------------------------------------------------------


class _Fatal(Exception):
    """Loading cannot go on; carries the problem that says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Merge:
    """The ``<<`` merge key (a sentinel; it becomes "<<" anywhere but a key)."""


_MERGE_KEY: Final = _Merge()
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
    key_pos: Pos = _NO_POS
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
        parser = _Parser(self.text)
        try:
            self._consume(parser)
        except yaml.MarkedYAMLError as exc:
            raise _Fatal(self._syntax_problem(exc)) from None
        except yaml.reader.ReaderError as exc:
            raise _Fatal(self._reader_problem(exc)) from None
        except yaml.YAMLError as exc:  # any other parser complaint, without a position
            raise _Fatal(self._problem(_NO_POS, "yaml-syntax", f"YAML error: {exc}")) from None
        finally:
            parser.dispose()
        if self.root is None:
            raise _Fatal(
                self._problem(
                    _NO_POS, "empty-file", "empty workflow file: it needs at least a jobs: mapping"
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
        allowed = _MAP_TAGS if is_map else _SEQ_TAGS
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
            elif parent.key is _DISCARD or parent.key is _MERGE_KEY:
                return (*parent.path, "<discarded>")
            else:
                path = (*parent.path, _path_part(parent.key))
        self.positions.set_value(path, pos)
        return path

    def _emit(self, value: object, pos: Pos, *, size: int, depth: int) -> None:
        """Hand a finished node, which starts at `pos`, to its parent (or make it the root)."""
        if not self.stack:
            self.root = "<<" if isinstance(value, _Merge) else value
            self.root_size = size
            return
        parent = self.stack[-1]
        parent.depth = max(parent.depth, depth)
        if not parent.is_map:
            parent.items.append("<<" if isinstance(value, _Merge) else value)
            parent.size += size
            return
        if parent.key is _NO_KEY:
            self._take_key(parent, value, pos)
            return
        key, parent.key = parent.key, _NO_KEY
        if key is _MERGE_KEY:
            parent.merges.append((value, pos, size))
            parent.size += size
        elif key is not _DISCARD:
            parent.mapping[key] = "<<" if isinstance(value, _Merge) else value
            parent.size += size

    def _take_key(self, parent: _Frame, key: object, key_pos: Pos) -> None:
        parent.key_pos = key_pos
        if isinstance(key, dict | list):
            self._report(
                key_pos, "bad-key", "a mapping key must be a plain value, not a list or mapping"
            )
            parent.key = _DISCARD
            return
        if isinstance(key, _Merge):
            parent.key = _MERGE_KEY
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
                f"duplicate key {_show(key)} (first at line {first[0]}, column {first[1]}); "
                "YAML would silently keep only the last one. Remove or rename one of them",
            )
            parent.key = _DISCARD
            return
        parent.key_positions[key] = key_pos
        parent.key = key
        self.positions.set_key((*parent.path, _path_part(key)), key_pos)

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
            return _scalar_value(event, tag)
        except _BadScalar as bad:
            raise _Fatal(self._problem(pos, bad.code, bad.message)) from None

    def _resolve_plain(self, event: Any) -> str:
        # Workflows repeat the same plain words (hosts, counts, true) a lot.
        tag = self.plain_tags.get(event.value)
        if tag is None:
            tag = _resolve(event)
            if len(self.plain_tags) < _PLAIN_CACHE:
                self.plain_tags[event.value] = tag
        return tag

    # Problems -----------------------------------------------------------------

    def _problem(self, pos: Pos, code: str, message: str) -> Problem:
        return Problem(self.source, pos[0], pos[1], code, message)

    def _report(self, pos: Pos, code: str, message: str) -> None:
        self.problems.append(self._problem(pos, code, message))

    def _unsupported_tag(self, tag: str, pos: Pos) -> Problem:
        return self._problem(pos, "yaml-tag", _unsupported_tag(tag))

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

    def _syntax_problem(self, exc: yaml.MarkedYAMLError) -> Problem:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        column = mark.column + 1 if mark is not None else 0
        what = exc.problem or exc.context or "invalid YAML"
        text_line = _line_text(self.text, line)
        indent = text_line[: len(text_line) - len(text_line.lstrip(" \t"))]
        if "\t" in indent or "tab" in what:
            tab_column = indent.index("\t") + 1 if "\t" in indent else column
            return self._problem(
                (line, tab_column),
                "yaml-tab",
                "tab character in indentation: YAML indents with spaces only; "
                "replace the tab with spaces",
            )
        context = f" {exc.context}" if exc.context and exc.problem else ""
        return self._problem(
            (line, column),
            "yaml-syntax",
            f"YAML syntax error: {what}{context}. {_syntax_hint(what)}",
        )

    def _reader_problem(self, exc: yaml.reader.ReaderError) -> Problem:
        line, column = line_col(self.text, int(exc.position))
        character = exc.character  # a str from the Python reader, an int from libyaml's
        code = ord(character[:1] or "?") if isinstance(character, str) else int(character)
        shown = f"#x{code:04x}"
        return self._problem(
            (line, column),
            "yaml-bad-char",
            f"character {shown} is not allowed in YAML; remove it "
            "(escape it in a double-quoted string if it is really wanted)",
        )


# --- scalars (shared by both composers) -----------------------------------------------


class _BadScalar(Exception):
    """A scalar that cannot be read; the composer adds where it was."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _scalar_value(event: Any, tag: str | None) -> object:
    """The value of a scalar event; `tag` is None only for quoted and block text,
    resolved for plain scalars, else as written. ``<<`` gives `_MERGE_KEY`."""
    value: str = event.value
    if tag is None or tag == "!":  # quoted or block text; the non-specific tag means text
        return _checked_str(value)
    if tag in (_STR, _VALUE):
        return _checked_str(value)
    if tag == _MERGE:
        return _MERGE_KEY
    if tag not in _SCALAR_TAGS:
        raise _BadScalar("yaml-tag", _unsupported_tag(tag))
    if tag in (_INT, _FLOAT) and ":" in value and not event.style:
        return value  # YAML 1.1 base 60: keep "1:30" as written
    constructor = yaml.SafeLoader.yaml_constructors[tag]
    node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, event.style)
    try:
        return constructor(_CONSTRUCTOR, node)
    except Exception as exc:
        # PyYAML's constructors trust the resolver's regexes; text tagged by hand
        # fails them in any way: `!!int ''` (IndexError), `!!bool maybe` (KeyError),
        # `!!timestamp x` (AttributeError)
        readable = isinstance(exc, yaml.YAMLError | ValueError | OverflowError)
        detail = _first_line(exc) if readable else "not a valid value"
        name = tag.removeprefix(_TAG)
        raise _BadScalar(
            "bad-scalar",
            f"cannot read {_clip(value)!r} as {name} ({detail}); quote it if it is meant as text",
        ) from None


def _checked_str(value: str) -> str:
    # Only double-quoted escapes can produce these; both would break later:
    # NUL cannot go into a command line or path, surrogates not into UTF-8.
    if "\x00" in value:
        raise _BadScalar("bad-string", "text cannot contain NUL (\\0)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _BadScalar("bad-string", "text contains an invalid \\u escape") from None
    return value


def _unsupported_tag(tag: str) -> str:
    return f"unsupported YAML tag {tag!r}; workflow files use plain values, lists and mappings"


_CONSTRUCTOR = yaml.SafeLoader("")  # only its scalar constructors are used


def _resolve(event: Any) -> str:
    resolver: Any = _CONSTRUCTOR
    tag: str = resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
    return tag


def _pos(event: Any) -> Pos:
    mark = event.start_mark
    return mark.line + 1, mark.column + 1


def _path_part(key: object) -> str | int:
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    return str(key)


def _show(key: object) -> str:
    return repr(key) if isinstance(key, str) else str(key)


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _line_text(text: str, line: int) -> str:
    """The 1-based `line` of `text` (empty when out of range)."""
    if line < 1:
        return ""
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return ""
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def _syntax_hint(problem: str) -> str:
    if "mapping values are not allowed" in problem:
        return "Hint: quote values that contain ': ', e.g. run: \"echo a: b\""
    if "could not find expected ':'" in problem or "expected <block end>" in problem:
        return "Hint: check the indentation of this line and the one before"
    if "cannot start any token" in problem:
        return "Hint: quote values that start with a special character such as @, ` or %"
    if "found unexpected end of stream" in problem or "did not find expected" in problem:
        return "Hint: check for an unclosed quote, bracket or brace"
    return "Hint: check the indentation and quote values with special characters"
