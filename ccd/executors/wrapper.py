"""The job-protocol wrapper: a small POSIX sh script written into each run directory.

Each attempt has its own run directory, ``<root>/<workflow id>/<job>/<attempt>``
(`attempt_dir` is the one place that spells it), laid out the same on every host:

    wrapper.sh   this script, with the job's shell text in it
    pid          the wrapper's pid (= its process group, it runs under setsid)
    log          stdout and stderr of the job
    exit         the exit code, written when the job ends

The wrapper traps TERM/INT/HUP with a handler (not with '' -- an ignored signal
would be inherited by the job), so a TERM sent to the process group stops the
job while the wrapper survives long enough to record the exit code.

Only shell built-ins run besides the job: the job's shell text, quoted into the
wrapper, is run by `eval` in a subshell (a fork, no exec: a syntax error in it
fails the job, not the wrapper), and the pid and exit files are each written by one
write(2) of a few bytes, which a reader sees either whole or not at all (an empty
file means "not yet").  A write-and-rename would need /bin/mv, one more fork and
exec per job: see docs/decisions.md.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import TypeVar

from ccd.spec.model import RUN_WORKDIR

WRAPPER = "wrapper.sh"
PID = "pid"
LOG = "log"
EXIT = "exit"

_P = TypeVar("_P", bound=PurePath)


def attempt_dir(root: _P, workflow_id: str, job: str, attempt: int) -> _P:
    """The run directory of one attempt under `root` (a local `Path`, or a
    `PurePosixPath` on a remote host): the job protocol's only layout."""
    return root / workflow_id / job / str(attempt)


def shell_path(path: str) -> str:
    """`path` quoted for sh, keeping a leading ``~`` (the host's home) expandable."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def render_wrapper(
    *,
    run_dir: str,
    workdir: str,
    env: Mapping[str, str],
    command: str,
    setup: Sequence[str] = (),
) -> str:
    """The wrapper script; `setup` lines (e.g. ``module load``) run before the job.

    `workdir` RUN_WORKDIR (``workdir: run``) starts the job in its run directory."""
    d = shlex.quote(run_dir)
    cd = '"$d"' if workdir == RUN_WORKDIR else shell_path(workdir)
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
    setup_lines = "".join(f"{line}\n" for line in setup)
    return f"""#!/bin/sh
# ccd job wrapper (job protocol v1)
d={d}
echo $$ > "$d/{PID}"
{exports}ccd_command={shlex.quote(command)}
trap 'ccd_signalled=1' TERM INT HUP
{setup_lines}if cd {cd}; then
  ( eval "$ccd_command" ) >> "$d/{LOG}" 2>&1 < /dev/null
  rc=$?
else
  echo "ccd: cannot enter the job's workdir "{cd} >> "$d/{LOG}"
  rc=127
fi
echo "$rc" > "$d/{EXIT}"
exit "$rc"
"""


def parse_exit_file(text: str) -> int | None:
    """The exit code in an ``exit`` file; None if it is empty (not yet written) or garbage."""
    try:
        return int(text.strip())
    except ValueError:
        return None
