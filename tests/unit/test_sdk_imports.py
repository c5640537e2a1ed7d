"""`import ccd` stays cheap: the API's names are looked up lazily, and the client
path never loads the daemon's libraries (bench/import_cost.py measures the time)."""

from __future__ import annotations

import subprocess
import sys

import pytest

DAEMON_ONLY = {"fastapi", "uvicorn", "asyncssh", "starlette", "aiosqlite"}


def loaded_after(statement: str) -> set[str]:
    report = "import sys; print(' '.join({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run(
        [sys.executable, "-c", f"{statement}\n{report}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


@pytest.mark.parametrize(
    ("statement", "also_absent"),
    [
        ("import ccd", {"httpx", "pydantic", "yaml", "dataclasses"}),
        ("from ccd import Client", {"httpx", "pydantic", "yaml"}),
        ("from ccd import Workflow", {"httpx"}),
        ("from ccd import AsyncClient", {"pydantic"}),
    ],
)
def test_the_api_s_imports_load_only_what_they_use(statement: str, also_absent: set[str]) -> None:
    assert loaded_after(statement) & (DAEMON_ONLY | also_absent) == set()
