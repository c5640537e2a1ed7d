"""The daemon fixes glibc's malloc thresholds, unless the environment sets them."""

from __future__ import annotations

import pytest

from ccd.daemon import memory


@pytest.mark.skipif(memory.glibc_version() is None, reason="glibc only")
def test_the_thresholds_are_fixed_with_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert memory.fix_malloc_thresholds()


@pytest.mark.parametrize("name", ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
def test_thresholds_from_the_environment_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "1048576")
    assert not memory.fix_malloc_thresholds()


def test_another_c_library_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.setattr(memory, "glibc_version", lambda: None)
    assert not memory.fix_malloc_thresholds()
