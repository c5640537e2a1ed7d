"""The operating system's mechanisms the daemon relies on, chosen once at start-up.

Four things differ between Linux and the other platforms ccd runs on:

    exits      when a wrapper exits: pidfd (Linux), kqueue EVFILT_PROC (macOS, BSD),
               else a bounded poll of waitpid / kill(pid, 0) and the exit file
    files      when a log grows: inotify (Linux), else a timed re-read
    processes  which process runs a given wrapper: /proc (Linux), else psutil
    service    what ``ccctl daemon install`` writes: systemd (Linux), launchd (macOS)

`choose` picks the best each platform has and probes it (a kernel older than 5.3
has `os.pidfd_open` but no pidfd).  ``CCD_PLATFORM_FALLBACKS`` (or ``ccd run
--platform-fallbacks``) forces the portable mechanism of the ones it names: a
testing aid, so the paths macOS and others take run for real on Linux.  Nothing
here imports a Linux-only module; the modules that do are imported only once
chosen.  Tests: tests/unit/test_platform*.py.
"""

from __future__ import annotations

import importlib.util
import os
import select
import sys
from dataclasses import dataclass, field

from ccd.errors import CcdError

#: the environment switch; a comma-separated list of MECHANISMS, ``all`` or ``none``
FALLBACKS_ENV = "CCD_PLATFORM_FALLBACKS"
#: the mechanisms that have a portable fallback (the service has none: ccctl autostarts)
MECHANISMS = ("exits", "files", "processes")


@dataclass(frozen=True)
class Mechanisms:
    exits: str  #: "pidfd", "kqueue" or "poll"
    files: str  #: "inotify" or "re-read"
    processes: str  #: "procfs" or "psutil"
    service: str  #: "systemd", "launchd" or "none"
    #: the mechanisms forced to their fallback
    forced: frozenset[str] = field(default_factory=frozenset)

    def names(self) -> dict[str, str]:
        """By mechanism, what is used (``(forced)`` where a fallback was asked for)."""
        chosen = {"exits": self.exits, "files": self.files, "processes": self.processes}
        named = {k: v + (" (forced)" if k in self.forced else "") for k, v in chosen.items()}
        return {**named, "service": self.service}


def parse_fallbacks(text: str | None) -> frozenset[str]:
    """The mechanisms ``text`` names (``all``: every one; empty or ``none``: none)."""
    words = {w.strip().lower() for w in (text or "").split(",") if w.strip()}
    if words <= {"none"}:
        return frozenset()
    if "all" in words:
        words = (words - {"all"}) | set(MECHANISMS)
    unknown = sorted(words - set(MECHANISMS))
    if unknown:
        raise CcdError(
            f"{FALLBACKS_ENV}: unknown mechanism {', '.join(unknown)}; "
            f"use all, none or any of {', '.join(MECHANISMS)}, separated by commas"
        )
    return frozenset(words)


def choose(forced: frozenset[str] | None = None) -> Mechanisms:
    """What this platform offers, less what `forced` (default: the environment) forces."""
    if forced is None:
        forced = parse_fallbacks(os.environ.get(FALLBACKS_ENV))
    linux = sys.platform.startswith("linux")
    if "exits" in forced:
        exits = "poll"
    elif linux and _pidfd_works():
        exits = "pidfd"
    else:
        exits = "kqueue" if hasattr(select, "kqueue") else "poll"
    files = "inotify" if linux and "files" not in forced else "re-read"
    if linux and "processes" not in forced and os.path.isdir("/proc/self"):
        processes = "procfs"
    else:
        processes = "psutil"
        if importlib.util.find_spec("psutil") is None:
            raise CcdError(
                "ccd needs psutil on this platform (or with processes in "
                f"{FALLBACKS_ENV}): pip install psutil"
            )
    service = "systemd" if linux else "launchd" if sys.platform == "darwin" else "none"
    return Mechanisms(exits, files, processes, service, forced)


def _pidfd_works() -> bool:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return False
    try:
        os.close(pidfd_open(os.getpid()))
    except OSError:  # ENOSYS: a kernel before 5.3 (an older cluster's login node)
        return False
    return True
