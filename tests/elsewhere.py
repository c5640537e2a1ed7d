"""Run ccd as if on a platform without Linux's mechanisms: ``python -m tests.elsewhere``.

Before the ccd module named on the command line runs, this refuses what only
Linux has: `sys.platform` reads ``darwin``, importing ``asyncinotify`` fails,
``os.pidfd_open`` is gone, and any file under ``/proc`` that ccd's own code opens
or lists raises (psutil, which reads /proc on Linux, may; ccd must not).  What
still works is what a Mac has too, so a daemon run this way takes every path
another platform takes (`ccd.platform.choose`: poll, re-read, psutil, launchd),
with kqueue as the one exception (it is tested with a fake: test_platform_exits).

    python -m tests.elsewhere python -m ccd.daemon.main run ...   (as DaemonProc wraps)
    python -m tests.elsewhere -c "import ccd...; ..."
"""

from __future__ import annotations

import builtins
import importlib
import importlib.abc
import io
import os
import runpy
import sys
import sysconfig
from collections.abc import Callable, Sequence
from typing import Any

REFUSED_MODULES = ("asyncinotify",)
#: modules that import their platform's part when imported (on darwin a part for
#: macOS): imported while the platform is still the real one.  psutil on Linux reads
#: /proc, which is psutil's business, not ccd's
BY_PLATFORM = ("urllib.request", "psutil")
#: the standard library's file helpers: a read of /proc through them is their caller's
HELPERS = frozenset({"pathlib", "os", "io", "posixpath", "genericpath", "shutil", "glob"})


class LinuxOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Sequence[str] | None, target: object = None) -> None:
        if name.split(".")[0] in REFUSED_MODULES:
            raise ImportError(f"{name} is Linux-only (refused by tests.elsewhere)")
        return None


def _from_ccd() -> bool:
    """Whether the code that asked (past the standard library's helpers) is ccd's."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") in HELPERS:
        frame = frame.f_back
    return frame is not None and str(frame.f_globals.get("__name__", "")).startswith("ccd")


def _is_proc(path: Any) -> bool:
    try:
        text = os.fsdecode(path)
    except TypeError:
        return False  # a descriptor
    return text == "/proc" or text.startswith("/proc/")


def _refusing(real: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(path: Any = ".", *args: Any, **kwargs: Any) -> Any:
        if _is_proc(path) and _from_ccd():
            raise AssertionError(f"ccd read {path} on a platform without /proc")
        return real(path, *args, **kwargs)

    return guarded


def install() -> None:
    # what such a platform chooses by itself, whatever the test run forces
    os.environ.pop("CCD_PLATFORM_FALLBACKS", None)
    sys.meta_path.insert(0, LinuxOnly())
    for name in REFUSED_MODULES:
        sys.modules.pop(name, None)
    if hasattr(os, "pidfd_open"):
        del os.pidfd_open
    builtins.open = io.open = _refusing(io.open)
    for name in ("open", "scandir", "listdir", "stat"):
        setattr(os, name, _refusing(getattr(os, name)))
    # what is decided by platform at import, done while it is the real one (a file
    # named by platform; _scproxy, a C module only a Mac's Python has; psutil's part)
    sysconfig.get_config_vars()
    for name in BY_PLATFORM:
        importlib.import_module(name)
    sys.platform = "darwin"


def main(argv: list[str]) -> None:
    install()
    if argv[:1] == ["-c"]:
        sys.argv = ["-c", *argv[2:]]
        exec(compile(argv[1], "<tests.elsewhere -c>", "exec"), {"__name__": "__main__"})
        return
    # `python -m MODULE ARGS...`, the interpreter's own path first (as DaemonProc passes it)
    module = argv.index("-m")
    sys.argv = [argv[module + 1], *argv[module + 2 :]]
    runpy.run_module(argv[module + 1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
