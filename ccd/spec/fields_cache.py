"""The checks of a job's caching keys: ``cache``, ``inputs`` and ``outputs_files``.

``inputs`` are the files a job reads (their content, or their size and
modification time, is part of its cache key); ``outputs_files`` are files it
writes that must still exist for an earlier run of it to be reused. Relative
paths are read from the job's working directory, where it runs, once its
placement is known (`cache_path_problems`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Final

from ccd.spec.build import Draft
from ccd.spec.field_kit import Bad, FieldCheck, FieldContext
from ccd.spec.hints import show, what
from ccd.spec.model import CACHE_MODES, RUN_WORKDIR
from ccd.spec.positions import Report

#: the keys whose relative paths are read from the job's working directory
PATH_KEYS: Final = ("inputs", "outputs_files")


def _cache(value: object, context: FieldContext) -> str:
    """``cache: content`` (the default), ``cache: mtime``, or ``cache: false``."""
    if value is False:
        return "off"
    if value is True:
        return "content"
    if isinstance(value, str) and value in CACHE_MODES:
        return value
    raise Bad(
        "bad-value",
        f"cache must be content (inputs by their bytes, the default), mtime (by size and "
        f"modification time) or false (always run), not {show(value)}"
        + (context.suggest(value, CACHE_MODES) if isinstance(value, str) else ""),
    )


def _paths(key: str) -> FieldCheck:
    def check(value: object, context: FieldContext) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise Bad("wrong-type", f"{key} must be a list of file paths, not {what(value)}")
        paths = []
        for index, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                raise Bad(
                    "wrong-type",
                    f"{key}[{index}] must be a file path, not {show(item)}",
                    (index,),
                )
            paths.append(item)
        return list(dict.fromkeys(paths))

    return check


CACHE_CHECKS: Final[dict[str, FieldCheck]] = {
    "cache": _cache,
    "inputs": _paths("inputs"),
    "outputs_files": _paths("outputs_files"),
}


def cache_path_problems(draft: Draft, *, remote: bool) -> Iterator[Report]:
    """Make `draft`'s input and output file paths absolute against its working
    directory (a remote one stays the host's: ``~`` is expanded there)."""
    workdir = str(draft.fields["workdir"][0])
    for key in PATH_KEYS:
        field = draft.fields.get(key)
        if field is None:
            continue
        value, where = field
        assert isinstance(value, list)
        resolved = []
        for path in value:
            if path.startswith("~") and not remote:
                path = os.path.expanduser(path)
            if path.startswith(("/", "~")):
                resolved.append(os.path.normpath(path) if path.startswith("/") else path)
            elif workdir == RUN_WORKDIR:
                yield (
                    where,
                    "relative-path",
                    f"job {draft.name!r}: {key} {path!r} is relative, but workdir: run gives "
                    "each attempt a new directory; give an absolute path",
                    False,
                )
            else:
                resolved.append(_join(workdir, path))
        draft.fields[key] = (resolved, where)


def _join(workdir: str, path: str) -> str:
    joined = os.path.normpath(os.path.join(workdir, path))
    # "~/x" is the remote shell's to expand, and normpath keeps it so
    return joined
