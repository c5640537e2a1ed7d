"""Fingerprints of jobs' files: on this machine, and through the command a remote
host runs (run here by a real sh, as a host would)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ccd.executors import files
from ccd.executors.base import LaunchError
from ccd.executors.files import local_states, parse_remote, remote_command


def test_local_content_digest_ignores_a_touch_but_not_an_edit(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("1,2\n")
    path = str(data)
    first = local_states([path], True)[path]
    by_time = local_states([path], False)[path]
    st = data.stat()
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert local_states([path], True)[path] == first
    assert local_states([path], False)[path] != by_time
    data.write_text("1,3\n")
    assert local_states([path], True)[path] != first
    assert local_states([str(tmp_path / "nope")], True) == {str(tmp_path / "nope"): None}


def test_a_directory_counts_by_its_files(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "x").write_text("x")
    path = str(tmp_path / "d")
    before = local_states([path], True)[path]
    (tmp_path / "d" / "sub" / "y").write_text("y")
    assert local_states([path], True)[path] != before


def test_the_memo_does_not_hide_a_rewrite_of_the_same_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "f"
    data.write_text("aaaa")
    st = data.stat()
    first = local_states([str(data)], True)[str(data)]
    data.write_text("bbbb")  # same size; the mtime moves (set it so: a coarse clock)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert local_states([str(data)], True)[str(data)] != first


def _run_remote(paths: list[str], content: bool, home: Path) -> dict[str, str | None]:
    command = remote_command(paths, content)
    done = subprocess.run(
        command, shell=True, capture_output=True, text=True, env={**os.environ, "HOME": str(home)}
    )
    assert done.returncode == 0, done.stderr
    return parse_remote(paths, done.stdout)


def test_the_remote_command_agrees_with_the_local_reading(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("1,2\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a").write_text("a")
    spaced = tmp_path / "with space's.txt"
    spaced.write_text("q")
    paths = [str(tmp_path / "in.csv"), "~/dir", str(spaced), str(tmp_path / "missing")]
    by_content = _run_remote(paths, True, tmp_path)
    assert by_content[paths[0]] == local_states([paths[0]], True)[paths[0]]
    assert by_content[paths[1]] is not None and by_content[paths[1]].startswith("sha256:")
    assert by_content[paths[2]] == local_states([str(spaced)], True)[str(spaced)]
    assert by_content[paths[3]] is None
    by_time = _run_remote(paths, False, tmp_path)
    size = (tmp_path / "in.csv").stat().st_size
    assert by_time[paths[0]] is not None and by_time[paths[0]].startswith(f"size {size} mtime ")
    assert by_time[paths[3]] is None


def test_an_answer_missing_a_path_is_an_error() -> None:
    with pytest.raises(LaunchError, match="could not read input /b"):
        parse_remote(["/a", "/b"], "0 -\n")


def test_the_memo_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "_MEMO_MAX", 2)
    monkeypatch.setattr(files, "_memo", {})
    for name in "abc":
        (tmp_path / name).write_text(name)
        local_states([str(tmp_path / name)], True)
    assert len(files._memo) == 2
