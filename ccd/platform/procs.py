"""Which process runs a given wrapper: /proc on Linux, psutil elsewhere.

The daemon asks two things of the process table, both only around a restart:
whether the pid an earlier daemon recorded is still that attempt's wrapper (after
a reboot the pid may be another program's), and which live process runs a
wrapper whose pid file is not written yet.  Cancel and timeout need no table:
they signal the wrapper's process group (``killpg``, POSIX everywhere).

psutil rather than ``ps -o pid,pgid,command``: asking one pid took 86 µs through
psutil and 6-8 ms through ``ps`` here (a fork and exec each time; psutil reads
the kernel's table in-process on macOS too), so adopting 500 running jobs costs
~45 ms instead of seconds (docs/decisions.md, ``python bench/proctable.py``).
psutil is imported on first use, never on Linux unless forced.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol


class ProcessTable(Protocol):
    name: str

    def runs(self, pid: int, path: Path) -> bool:
        """Whether `pid` lives and has `path` among its arguments."""
        ...

    def wrapper_process(self, wrapper: Path) -> int:
        """The pid of a live ``sh WRAPPER`` that leads its own session, else 0.

        The wrapper's job subshell has the same command line, but only the
        wrapper itself leads the session that posix_spawn(setsid=True) created."""
        ...

    def zombie(self, pid: int) -> bool:
        """Whether `pid` has exited and waits for its parent to collect it."""
        ...


def process_table(kind: str) -> ProcessTable:
    """The table `ccd.platform.Mechanisms.processes` names."""
    if kind == "procfs":
        return ProcfsTable()
    if kind == "psutil":
        return PsutilTable()
    raise ValueError(f"no process table {kind!r}")


def _leads_session(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except (ProcessLookupError, PermissionError):
        return False


class ProcfsTable:
    name = "procfs"

    def runs(self, pid: int, path: Path) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return False
        return str(path).encode() in cmdline.split(b"\0")

    def wrapper_process(self, wrapper: Path) -> int:
        wanted = b"\0".join([b"sh", str(wrapper).encode()]) + b"\0"
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if fh.read() != wanted:
                        continue
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue  # exited (or not ours) while we looked
            if _leads_session(pid):
                return pid
        return 0

    def zombie(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().split(") ", 1)[1][0] == "Z"
        except (OSError, IndexError):
            return False


class PsutilTable:
    name = "psutil"

    def runs(self, pid: int, path: Path) -> bool:
        import psutil

        try:
            return str(path) in psutil.Process(pid).cmdline()
        except psutil.Error:  # gone, a zombie, or not ours to read
            return False

    def wrapper_process(self, wrapper: Path) -> int:
        import psutil

        wanted = [str(wrapper)]
        for proc in psutil.process_iter(["cmdline"]):
            # a process that exited or is not ours reads as None; argv[0] is left
            # out: which shell /bin/sh is (bash, dash) is not the question
            args = proc.info["cmdline"]
            if args and args[1:] == wanted and _leads_session(proc.pid):
                return int(proc.pid)
        return 0

    def zombie(self, pid: int) -> bool:
        import psutil

        try:
            return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False
