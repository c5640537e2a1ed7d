"""Progress markers and outputs in job logs (pure and fast).

Two forms are recognised, with optional leading whitespace:

* cloudmesh-cc's ``# cloudmesh status=running progress=50 pid=123`` (any other
  ``key=value`` pairs are allowed and ignored; at least one of status/progress);
* ccd's ``::ccd progress=42 msg="epoch 3/10"`` and ``::ccd output key=value``.

`parse_line` is called for log lines and almost none of them are markers, so it
looks at the first non-blank character before doing anything else. It never
raises: a malformed marker is returned as a `MarkerWarning` for the job's
event log.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

MAX_OUTPUT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Progress:
    #: percentage 0..100, or None when the marker only carries a message/status
    value: float | None
    message: str | None = None
    #: cloudmesh-cc's status word (ready, running, done, failed, ...) as written
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Output:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class MarkerWarning:
    message: str


Marker = Progress | Output | MarkerWarning

_CCD = "::ccd"
_CLOUDMESH = "# cloudmesh"
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# key=value where value is a double-quoted string (backslash escapes) or one word
_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|$)')
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_LIMIT_HINT = (
    f"outputs are limited to {MAX_OUTPUT_BYTES // 1024} KiB; "
    "write the data to a file and pass its path as the output"
)


def parse_line(line: str) -> Marker | None:
    """The marker on `line`, or None for an ordinary line."""
    text = line.lstrip(" \t")
    first = text[:1]
    # The cheap test that lets ordinary output through without any regex.
    if first != ":" and first != "#":
        return None
    text = text.rstrip("\r\n")
    if first == ":":
        if not _starts_word(text, _CCD):
            return None
        return _parse_ccd(text[len(_CCD) :].strip())
    if not _starts_word(text, _CLOUDMESH):
        return None
    return _parse_cloudmesh(text[len(_CLOUDMESH) :].strip())


def compile_progress_regex(pattern: str) -> Callable[[str], float | None]:
    """A function mapping a log line to the percentage `pattern` finds in it.

    The percentage is the named group ``progress``, else the first group; with
    named groups ``current`` and ``total`` it is ``100 * current / total`` (for
    lines like ``Epoch 3/10``). The function returns None when the line does not
    match or the group is not a number; a number outside 0..100 is returned as
    is so the caller can warn about it. Raises ValueError for a pattern that
    does not compile or has no group.
    """
    try:
        with warnings.catch_warnings():
            # e.g. "Possible nested set": the pattern still compiles and means what
            # Python says it means; a warning must not become a daemon error
            warnings.simplefilter("ignore")
            regex = re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise ValueError(f"progress_regex does not compile: {exc}") from None
    groups = regex.groupindex
    if "current" in groups and "total" in groups:
        return _ratio_finder(regex)
    if "progress" in groups:
        return _group_finder(regex, "progress")
    if regex.groups >= 1:
        return _group_finder(regex, 1)
    raise ValueError(
        "progress_regex needs a group that captures the percentage, "
        r"e.g. 'Epoch (?P<progress>\d+)' or '(?P<current>\d+)/(?P<total>\d+)'"
    )


def _starts_word(text: str, prefix: str) -> bool:
    """`text` starts with `prefix` followed by whitespace or the end."""
    return text.startswith(prefix) and (len(text) == len(prefix) or text[len(prefix)].isspace())


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _progress_value(text: str, line_kind: str) -> float | MarkerWarning:
    value = _number(text)
    if value is None:
        return MarkerWarning(f"{line_kind} marker: progress={_clip(text)!r} is not a number")
    if not 0 <= value <= 100:
        return MarkerWarning(f"{line_kind} marker: progress={_clip(text)} is not within 0..100")
    return value


def _unquote(raw: str) -> str:
    if raw.startswith('"'):
        return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), raw[1:-1])
    return raw


def _pairs(text: str) -> list[tuple[str, str]] | str:
    """Split ``k=v k2="v 2"`` into pairs, or return what could not be read."""
    pairs: list[tuple[str, str]] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return pairs
        match = _PAIR.match(text, position)
        if match is None:
            return text[position:]
        pairs.append((match.group(1), _unquote(match.group(2))))
        position = match.end()


def _parse_cloudmesh(rest: str) -> Marker | None:
    # cloudmesh-cc split these lines on spaces and looked for key=value words,
    # so other words are tolerated; a line without any key=value is a comment.
    found = dict(word.split("=", 1) for word in rest.split() if "=" in word)
    if not found:
        return None
    if "status" not in found and "progress" not in found:
        return MarkerWarning("cloudmesh marker has neither status= nor progress=")
    value: float | None = None
    if "progress" in found:
        checked = _progress_value(found["progress"], "cloudmesh")
        if isinstance(checked, MarkerWarning):
            return checked
        value = checked
    return Progress(value=value, status=found.get("status") or None)


def _parse_ccd(rest: str) -> Marker:
    if not rest:
        return MarkerWarning("empty ::ccd marker; expected progress=N, msg=... or output KEY=VALUE")
    if _starts_word(rest, "output"):
        return _parse_output(rest[len("output") :].lstrip())
    pairs = _pairs(rest)
    if isinstance(pairs, str):
        return MarkerWarning(
            f"::ccd marker: cannot read {_clip(pairs)!r}; quote values with spaces"
        )
    value: float | None = None
    message: str | None = None
    for key, raw in pairs:
        if key == "progress":
            checked = _progress_value(raw, "::ccd")
            if isinstance(checked, MarkerWarning):
                return checked
            value = checked
        elif key in ("msg", "message"):
            message = raw
        else:
            return MarkerWarning(
                f"::ccd marker: unknown key {_clip(key)!r}; use progress=N, msg=... "
                "or output KEY=VALUE"
            )
    return Progress(value=value, message=message)


def _parse_output(rest: str) -> Marker:
    key, sep, raw = rest.partition("=")
    if not sep or not _KEY.fullmatch(key):
        return MarkerWarning(
            f"::ccd output: expected KEY=VALUE with KEY like [A-Za-z_][A-Za-z0-9_]*, "
            f"got {_clip(rest)!r}"
        )
    if raw.startswith('"'):
        quoted = re.fullmatch(r'("(?:[^"\\]|\\.)*")\s*', raw)
        if quoted is None:
            return MarkerWarning(f"::ccd output {key}: unterminated or malformed quoted value")
        value = _unquote(quoted.group(1))
    else:
        value = raw
    # Cheap bounds first: a str of n characters encodes to n..4n bytes.
    if len(value) > MAX_OUTPUT_BYTES or (
        len(value) * 4 > MAX_OUTPUT_BYTES
        and len(value.encode("utf-8", "surrogatepass")) > MAX_OUTPUT_BYTES
    ):
        return MarkerWarning(f"::ccd output {key}: value too large; {_LIMIT_HINT}")
    return Output(key=key, value=value)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _group_finder(regex: re.Pattern[str], group: str | int) -> Callable[[str], float | None]:
    def find(line: str) -> float | None:
        match = regex.search(line)
        if match is None:
            return None
        text = match.group(group)
        return None if text is None else _number(text)

    return find


def _ratio_finder(regex: re.Pattern[str]) -> Callable[[str], float | None]:
    def find(line: str) -> float | None:
        match = regex.search(line)
        if match is None:
            return None
        current, total = match.group("current"), match.group("total")
        if current is None or total is None:
            return None
        done, whole = _number(current), _number(total)
        if done is None or whole is None or whole == 0:
            return None
        return 100.0 * done / whole

    return find
