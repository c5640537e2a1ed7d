"""The checks of a job's environment declaration that need to know where it runs.

``venv:`` and ``conda:`` prefixes (and a container image given as a file) are
paths: on this machine they are read from the workflow file's directory, like
``script:``, and must exist now, so a typo fails at ``ccctl validate`` rather
than when the job starts; on a remote host they stay the host's to resolve (a
relative path from the home directory, where a remote job starts), and only the
job itself can tell whether they exist.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator

from ccd.spec.build import Draft
from ccd.spec.fields import NO_BASE_HINT
from ccd.spec.positions import Report

#: what makes a directory a virtualenv (``python -m venv`` and ``virtualenv`` write it)
VENV_MARKER = "pyvenv.cfg"
#: what makes a directory a conda environment
CONDA_MARKER = "conda-meta"
#: the keys that change where a job's programs come from
ENVIRONMENT_KEYS = ("venv", "conda", "modules", "container", "setup")
#: what installs notebook support into the Python that runs ccd
NOTEBOOKS_EXTRA = "ccd-coordinator[notebooks]"

MakeAbsolute = Callable[[str], str]


def is_conda_prefix(value: str) -> bool:
    """A ``conda:`` value that names a prefix directory rather than an environment."""
    return "/" in value or value.startswith(("~", "."))


def is_image_file(value: str) -> bool:
    """A ``container:`` value that is an image file (apptainer's .sif) rather than a
    reference for the runtime to pull (``docker://…``, ``python:3.11``)."""
    return "://" not in value and (value.endswith((".sif", ".simg")) or value.startswith("/"))


def environment_problems(
    draft: Draft, *, remote: bool, has_base: bool, absolute: MakeAbsolute
) -> Iterator[Report]:
    """Make the environment's paths absolute in `draft`; report those missing here.

    `has_base`: the workflow came with its file's path, so relative paths have a
    directory to be read from."""
    for key, is_path in (("venv", None), ("conda", is_conda_prefix), ("container", is_image_file)):
        field = draft.fields.get(key)
        if field is None:
            continue
        value, where = field
        assert isinstance(value, str)
        if is_path is not None and not is_path(value):
            continue
        if not remote and not has_base and not value.startswith(("/", "~")):
            message = f"job {draft.name!r}: {key} {value!r} is relative; {NO_BASE_HINT}"
            yield where, "relative-path", message, False
            continue
        path = absolute(value)
        draft.fields[key] = (path, where)
        if remote:
            continue
        problem = _local_problem(key, value, path)
        if problem is not None:
            yield where, "env-not-found", f"job {draft.name!r}: {problem}", False


def _local_problem(key: str, written: str, path: str) -> str | None:
    where = "" if written == path else f" (looked for {path})"
    if not os.path.exists(path):
        return (
            f"{key} {written!r} not found{where}; paths are relative to the workflow "
            "file's directory"
            + (f": create it with python3 -m venv {path}" if key == "venv" else "")
        )
    if key == "venv" and not os.path.isfile(os.path.join(path, VENV_MARKER)):
        return f"venv {written!r} is not a virtualenv{where}: it has no {VENV_MARKER}"
    if key == "conda" and not os.path.isdir(os.path.join(path, CONDA_MARKER)):
        return f"conda {written!r} is not a conda environment{where}: it has no {CONDA_MARKER}/"
    if key == "container" and not os.path.isfile(path):
        return f"container {written!r} is not an image file{where}"
    return None


def notebook_problems(draft: Draft, *, remote: bool, local_environment: bool) -> Iterator[Report]:
    """``params`` only for notebooks; a local notebook needs papermill where it runs.

    Where it runs is known for a job with no environment of its own on a host
    without one (`local_environment` False): the daemon's PATH, which has ccd's own
    Python first; or its own venv. Otherwise (conda, modules, a container, setup
    lines) only the job can tell, and it says so itself."""
    script = draft.fields.get("script")
    notebook = script is not None and str(script[0]).endswith(".ipynb")
    params = draft.fields.get("params")
    if params is not None and not notebook:
        message = f"job {draft.name!r}: params: are a notebook's parameters; use args: for a script"
        yield params[1], "params-not-notebook", message, True
    if not notebook or remote:
        return
    own = [key for key in ENVIRONMENT_KEYS if key in draft.fields]
    assert script is not None
    if own == ["venv"]:
        venv = str(draft.fields["venv"][0])
        if not os.path.exists(os.path.join(venv, "bin", "papermill")):
            python = os.path.join(venv, "bin", "python")
            message = (
                f"job {draft.name!r} is a notebook, and its venv {venv} has no papermill: "
                f"{python} -m pip install papermill ipykernel"
            )
            yield script[1], "papermill-missing", message, False
    elif not own and not local_environment and not _papermill_here():
        message = (
            f"job {draft.name!r} is a notebook, and papermill (which runs notebooks) is "
            f"not installed: {sys.executable} -m pip install '{NOTEBOOKS_EXTRA}' "
            "(or give the job a venv: that has papermill and ipykernel)"
        )
        yield script[1], "papermill-missing", message, False


def _papermill_here() -> bool:
    """papermill on PATH or beside this Python (the daemon puts that directory first
    on its jobs' PATH)."""
    beside = os.path.join(os.path.dirname(sys.executable), "papermill")
    return os.path.exists(beside) or shutil.which("papermill") is not None
