"""Durations in workflow files: ``90``, ``1.5``, ``30s``, ``5m``, ``2h``, ``1d``, ``1h30m``.

Everything becomes float seconds. Units must appear largest first and at most
once each, so a typo such as ``30m1h`` or ``5mm`` is refused instead of being
read as something the user did not mean.
"""

from __future__ import annotations

import math
import re

ACCEPTED_FORMS = (
    "a number of seconds (90 or 1.5) or numbers with units d, h, m, s, "
    "largest first (30s, 5m, 2h, 1d, 1.5h, 1h30m)"
)

_SECONDS_PER_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_UNIT_ORDER = "dhms"
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
# One "<number><unit>" component; spaces between components are tolerated.
_COMPONENT = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([dhms])")


def parse_duration(value: object) -> float:
    """Return `value` in seconds; raise ValueError naming the accepted forms."""
    # bool is an int subclass, but "timeout: true" is a mistake, not one second.
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: use {ACCEPTED_FORMS}")
    if isinstance(value, int | float):
        return _checked(_to_float(value), value)
    if isinstance(value, str):
        return _checked(_parse_text(value), value)
    raise ValueError(f"invalid duration {value!r}: use {ACCEPTED_FORMS}")


def parse_age(text: str) -> float:
    """An age for retention (``30d``, ``12h``, ``90m``) in seconds; the unit is required.

    A bare number would be seconds, which is never what ``--older-than 30`` means,
    and the mistake would delete every finished workflow.
    """
    stripped = text.strip()
    if _NUMBER.fullmatch(stripped):
        raise ValueError(
            f"invalid age {text!r}: give a unit, e.g. {stripped}d (days), "
            f"{stripped}h or {stripped}m"
        )
    return parse_duration(stripped)


def format_duration(seconds: float) -> str:
    """A short human form of `seconds` (``1h30m``, ``45s``, ``0.5s``), for messages."""
    if seconds < 60 or seconds != int(seconds):
        return f"{seconds:g}s"
    rest = int(seconds)
    parts: list[str] = []
    for unit in _UNIT_ORDER:
        size = int(_SECONDS_PER_UNIT[unit])
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _to_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        # an int too large for a float is certainly too large to wait for
        return math.inf


def _checked(seconds: float, original: object) -> float:
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"invalid duration {original!r}: use {ACCEPTED_FORMS}")
    if seconds < 0:
        raise ValueError(f"invalid duration {original!r}: a duration cannot be negative")
    return seconds


def _parse_text(text: str) -> float:
    stripped = text.strip()
    if stripped.startswith("-"):
        raise ValueError(f"invalid duration {text!r}: a duration cannot be negative")
    if _NUMBER.fullmatch(stripped):
        return float(stripped)
    total = 0.0
    position = 0
    last_unit = -1
    while position < len(stripped):
        match = _COMPONENT.match(stripped, position)
        if match is None:
            raise ValueError(f"invalid duration {text!r}: use {ACCEPTED_FORMS}")
        number, unit = match.groups()
        order = _UNIT_ORDER.index(unit)
        if order <= last_unit:
            raise ValueError(
                f"invalid duration {text!r}: give each unit once, largest first "
                f"(e.g. 1h30m); use {ACCEPTED_FORMS}"
            )
        last_unit = order
        total += float(number) * _SECONDS_PER_UNIT[unit]
        position = match.end()
    if last_unit < 0:
        # empty or whitespace-only text
        raise ValueError(f"invalid duration {text!r}: use {ACCEPTED_FORMS}")
    return total
