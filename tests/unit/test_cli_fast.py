"""ccd.cli.fast: which command lines skip typer (to ccd.cli.quick), and that the rest reach it."""

from __future__ import annotations

import pytest

from ccd.cli import fast, quick
from ccd.cli.client import daemon_environment


@pytest.mark.parametrize(
    "argv",
    [
        ["ls"],
        ["ls", "--json"],
        ["ls", "--limit", "5"],
        ["ls", "--json", "--limit", "5"],
        ["status", "mnist"],
        ["status", "--json", "a1b2c3d4"],
    ],
)
def test_plain_ls_and_status_are_handled_here(argv: list[str]) -> None:
    assert fast.parse(argv) is not None


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["ls", "--help"],
        ["ls", "--limit"],
        ["ls", "--limit", "x"],
        ["ls", "--limit=5"],
        ["status"],
        ["status", "--help"],
        ["status", "a", "b"],
        ["watch", "mnist"],
        ["submit", "wf.yaml"],
    ],
)
def test_everything_else_goes_to_typer(argv: list[str]) -> None:
    assert fast.parse(argv) is None


def test_ls_and_status_call_the_daemon_with_the_parsed_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, str, object]] = []

    class FakeClient:
        def call(self, method: str, path: str, params: object = None) -> object:
            calls.append((method, path, params))
            return [] if path == "/v1/workflows" else {"id": "x", "name": "n", "jobs": []}

    monkeypatch.setattr(quick, "Client", FakeClient)
    command = fast.parse(["ls", "--json", "--limit", "7"])
    assert command is not None
    command()
    command = fast.parse(["status", "a/b", "--json"])
    assert command is not None
    command()
    assert calls == [
        ("GET", "/v1/workflows", {"limit": 7}),
        ("GET", "/v1/workflows/a%2Fb", None),
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/usr/bin:/bin", "/v/bin:/usr/bin:/bin"),
        ("/v/bin:/usr/bin", "/v/bin:/usr/bin"),
        ("/usr/bin:/v/bin:/bin", "/v/bin:/usr/bin:/bin"),
        ("", "/v/bin"),
    ],
)
def test_an_autostarted_daemon_has_ccctls_interpreter_first_on_path(
    path: str, expected: str
) -> None:
    env = daemon_environment({"PATH": path, "HOME": "/h"}, "/v/bin/python")
    assert env == {"PATH": expected, "HOME": "/h"}
