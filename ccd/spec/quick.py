"""The quick composer: data of a plain YAML document, without positions.

Most workflow files are plain mappings, lists and scalars without a single
problem, and recording a position for every key and value costs as much as
building the data. So a file is first composed here by a lean loop that records
nothing; it gives up (`GiveUp`) on anything out of the ordinary -- anchors,
aliases, merges, duplicate keys, tags or depths the rules refuse, anything that
is a problem -- and the full composer (`ccd.spec.composer`) takes over from the
start. Positions are found the first time somebody asks for one
(`LazyPositions`: a second, full parse of the same text), which for a valid
file is never.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import yaml

from ccd.spec.composer import compose
from ccd.spec.positions import PathKey, Pos, PositionLookup
from ccd.spec.yaml_rules import (
    MAP_TAGS,
    MAX_DEPTH,
    MERGE_KEY,
    PLAIN_CACHE,
    RESOLVED_FIRST,
    SEQ_TAGS,
    BadScalar,
    Parser,
    checked_str,
    resolve,
    scalar_value,
)

_MISSING: Final = object()
_NO_KEY: Final = object()  # a mapping that is waiting for a key
_NOT_IN_MAP: Final = object()  # the parent is a list, or this is the root


class GiveUp(Exception):
    """The quick composer met something only the full composer handles."""


class LazyPositions:
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
            self._positions = compose(self._text, self._source).positions
            self._text = ""
        return self._positions


def quick_compose(text: str) -> object:
    """The data of a plain document (mappings, lists and scalars; no anchors,
    aliases, merges or problems), or `GiveUp`."""
    parser = Parser(text)
    try:
        return _document(parser.get_event)
    except (BadScalar, TypeError, yaml.YAMLError):
        # a bad scalar, an unhashable key, or a parser error: the full composer says
        # which, where
        raise GiveUp from None
    finally:
        parser.dispose()


def _document(get_event: Callable[[], Any]) -> object:
    # The stream is: stream start, document start, the root's events, document
    # end, stream end. Anything else (no document, a second one) is not plain.
    get_event()  # the stream start
    if type(get_event()) is not yaml.DocumentStartEvent:
        raise GiveUp  # an empty file: the full composer explains
    root = _nodes(get_event)
    get_event()  # the document end
    if type(get_event()) is not yaml.StreamEndEvent:
        raise GiveUp  # a second document
    if root is None:
        raise GiveUp  # nothing but null: the full composer explains
    return root


def _nodes(get_event: Callable[[], Any]) -> object:
    """The root node, from the events up to and including its own end."""
    # One loop with local variables: this runs for every key and value of
    # 100,000-job workflows, where each call would be felt. A scalar calls out
    # only when its value must be worked out (a plain word not in the cache;
    # quoted, tagged or anchored text), which costs a call in any case.
    scalar_event = yaml.ScalarEvent
    map_start, seq_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
    map_end, seq_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
    plain_cache: dict[str, object] = {}
    stack: list[tuple[Any, object]] = []
    # the open collection, and for a mapping its key waiting for a value
    # (_NO_KEY while the next scalar is a key); `key` is _NOT_IN_MAP for a list
    collection: Any = None
    key: object = _NOT_IN_MAP
    while True:
        event = get_event()
        kind = type(event)
        if kind is scalar_event:
            if event.tag is None and not event.style and event.anchor is None:
                value = plain_cache.get(event.value, _MISSING)
                if value is _MISSING:
                    value = _new_plain(event, plain_cache)
            else:
                value = _written(event)
        elif kind is map_start or kind is seq_start:
            is_map = kind is map_start
            if (
                event.anchor is not None
                or event.tag not in (MAP_TAGS if is_map else SEQ_TAGS)
                or len(stack) >= MAX_DEPTH
                or key is _NO_KEY  # a list or mapping as a key
            ):
                raise GiveUp
            stack.append((collection, key))
            collection, key = ({}, _NO_KEY) if is_map else ([], _NOT_IN_MAP)
            continue
        elif kind is map_end or kind is seq_end:
            value = collection
            collection, key = stack.pop()
        else:  # an alias: the only other event inside a document
            raise GiveUp
        # hand the finished value to its parent
        if key is _NOT_IN_MAP:
            if collection is None:
                return value
            collection.append(value)
        elif key is _NO_KEY:
            if value in collection:  # a duplicate key; TypeError for an unhashable one
                raise GiveUp
            key = value
        else:
            collection[key] = value
            key = _NO_KEY


def _new_plain(event: Any, plain_cache: dict[str, object]) -> object:
    """A plain scalar not in `plain_cache` yet; remembered while there is room."""
    string: str = event.value
    if string and string[0] not in RESOLVED_FIRST:
        value: object = checked_str(string)
    else:
        value = scalar_value(event, resolve(event))
        if value is MERGE_KEY:
            raise GiveUp
    if len(plain_cache) < PLAIN_CACHE:
        plain_cache[string] = value
    return value


def _written(event: Any) -> object:
    """A quoted, tagged or anchored scalar."""
    if event.anchor is not None:
        raise GiveUp
    value = scalar_value(event, event.tag)
    if value is MERGE_KEY:
        raise GiveUp
    return value
