"""What the YAML parser's complaints mean to someone editing a workflow file.

The parser reports a syntax error as a mark and a terse phrase; these turn it
into a `Problem` at the right spot with a hint at the usual cause (a tab in the
indentation, an unquoted ``: ``, an unclosed bracket).
"""

from __future__ import annotations

import yaml

from ccd.errors import Problem
from ccd.spec.positions import line_col


def syntax_problem(text: str, source: str, exc: yaml.MarkedYAMLError) -> Problem:
    """The problem for a parser error in `text`."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 0
    column = mark.column + 1 if mark is not None else 0
    what = exc.problem or exc.context or "invalid YAML"
    text_line = _line_text(text, line)
    indent = text_line[: len(text_line) - len(text_line.lstrip(" \t"))]
    if "\t" in indent or "tab" in what:
        tab_column = indent.index("\t") + 1 if "\t" in indent else column
        return Problem(
            source,
            line,
            tab_column,
            "yaml-tab",
            "tab character in indentation: YAML indents with spaces only; "
            "replace the tab with spaces",
        )
    context = f" {exc.context}" if exc.context and exc.problem else ""
    return Problem(
        source,
        line,
        column,
        "yaml-syntax",
        f"YAML syntax error: {what}{context}. {_syntax_hint(what)}",
    )


def reader_problem(text: str, source: str, exc: yaml.reader.ReaderError) -> Problem:
    """The problem for a character YAML does not allow in `text`."""
    line, column = line_col(text, int(exc.position))
    character = exc.character  # a str from the Python reader, an int from libyaml's
    code = ord(character[:1] or "?") if isinstance(character, str) else int(character)
    return Problem(
        source,
        line,
        column,
        "yaml-bad-char",
        f"character #x{code:04x} is not allowed in YAML; remove it "
        "(escape it in a double-quoted string if it is really wanted)",
    )


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
