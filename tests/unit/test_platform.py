"""Which mechanisms `ccd.platform.choose` picks, here and on platforms it cannot run on.

The other platforms are simulated by patching `sys.platform` and the probes
(`select.kqueue`, `os.pidfd_open`, psutil's presence): what is checked is the
choice, not the mechanisms themselves (tests/unit/test_platform_exits.py, ...).
"""

from __future__ import annotations

import importlib.util
import os
import select
import sys
from typing import Any

import pytest

from ccd import platform
from ccd.errors import CcdError
from ccd.platform import Mechanisms, choose, parse_fallbacks


@pytest.mark.parametrize(
    ("text", "forced"),
    [
        (None, set()),
        ("", set()),
        ("none", set()),
        ("all", {"exits", "files", "processes"}),
        ("exits", {"exits"}),
        (" Files , processes ", {"files", "processes"}),
        ("all,exits", {"exits", "files", "processes"}),
    ],
)
def test_fallbacks_are_named_by_mechanism_or_all(text: str | None, forced: set[str]) -> None:
    assert parse_fallbacks(text) == forced


def test_an_unknown_fallback_is_refused_with_the_valid_names() -> None:
    with pytest.raises(CcdError, match="unknown mechanism exit, inotify; use all, none or any of"):
        parse_fallbacks("exit,inotify")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux choice")
def test_linux_gets_its_fast_paths_unless_they_are_forced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(platform.FALLBACKS_ENV, raising=False)
    assert choose() == Mechanisms("pidfd", "inotify", "procfs", "systemd")
    forced = choose(frozenset({"exits", "files", "processes"}))
    assert (forced.exits, forced.files, forced.processes) == ("poll", "re-read", "psutil")
    assert forced.names() == {
        "exits": "poll (forced)",
        "files": "re-read (forced)",
        "processes": "psutil (forced)",
        "service": "systemd",
    }
    monkeypatch.setenv(platform.FALLBACKS_ENV, "files")
    assert choose().names()["files"] == "re-read (forced)"
    assert choose().exits == "pidfd"


def elsewhere(monkeypatch: pytest.MonkeyPatch, name: str, *, kqueue: bool) -> None:
    monkeypatch.delenv(platform.FALLBACKS_ENV, raising=False)
    monkeypatch.setattr(sys, "platform", name)
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    if kqueue:
        monkeypatch.setattr(select, "kqueue", object, raising=False)
    else:
        monkeypatch.delattr(select, "kqueue", raising=False)


def test_macos_gets_kqueue_re_reads_psutil_and_launchd(monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere(monkeypatch, "darwin", kqueue=True)
    assert choose() == Mechanisms("kqueue", "re-read", "psutil", "launchd")
    assert choose(frozenset({"exits"})).exits == "poll"


def test_a_bsd_gets_kqueue_and_no_service(monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere(monkeypatch, "freebsd14", kqueue=True)
    assert choose() == Mechanisms("kqueue", "re-read", "psutil", "none")


def test_without_pidfd_or_kqueue_exits_are_polled(monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere(monkeypatch, "sunos5", kqueue=False)
    assert choose().exits == "poll"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux kernel without pidfd")
def test_a_kernel_without_pidfd_is_noticed_at_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    def enosys(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.delenv(platform.FALLBACKS_ENV, raising=False)
    monkeypatch.setattr(os, "pidfd_open", enosys)
    assert choose().exits == "poll"  # a 3.10 kernel (CentOS 7 login nodes) has no pidfd


def test_a_missing_psutil_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "psutil" else real(name, *args)

    elsewhere(monkeypatch, "darwin", kqueue=True)
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(CcdError, match=r"ccd needs psutil on this platform.*pip install psutil"):
        choose()
