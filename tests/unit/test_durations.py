from __future__ import annotations

import pytest

from ccd.spec.durations import format_duration, parse_age, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (1.5, 1.5),
        ("0", 0.0),
        ("90", 90.0),
        ("2.5", 2.5),
        (".5", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        ("1d2h3m4s", 86400 + 7200 + 180 + 4.0),
        ("1h 30m", 5400.0),
        ("  45s  ", 45.0),
        ("0s", 0.0),
    ],
)
def test_valid(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "abc",
        "5 minutes",
        "5M",
        "1:30",
        "30m1h",  # units out of order
        "1h1h",  # unit twice
        "5mm",
        "h",
        "1e3",
        "nan",
        "inf",
        float("nan"),
        float("inf"),
        True,
        None,
        [1],
        {"s": 1},
        10**400,
        "9" * 400,
    ],
)
def test_invalid_names_the_accepted_forms(value: object) -> None:
    with pytest.raises(ValueError, match=r"30s, 5m, 2h, 1d"):
        parse_duration(value)


@pytest.mark.parametrize("value", [-1, -0.5, "-5s", "-1", " -2h"])
def test_negative_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "0.5s"), (45, "45s"), (90, "1m30s"), (5400, "1h30m"), (90061, "1d1h1m1s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400.0), ("12h", 43200.0), ("90m", 5400.0), ("1d12h", 129600.0)],
)
def test_parse_age(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("30", "give a unit, e.g. 30d"),
        ("1.5", "give a unit"),
        ("3x", "invalid duration"),
        ("-2d", "negative"),
        ("", "invalid duration"),
    ],
)
def test_parse_age_refuses(text: str, hint: str) -> None:
    with pytest.raises(ValueError, match=hint):
        parse_age(text)
