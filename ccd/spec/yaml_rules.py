"""The YAML rules both composers apply, so that they build the same data.

The quick composer (`ccd.spec.quick`) and the full one (`ccd.spec.composer`)
must agree on every value: a file the quick one loaded gets its positions from
the full one later, by path. So what a scalar means, which tags a workflow file
may use and how deep it may nest is decided here, once, for both.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

#: deepest nesting of mappings/sequences accepted
MAX_DEPTH: Final = 100
#: distinct plain words whose meaning is remembered while composing one file
PLAIN_CACHE: Final = 4096

TAG: Final = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _MERGE, _VALUE = (
    TAG + "str",
    TAG + "int",
    TAG + "float",
    TAG + "merge",
    TAG + "value",
)
MAP_TAGS: Final = frozenset({None, "!", TAG + "map"})
SEQ_TAGS: Final = frozenset({None, "!", TAG + "seq"})
# Scalar tags a workflow file may use; omap/set/pairs/python tags are refused.
_SCALAR_TAGS: Final = frozenset(
    TAG + name for name in ("null", "bool", "int", "float", "binary", "timestamp", "str")
)
#: libyaml's C parser when available: parsing is most of a large file's load time
Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: first characters of plain scalars that may be something other than text
RESOLVED_FIRST: Final = frozenset(
    first for first in yaml.SafeLoader.yaml_implicit_resolvers if first
)


class BadScalar(Exception):
    """A scalar that cannot be read; the composer adds where it was."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Merge:
    """The ``<<`` merge key (a sentinel; it becomes "<<" anywhere but a key)."""


MERGE_KEY: Final = Merge()


def scalar_value(event: Any, tag: str | None) -> object:
    """The value of a scalar event; `tag` is None only for quoted and block text,
    resolved for plain scalars, else as written. ``<<`` gives `MERGE_KEY`."""
    value: str = event.value
    if tag is None or tag == "!":  # quoted or block text; the non-specific tag means text
        return checked_str(value)
    if tag in (_STR, _VALUE):
        return checked_str(value)
    if tag == _MERGE:
        return MERGE_KEY
    if tag not in _SCALAR_TAGS:
        raise BadScalar("yaml-tag", unsupported_tag(tag))
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
        name = tag.removeprefix(TAG)
        raise BadScalar(
            "bad-scalar",
            f"cannot read {_clip(value)!r} as {name} ({detail}); quote it if it is meant as text",
        ) from None


def checked_str(value: str) -> str:
    # Only double-quoted escapes can produce these; both would break later:
    # NUL cannot go into a command line or path, surrogates not into UTF-8.
    if "\x00" in value:
        raise BadScalar("bad-string", "text cannot contain NUL (\\0)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadScalar("bad-string", "text contains an invalid \\u escape") from None
    return value


def unsupported_tag(tag: str) -> str:
    return f"unsupported YAML tag {tag!r}; workflow files use plain values, lists and mappings"


_CONSTRUCTOR = yaml.SafeLoader("")  # only its scalar constructors are used


def resolve(event: Any) -> str:
    """The tag YAML gives the plain scalar of `event` (int, bool, null, ... or str)."""
    resolver: Any = _CONSTRUCTOR
    tag: str = resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
    return tag


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
