"""The follower's wire format, the launch script's answers and the batching of launches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ccd.executors.base import LaunchError
from ccd.executors.ssh import frames
from ccd.executors.ssh.follower import start_command
from ccd.executors.ssh.launch import Batcher, kill_command, launch_answer


def frame_of(raw: bytes) -> frames.Frame:
    line, _, rest = raw.partition(b"\n")
    header = frames.parse_header(line + b"\n")
    assert len(rest) == header.payload
    return frames.make_frame(header, rest)


def test_commands_are_one_line_each_with_the_directory_last() -> None:
    assert frames.add_command(7, 1234, shared=False, pid=99, run_dir="/h/u/runs/w x/j/1") == (
        b"A 7 1234 l 99 /h/u/runs/w x/j/1\n"
    )
    assert frames.add_command(8, 0, shared=True, pid=0, run_dir="/r") == b"A 8 0 s 0 /r\n"
    assert frames.drop_command(7) == b"D 7\n"
    assert frames.flush_command(3, 7) == b"F 3 7\n"
    with pytest.raises(ValueError, match="newline"):
        frames.add_command(1, 0, shared=False, pid=1, run_dir="/a\nb")


def test_frames_carry_their_bytes_unescaped() -> None:
    data = b"line 1\n\x00\xff binary\nL 1 2 3\n"
    assert frame_of(b"L 4 100 %d\n" % len(data) + data) == frames.LogBytes(4, 100, data)
    assert frame_of(b"X 4 1700000000.250 2\n0\n") == frames.ExitFile(4, 1700000000.25, b"0\n")
    assert frame_of(b"R python3 4242 1\n") == frames.Ready("python3", 4242, "1")
    assert frame_of(b"G 9\n") == frames.Gone(9)
    assert frame_of(b"F 12\n") == frames.Flushed(12)
    assert frame_of(b"H\n") == frames.Heartbeat()
    assert frame_of(b"E follower 12: inotify\n") == frames.Notice("follower 12: inotify")


@pytest.mark.parametrize(
    "line",
    [b"bash: python3: command not found\n", b"L 1 2\n", b"L 1 2 x\n", b"X a 1.0 2\n", b"\n"],
)
def test_anything_else_is_not_a_frame(line: bytes) -> None:
    with pytest.raises(frames.FrameError):
        header = frames.parse_header(line)
        frames.make_frame(header, b"..")


def test_the_start_command_prefers_python3_and_falls_back_to_sh() -> None:
    auto = start_command("/r/f.py", "/r/f.sh", "/r", "auto", 0.5)
    assert "python3 -c 'import sys; sys.exit(sys.version_info < (3, 6))'" in auto
    assert "exec python3 -I -S /r/f.py 0.5 2 5 30" in auto
    assert auto.endswith("exec sh /r/f.sh 0.5 10 4 30 /r; }")
    assert "python3" not in start_command("/r/f.py", "/r/f.sh", "/r", "sh", 0.5)
    forced = start_command("/r/f.py", "/r/f.sh", "/r", "python3", 0.5)
    assert "exec sh" not in forced and forced.endswith("exit 1")


def test_launch_answers_and_the_kill_of_every_group() -> None:
    assert launch_answer("3 4711\n") == (3, 4711)
    assert launch_answer("3 !\n") == (3, None)
    assert launch_answer("sh: 1: cannot create /x: Permission denied") is None
    assert kill_command([12, 10, 12], "TERM") == "kill -TERM -- -10 -12 2>/dev/null; true"


async def test_what_is_asked_for_in_the_same_moment_is_one_batch() -> None:
    batches: list[list[int]] = []

    async def run(items: list[int], deliver: Callable[[int, int | Exception], None]) -> None:
        batches.append(items)
        for index, item in enumerate(items):
            deliver(index, LaunchError("odd") if item % 2 else item * 10)

    batcher: Batcher[int, int] = Batcher(run, limit=4)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)), return_exceptions=True)
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [r if isinstance(r, int) else str(r) for r in results] == [
        0, "odd", 20, "odd", 40, "odd", 60, "odd", 80, "odd"
    ]  # fmt: skip
    assert await batcher.submit(6) == 60  # asked for later: a batch of its own
    assert batches[-1] == [6]


async def test_an_unanswered_item_fails_and_a_failing_batch_fails_the_rest() -> None:
    async def half(items: list[str], deliver: Callable[[int, str | Exception], None]) -> None:
        deliver(0, "first")
        if len(items) > 2:
            raise LaunchError("connection refused")

    batcher: Batcher[str, str] = Batcher(half)
    got = await asyncio.gather(batcher.submit("a"), batcher.submit("b"), return_exceptions=True)
    assert got[0] == "first" and "no answer" in str(got[1])
    got = await asyncio.gather(*(batcher.submit(x) for x in "xyz"), return_exceptions=True)
    assert got[0] == "first" and [str(e) for e in got[1:]] == ["connection refused"] * 2
