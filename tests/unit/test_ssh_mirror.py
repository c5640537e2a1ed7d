"""The local copy of a remote log: its size is the offset a follower resumes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from ccd.executors.ssh.link import HostLink
from ccd.executors.ssh.mirror import RemoteRunDir


class NoLink:
    """`append` and `close` of a copy without a remote handle never use the link."""

    generation = 0


def copy_in(directory: Path, grown: list[int]) -> RemoteRunDir:
    link = cast(HostLink, cast(Any, NoLink()))
    return RemoteRunDir(link, "/remote/run", directory, lambda: grown.append(1))


def test_bytes_are_appended_once_by_offset_and_a_gap_is_refused(tmp_path: Path) -> None:
    grown: list[int] = []
    copy = copy_in(tmp_path / "run", grown)
    assert copy.offset == 0 and not copy.log_path.exists()  # created with its first bytes
    assert copy.append(0, b"line 1\n")
    assert copy.append(3, b"e 1\nline 2\n")  # sent again from an older offset: the new part
    assert copy.append(14, b"")
    assert not copy.append(20, b"line 4\n")  # past the end: asked again, nothing written
    assert copy.log_path.read_bytes() == b"line 1\nline 2\n" and copy.offset == 14
    assert len(grown) == 2
    copy.close(3)
    assert (tmp_path / "run" / "exit").read_text() == "3\n"
    assert copy.append(14, b"late\n")  # after the end: ignored
    assert copy.log_path.read_bytes() == b"line 1\nline 2\n"


def test_a_new_copy_resumes_where_the_old_one_ended(tmp_path: Path) -> None:
    first = copy_in(tmp_path / "run", [])
    first.append(0, b"0123456789")
    first.close(None)
    assert not (tmp_path / "run" / "exit").exists()  # no code: no exit file
    again = copy_in(tmp_path / "run", [])  # a restarted daemon adopting the attempt
    assert again.offset == 10
    assert again.append(10, b"ab") and again.log_path.read_bytes() == b"0123456789ab"
