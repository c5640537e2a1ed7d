"""The job-protocol wrapper: a small POSIX sh script written into each run directory.

Each attempt has its own run directory, ``<root>/<workflow id>/<job>/<attempt>``
(`attempt_dir` is the one place that spells it), laid out the same on every host:

    wrapper.sh   this script, with the job's shell text in it
    pid          the wrapper's pid (= its process group, it runs under setsid)
    log          stdout and stderr of the job
    usage        what the job cost (`ccd.usage`), written just before ``exit`` when
                 the wrapper measures itself (see below)
    exit         the exit code, written when the job ends

The wrapper traps TERM/INT/HUP with a handler (not with '' -- an ignored signal
would be inherited by the job), so a TERM sent to the process group stops the
job while the wrapper survives long enough to record the exit code.

Only shell built-ins run besides the job: the job's shell text, quoted into the
wrapper, is run by `eval` in a subshell (a fork, no exec: a syntax error in it
fails the job, not the wrapper; the job's declared environment is set up there
first, see `ccd.executors.environment`), and the pid and exit files are each written by one
write(2) of a few bytes, which a reader sees either whole or not at all (an empty
file means "not yet").  A write-and-rename would need /bin/mv, one more fork and
exec per job: see docs/decisions.md.

What the job cost is measured where it is exact and cheap.  A local wrapper is
reaped by the daemon that spawned it, whose ``wait4`` returns the job tree's CPU
time and peak RSS for nothing, so the wrapper measures nothing -- unless that
daemon has gone meanwhile (``kill -0 $PPID``, a built-in, fails).  A wrapper nobody will
reap with ``wait4`` (SSH, Slurm: `self_measure`), or an orphaned local one, ends
by ``exec``-ing ``python3``, whose getrusage(RUSAGE_CHILDREN) still holds what
the shell's reaped children used (the figures survive ``exec``); it writes
``usage`` and then ``exit``.  Without ``python3`` the sh built-in ``times`` writes
the CPU time alone.  That ``exec`` costs ~15 ms of CPU, paid only there.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import PurePath
from typing import TypeVar

from ccd.executors.environment import (
    NO_ENVIRONMENT,
    Environment,
    activation_lines,
    container_lines,
    fail,
    host_lines,
    quoted_path,
    script_directory,
)
from ccd.spec.model import RUN_WORKDIR
from ccd.usage import USAGE

WRAPPER = "wrapper.sh"
PID = "pid"
LOG = "log"
EXIT = "exit"

_P = TypeVar("_P", bound=PurePath)

# Run by `exec python3 -I -S -c` in place of the wrapper once the job has ended
# (argv: run dir, exit code): the shell's reaped children's figures are still this
# process's RUSAGE_CHILDREN.  Python 3.6 suffices; `exit` is written whatever happens.
_MEASURE = f"""import os,resource,sys,time
d,rc=sys.argv[1],sys.argv[2]
def put(name,text):
    fd=os.open(d+"/"+name,os.O_WRONLY|os.O_CREAT|os.O_TRUNC,0o666)
    try:os.write(fd,text.encode())
    finally:os.close(fd)
try:
    u=resource.getrusage(resource.RUSAGE_CHILDREN)
    k=u.ru_maxrss//1024 if sys.platform=="darwin" else u.ru_maxrss
    try:s=" start=%.3f"%os.stat(d+"/{PID}").st_mtime
    except OSError:s=""
    f="utime=%.3f stime=%.3f maxrss_kb=%d%s end=%.3f node=%s\\n"
    put("{USAGE}",f%(u.ru_utime,u.ru_stime,k,s,time.time(),os.uname()[1]))
except Exception:pass
finally:put("{EXIT}",rc+"\\n")
sys.exit(int(rc))
"""


def _measure_lines(self_measure: bool) -> str:
    """The wrapper's end before the exit file: measure the job when nobody else will."""
    # TERM and friends ignored, not trapped: an ignored signal stays ignored across
    # exec, so a late TERM to the group cannot stop python before it writes `exit`
    measure = (
        "if command -v python3 >/dev/null 2>&1; then trap '' TERM INT HUP; "
        f'exec python3 -I -S -c {shlex.quote(_MEASURE)} "$d" "$rc"; fi\n'
        f'{{ times; }} > "$d/{USAGE}"\n'
    )
    if self_measure:
        return measure
    # the daemon that spawned us reaps us with wait4, unless it is gone (a new daemon
    # adopts us): one kill(2) asks.  Not /proc/$$/stat's parent field: dash's `read`
    # reads a byte per system call, and procfs makes the whole line for each (0.15 ms)
    return 'if ! kill -0 "$PPID" 2>/dev/null; then\n' + measure + "fi\n"


def attempt_dir(root: _P, workflow_id: str, job: str, attempt: int) -> _P:
    """The run directory of one attempt under `root` (a local `Path`, or a
    `PurePosixPath` on a remote host): the job protocol's only layout."""
    return root / workflow_id / job / str(attempt)


def render_wrapper(
    *,
    run_dir: str,
    workdir: str,
    env: Mapping[str, str],
    command: str,
    environment: Environment = NO_ENVIRONMENT,
    exports: Mapping[str, str] | None = None,
    script: str | None = None,
    self_measure: bool = False,
) -> str:
    """The wrapper script of one attempt.

    `env` is exported with literal values first thing; `environment` is set up and
    `exports` (the job's ``env:``, each value one sh word) exported in the job's
    subshell (`ccd.executors.environment` says in which order), so what goes wrong
    there is in the job's log. `workdir` RUN_WORKDIR (``workdir: run``) starts the
    job in its run directory; `script` is the job's script file as the job sees it.
    `self_measure`: the wrapper writes ``usage`` itself (no daemon reaps it).
    """
    d = shlex.quote(run_dir)
    cd = '"$d"' if workdir == RUN_WORKDIR else quoted_path(workdir)
    top = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
    inner = activation_lines(environment, exports or {})
    body = [
        *host_lines(environment),
        f"cd {cd} || " + fail(f"cannot enter the job's workdir {workdir}"),
    ]
    if environment.container is None:
        body += [*inner, 'eval "$ccd_command"']
    else:
        inner_text = "\n".join([*inner, 'eval "$ccd_command"'])
        body.append(f"ccd_inner={shlex.quote(inner_text)}")
        read_only = script_directory(script, run_dir)
        body += container_lines(
            environment, run_dir='"$d"', workdir=cd, passed=env, read_only=read_only
        )
    lines = "".join(f"  {line}\n" for line in body)
    return f"""#!/bin/sh
# ccd job wrapper (job protocol v1)
d={d}
echo $$ > "$d/{PID}"
{top}ccd_command={shlex.quote(command)}
trap 'ccd_signalled=1' TERM INT HUP
(
{lines}) >> "$d/{LOG}" 2>&1 < /dev/null
rc=$?
{_measure_lines(self_measure)}echo "$rc" > "$d/{EXIT}"
exit "$rc"
"""


def parse_exit_file(text: str) -> int | None:
    """The exit code in an ``exit`` file; None if it is empty (not yet written) or garbage."""
    try:
        return int(text.strip())
    except ValueError:
        return None
