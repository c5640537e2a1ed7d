"""How values read in messages, and did-you-mean hints on a budget.

"must be X, not Y" messages name what the user wrote (`what`), keys are shown
as written (`show`), and near misses get a suggestion (`Suggestions`).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from datetime import date, datetime
from typing import Final

#: candidates compared for did-you-mean hints, in all (the hints are best effort)
SUGGESTION_WORK: Final = 100_000


class Suggestions:
    """Did-you-mean hints for one workflow file, within a bounded amount of work."""

    __slots__ = ("work",)

    def __init__(self, work: int = SUGGESTION_WORK) -> None:
        #: candidates that may still be compared
        self.work = work

    def __call__(self, word: object, candidates: Collection[str]) -> str:
        """`` (did you mean 'x'?)`` for the closest candidate, or ''."""
        if not isinstance(word, str) or not candidates:
            return ""
        # each look-up costs O(candidates): thousands of typos among thousands
        # of jobs would be quadratic, so the work for suggestions is bounded
        if len(candidates) > self.work:
            return ""
        self.work -= len(candidates)
        close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
        return f" (did you mean {close[0]!r}?)" if close else ""


def show(key: object) -> str:
    """A mapping key as written: text quoted, anything else as YAML read it."""
    return repr(key) if isinstance(key, str) else str(key)


def what(value: object) -> str:
    """How a value reads to a user, for 'must be X, not Y' messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    if isinstance(value, int | float):
        return f"a number ({value})" if abs(value) < 1e15 else "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime | date):
        return f"a date ({value.isoformat()}); quote it"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__
