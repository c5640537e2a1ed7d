"""The C allocator's settings for a long-running daemon.

glibc serves a request of at least its mmap threshold (128 KiB at start) with a
mapping of its own, returned to the kernel on free.  But each time such a block
is freed it raises the threshold to that block's size (up to 32 MiB), and the
trim threshold with it, so from then on the daemon's big transient buffers — a
workflow file being accepted, the JSON of its spec, a batch of events for a
stream — are carved from the heap between long-lived objects, and their pages
stay resident after they are freed.

The daemon fixes both thresholds instead: blocks of 1 MiB and more get their
own mapping, while the 256-512 KiB buffers that log reading allocates over and
over stay on the heap (a fresh mapping per buffer costs a page fault per 4 KiB:
10x slower reads), and up to 4 MiB free at the heap's top is kept for them.
Measured on a 10,000-job fan-out (docs/benchmarks.md): peak RSS ~164 -> ~139 MB,
RSS left after it ~144 -> ~120 MB.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

#: mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1024 * 1024
TRIM_THRESHOLD = 4 * 1024 * 1024
#: the environment variables through which a user sets them instead
_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def glibc_version() -> str | None:
    """glibc's version string, or None with another C library (musl, macOS)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        return None


def fix_malloc_thresholds() -> bool:
    """Fix glibc's mmap and trim thresholds; whether it was done.

    Thresholds given in the environment are left alone."""
    if any(name in os.environ for name in _ENVIRONMENT) or glibc_version() is None:
        return False
    import ctypes  # only here: the daemon's other imports load it anyway (asyncinotify)

    try:
        mallopt = ctypes.CDLL(None).mallopt
        # the trim threshold first: fixing the mmap threshold alone leaves it at 128 KiB
        return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        )
    except (OSError, AttributeError) as exc:  # a static or unusual libc: run as is
        log.debug("mallopt unavailable: %s", exc)
        return False
