"""Variable references in configured values (``PATH: /opt/tools/bin:$PATH``).

Pure: the caller says where a variable's value comes from, so the daemon's start-up
(``environment:`` of the daemon config) and a job's ``env:`` share one set of rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# One alternative per rule, tried left to right at each `$`: `$$` first so that
# `$$PATH` is the text `$PATH`, never a `$` followed by PATH's value.
_REFERENCE = re.compile(rf"\$(?:(?P<dollar>\$)|(?P<bare>{_NAME})|\{{(?P<braced>{_NAME})\}})")


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """`text` with its variable references replaced by their values.

    The rules, and nothing else (no shell is involved, so nothing else is special):

    - ``$NAME`` and ``${NAME}``, where NAME is a letter or ``_`` followed by letters,
      digits and ``_``, become ``lookup(NAME)``; a bare name is the longest such run
      (``$A_B9x`` is the variable ``A_B9x``; write ``${A}_B9x`` to end it earlier);
    - a variable that `lookup` does not know (it returns None) becomes empty text;
    - ``$$`` is one literal ``$``;
    - any other ``$`` is literal, and so is what follows it: ``$1``, a trailing
      ``$``, an unclosed ``${``, ``${}`` and shell forms such as ``${A:-b}`` are
      kept as written.

    Values are not expanded again: a value that contains ``$HOME`` stays ``$HOME``.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group("dollar") is not None:
            return "$"
        name = match.group("bare") or match.group("braced")
        return lookup(name) or ""

    return _REFERENCE.sub(replace, text)


def shell_word(text: str) -> str:
    """`text` as one double-quoted sh word that a shell expands by the same rules.

    For a value that only the job's own shell can expand (``$PATH`` on a remote host
    is that host's): the references become ``${NAME}``, everything else is escaped,
    so the shell's parameter expansion of those names is the only thing it does.
    """
    words = ['"']
    end = 0
    for match in _REFERENCE.finditer(text):
        words.append(_escaped(text[end : match.start()]))
        name = match.group("bare") or match.group("braced")
        words.append("\\$" if name is None else "${" + name + "}")
        end = match.end()
    words.append(_escaped(text[end:]))
    words.append('"')
    return "".join(words)


def _escaped(text: str) -> str:
    # inside double quotes these four are special to sh; nothing else is
    return re.sub(r'([\\"$`])', r"\\\1", text)
