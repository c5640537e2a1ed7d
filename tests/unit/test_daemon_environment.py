"""The daemon config's ``environment:`` block applied to the daemon's environment."""

from __future__ import annotations

import pytest

from ccd.daemon.environment import MARKER, apply, digest, resolve
from ccd.errors import CcdError


def test_values_reference_the_environment_and_earlier_entries() -> None:
    block = {"TOOLS": "/opt/tools", "PATH": "$TOOLS/bin:$PATH", "GREETING": "hi $$USER $NOPE"}
    assert resolve(block, {"PATH": "/usr/bin", "TOOLS": "/old"}) == {
        "TOOLS": "/opt/tools",
        "PATH": "/opt/tools/bin:/usr/bin",
        "GREETING": "hi $USER ",
    }


def test_apply_sets_the_block_in_the_environment() -> None:
    environ = {"PATH": "/usr/bin", "HOME": "/h"}
    applied = apply({"CCD_TEST_VAR": "hello", "PATH": "/opt/x/bin:$PATH"}, environ)
    assert environ == {"PATH": "/opt/x/bin:/usr/bin", "HOME": "/h", "CCD_TEST_VAR": "hello"}
    assert (applied.names, applied.changed, applied.stale_unit) == (
        ["CCD_TEST_VAR", "PATH"],
        True,
        False,
    )


def test_a_block_the_unit_already_set_is_not_applied_twice() -> None:
    block = {"PATH": "/opt/x/bin:$PATH"}
    # what systemd starts the daemon with, from the unit `ccctl daemon install` wrote
    environ = {"PATH": "/opt/x/bin:/usr/bin", MARKER: digest(block)}
    applied = apply(block, environ)
    assert environ == {"PATH": "/opt/x/bin:/usr/bin"}, "and the marker is not for jobs"
    assert (applied.changed, applied.stale_unit) == (False, False)


def test_a_unit_written_from_another_block_is_told_and_the_config_wins() -> None:
    environ = {"PATH": "/usr/bin", "OLD": "1", MARKER: digest({"OLD": "1"})}
    applied = apply({"NEW": "2"}, environ)
    assert environ == {"PATH": "/usr/bin", "OLD": "1", "NEW": "2"}
    assert (applied.changed, applied.stale_unit) == (True, True)


def test_no_block_changes_nothing() -> None:
    environ = {"PATH": "/usr/bin"}
    applied = apply({}, environ)
    assert environ == {"PATH": "/usr/bin"} and not applied.changed and applied.names == []


def test_the_digest_sees_names_values_and_order() -> None:
    assert digest({"A": "1", "B": "2"}) != digest({"B": "2", "A": "1"})
    assert digest({"A": "1"}) != digest({"A": "2"}) != digest({"B": "1"})
    assert digest({"A": "1"}) == digest({"A": "1"})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("1X", "v", "invalid variable name '1X'"),
        ("A-B", "v", "invalid variable name 'A-B'"),
        ("A=B", "v", "invalid variable name 'A=B'"),
        ("", "v", "invalid variable name ''"),
        ("A", "nul\0", "A's value contains a NUL"),
    ],
)
def test_names_and_values_no_environment_can_hold_are_refused(
    name: str, value: str, message: str
) -> None:
    environ = {"PATH": "/usr/bin"}
    with pytest.raises(CcdError, match=message):
        apply({"OK": "1", name: value}, environ)
    assert environ == {"PATH": "/usr/bin"}, "nothing is set from a refused block"
