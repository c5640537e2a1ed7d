"""The per-host `slurm:` settings as a user writes them in the daemon's YAML config."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccd.config import load_config
from ccd.errors import CcdError


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("auto", "auto"),
        ("yes", "yes"),  # YAML reads an unquoted yes/no as a boolean
        ("no", "no"),
        ("'yes'", "yes"),
        ("true", "yes"),
        ("false", "no"),
    ],
)
def test_sacct_setting_accepts_yaml_booleans(tmp_path: Path, written: str, meant: str) -> None:
    config = tmp_path / "ccd.yaml"
    config.write_text(
        f"hosts:\n  localhost:\n    slurm: {{poll_interval: 0.5, sacct: {written}}}\n"
    )
    assert load_config(config).host_config("localhost").slurm.sacct == meant


def test_sacct_setting_rejects_other_values(tmp_path: Path) -> None:
    config = tmp_path / "ccd.yaml"
    config.write_text("hosts:\n  localhost:\n    slurm: {sacct: sometimes}\n")
    with pytest.raises(CcdError, match="sacct"):
        load_config(config)
