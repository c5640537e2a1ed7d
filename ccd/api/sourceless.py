"""A workflow submitted without ``?source=``: relative paths in it have no base.

A workflow file's relative `script:` and `workdir:` paths are relative to the
file's directory; a body posted without its file's path has none, and resolving
them against the daemon's working directory ran whatever file happened to be
there.  The spec loader always resolves against a base directory, so such a
body is checked against `NO_BASE`, a directory that does not exist: a relative
script is then not found there (that problem is reworded to say what to do), a
relative workdir lands under it (refused here), and a job without a workdir gets
`NO_BASE` itself, which becomes the daemon's working directory as before.

Most bodies name no file at all: the cheap byte test `_may_name_paths` sends them
straight to the loader, so a 100,000-job workflow of `run:` lines pays nothing.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Final

from ccd.errors import Problem, SpecError
from ccd.spec.model import Workflow
from ccd.spec.validate import load_workflow_text

#: the source a body without one is reported under
SOURCE: Final = "<request>"
#: the base a body without a source is checked against (deep, so that a path
#: climbing out with `..` still lands under it)
NO_BASE: Final = "/nonexistent-ccd-base" + "/-" * 32
#: what a refused relative path is told to do
HINT: Final = (
    "the workflow came without ?source=, so relative paths have no base: "
    "pass ?source=/abs/path/of/wf.yaml (ccctl submit does) or use an absolute path"
)
#: words in a body that may name a path relative to the workflow file (the last:
#: cloudmesh-cc's format, whose nodes run `NAME.sh` next to the file)
_PATH_KEYS: Final = (b"script", b"workdir", b"venv", b"conda", b"workflow")


def load_without_source(body: bytes, known_hosts: Collection[str]) -> Workflow:
    """The validated workflow in `body`; SpecError (422) if it has a relative path."""
    cwd = os.getcwd()
    if not _may_name_paths(body):
        return load_workflow_text(body, source=SOURCE, base_dir=cwd, known_hosts=known_hosts)
    try:
        spec = load_workflow_text(body, source=SOURCE, base_dir=NO_BASE, known_hosts=known_hosts)
    except SpecError as exc:
        raise SpecError([_reworded(p) for p in exc.problems]) from None
    relative = [
        Problem(
            SOURCE,
            0,
            0,
            "relative-path",
            f"job {job.name!r}: workdir {_shown(job.workdir)!r} is relative; {HINT}",
        )
        for job in spec.jobs.values()
        if job.workdir.startswith(NO_BASE + "/")
    ]
    if relative:
        raise SpecError(relative)
    return _default_workdir(spec, cwd)


def _may_name_paths(body: bytes) -> bool:
    return any(key in body for key in _PATH_KEYS)


def _reworded(problem: Problem) -> Problem:
    if NO_BASE not in problem.message:
        return problem
    if problem.code == "script-not-found":
        what, _, _ = problem.message.partition(" not found (looked for ")
        return problem._replace(message=f"{what} is relative; {HINT}")
    return problem._replace(message=f"{problem.message.replace(NO_BASE, '.')} ({HINT})")


def _shown(path: str) -> str:
    """A workdir under `NO_BASE` as the user wrote it (normalized)."""
    return path.removeprefix(NO_BASE + "/")


def _default_workdir(spec: Workflow, cwd: str) -> Workflow:
    """Jobs without a workdir run in the daemon's working directory, as before."""
    if all(job.workdir != NO_BASE for job in spec.jobs.values()):
        return spec
    jobs = {
        name: job.model_copy(update={"workdir": cwd}) if job.workdir == NO_BASE else job
        for name, job in spec.jobs.items()
    }
    return spec.model_copy(update={"jobs": jobs})
