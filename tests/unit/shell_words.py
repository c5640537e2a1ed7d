"""What a real sh makes of the words ccd writes into wrappers (for assertions)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping


def evaluated(word: str, env: Mapping[str, str] | None = None) -> str:
    """The text `word` (one sh word, as in ``export NAME=word``) stands for under `env`."""
    result = subprocess.run(
        ["sh", "-c", f"printf %s {word}"],
        capture_output=True,
        text=True,
        env=dict(env or {"PATH": "/usr/bin:/bin"}),
        check=True,
    )
    return result.stdout
