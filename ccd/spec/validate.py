"""From workflow YAML to a checked `Workflow`, or every problem at once.

The entry points are `load_workflow_file` and `load_workflow_text`; both raise
`SpecError` listing all problems found (each with file, line, column, a stable
code and a message that says what to do), never only the first one.

ccd's own format::

    name: mnist                 # optional; default: the file's stem
    concurrency: 8              # optional positive int
    defaults: {host: localhost, retries: 1, timeout: 2h}
    jobs:
      fetch: {run: ./fetch.sh}
      train: {needs: [fetch], script: train.py, args: [--epochs, "3"]}

cloudmesh-cc's ``workflow: {nodes: ..., dependencies: ...}`` format is
converted by `ccd.spec.cloudmesh` first and then checked the same way.

Defaults apply to every job; a job's own value wins, except that ``env`` and
``resources`` are merged key by key (the job's keys win).

This module reads the file and hands it on: `ccd.spec.loader` turns text into
data with positions, `ccd.spec.checker` checks it (with `ccd.spec.fields` per
key and `ccd.spec.graph` for the job graph) and builds the model.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

from ccd.errors import Problem, SpecError
from ccd.spec.checker import LOCALHOST, Checker, finish
from ccd.spec.graph import workflow_graph
from ccd.spec.loader import MAX_BYTES, load_yaml, too_large
from ccd.spec.model import Workflow

__all__ = ["load_workflow_file", "load_workflow_text", "workflow_graph"]


def load_workflow_file(
    path: str | os.PathLike[str],
    *,
    known_hosts: Collection[str] = (LOCALHOST,),
    local_environment: bool = False,
    params: Mapping[str, str] | None = None,
) -> Workflow:
    """Read and validate the workflow file at `path`; raise SpecError with every problem.

    `local_environment`: the daemon config declares an environment for localhost,
    so what a local job finds (papermill) is not this process's to say. `params`:
    parameter values given at submit, as text (``--set NAME=VALUE``)."""
    file = Path(path)
    source = str(file)
    try:
        size = file.stat().st_size
        if size > MAX_BYTES:
            raise too_large(source, size)
        with file.open("rb") as stream:
            # read one byte more than allowed in case the file grew since stat
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise _no_position(source, "file-not-found", "workflow file not found") from None
    except IsADirectoryError:
        raise _no_position(
            source, "unreadable", "this is a directory; give the workflow file"
        ) from None
    except OSError as exc:
        raise _no_position(
            source, "unreadable", f"cannot read the workflow file: {exc.strerror or exc}"
        ) from None
    base_dir = file.absolute().parent
    return _load(data, source, base_dir, known_hosts, file.stem, local_environment, params)


def load_workflow_text(
    text: str | bytes,
    *,
    source: str = "<string>",
    base_dir: str | os.PathLike[str] | None,
    known_hosts: Collection[str] = (LOCALHOST,),
    local_environment: bool = False,
    params: Mapping[str, str] | None = None,
) -> Workflow:
    """Validate workflow `text`; relative paths in it are relative to `base_dir`.

    `base_dir` None: the text came without the path of its file (an API submit
    without ``?source=``), so a relative script or local workdir is a problem
    instead of being read from whatever directory the daemon runs in.
    """
    default_name = "workflow" if source.startswith("<") else Path(source).stem
    base = None if base_dir is None else Path(os.path.abspath(base_dir))
    return _load(text, source, base, known_hosts, default_name, local_environment, params)


def _no_position(source: str, code: str, message: str) -> SpecError:
    return SpecError([Problem(source, 0, 0, code, message)])


def _load(
    text: str | bytes,
    source: str,
    base_dir: Path | None,
    known_hosts: Collection[str],
    default_name: str,
    local_environment: bool = False,
    params: Mapping[str, str] | None = None,
) -> Workflow:
    try:
        document = load_yaml(text, source)
    except SpecError as exc:
        raise SpecError(finish(exc.problems, source)) from None
    checker = Checker(source, base_dir, known_hosts, document.positions, local_environment, params)
    checker.problems.extend(document.problems)
    return checker.workflow(document.data, default_name)
