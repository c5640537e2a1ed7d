"""The rule for workflow and job names (pure)."""

from __future__ import annotations

import re
from typing import Final

from ccd.spec.model import JOB_NAME_PATTERN

#: names become path components, so keep them well below file-name limits
MAX_NAME_LENGTH: Final = 128
_NAME = re.compile(JOB_NAME_PATTERN)
NAME_RULE: Final = (
    "use letters, digits, '.', '_' and '-', starting with a letter or digit "
    "(names become directory names and environment-variable suffixes)"
)


def name_problem(name: str) -> str | None:
    """What is wrong with `name` as a workflow or job name, or None."""
    if len(name) > MAX_NAME_LENGTH:
        return f"longer than {MAX_NAME_LENGTH} characters"
    if not _NAME.fullmatch(name) or ".." in name:
        return NAME_RULE
    return None


def safe_name(stem: str) -> str:
    """A valid workflow name made from a file stem."""
    cleaned = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", stem)).lstrip("._-")
    cleaned = cleaned[:MAX_NAME_LENGTH].rstrip("._-")
    return cleaned or "workflow"
