"""How a report writes durations, sizes and shares (pure)."""

from __future__ import annotations

import math

_SIZES = ("KiB", "MiB", "GiB", "TiB", "PiB")


def seconds_text(seconds: float | None) -> str:
    """``0.42s``, ``12.3s``, ``2m05s``, ``1h02m``, ``3d04h``; ``-`` for unknown."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def kib_text(kib: float | None) -> str:
    """``812 KiB``, ``213.3 MiB``, ``1.50 GiB``; ``-`` for unknown."""
    if kib is None:
        return "-"
    size = float(kib)
    for unit in _SIZES:
        if size < 1024 or unit == _SIZES[-1]:
            if unit == "KiB":
                return f"{size:.0f} {unit}"
            return f"{size:.1f} {unit}" if size < 100 else f"{size:.0f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def percent_text(share: float | None) -> str:
    """A CPU share (1.0 = one core busy all the time) as ``98%``, ``350%``."""
    return "-" if share is None else f"{100 * share:.0f}%"


def slurm_mem(kib: float) -> str:
    """A ``--mem`` value that holds `kib`: whole MiB, or GiB from 10 GiB on (rounded up)."""
    mib = max(1, math.ceil(kib / 1024))
    if mib >= 10 * 1024:
        return f"{math.ceil(mib / 1024)}G"
    return f"{mib}M"


def slurm_minutes(seconds: float) -> str:
    """A ``--time`` value (D-HH:MM:00) of at least `seconds`, in whole minutes."""
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00" if days else f"{hours:02d}:{mins:02d}:00"
