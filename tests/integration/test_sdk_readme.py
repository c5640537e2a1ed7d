"""The README's Python API example runs as written, against a real daemon."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, WAIT, DaemonProc


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no Python example in the README's Python API section"
    return match.group(1)


def test_the_readme_example_builds_submits_follows_and_waits(
    daemon: DaemonProc, tmp_path: Path
) -> None:
    script = tmp_path / "demo.py"
    script.write_text(readme_example())
    result = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, **daemon.env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"submitted [0-9a-f]+", lines[0]), lines
    assert any(line.startswith("train: ") and line.endswith("%") for line in lines[1:-2])
    assert lines[-2:] == ["succeeded {'acc': '0.93'}", "50000 rows, accuracy 0.93"]
