"""The two follower scripts run here as the host would run them, driven over pipes.

No sshd: what is under test is the scripts' side of the protocol (offsets, the exit
after the log's last byte, a vanished wrapper, flush, drop, the watchdog), read
with ccd's own frame parser.  The batched launch script runs under a real sh too.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ccd.executors.ssh import frames
from ccd.executors.ssh.launch import Start, launch_answer, launch_script
from ccd.executors.wrapper import render_wrapper

REMOTE = Path(__file__).resolve().parents[2] / "ccd" / "executors" / "ssh" / "remote"
#: a frame must come within this; the scripts tick every 0.1 s here
WAIT = 20.0


class Driver:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self.stdin = proc.stdin
        self.stdout = proc.stdout

    def send(self, line: bytes) -> None:
        self.stdin.write(line)

    async def frame(self) -> frames.Frame:
        async with asyncio.timeout(WAIT):
            header = frames.parse_header(await self.stdout.readuntil(b"\n"))
            payload = await self.stdout.readexactly(header.payload) if header.payload else b""
        return frames.make_frame(header, payload)

    async def until(self, kind: type[frames.Frame]) -> list[frames.Frame]:
        """The frames up to and including the first of `kind` (heartbeats left out)."""
        seen: list[frames.Frame] = []
        while True:
            frame = await self.frame()
            if not isinstance(frame, frames.Heartbeat | frames.Notice):
                seen.append(frame)
            if isinstance(frame, kind):
                return seen


@asynccontextmanager
async def follower(kind: str, state: Path, watchdog: int = 30) -> AsyncIterator[Driver]:
    if kind == "python3":
        args = [sys.executable, "-I", "-S", str(REMOTE / "follow.py"), "0.1", "0.3", "0.5"]
        args.append(str(watchdog))
    else:
        args = ["sh", str(REMOTE / "follow.sh"), "0.1", "5", "3", str(watchdog), str(state)]
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    driver = Driver(proc)
    try:
        ready = await driver.frame()
        assert isinstance(ready, frames.Ready) and ready.kind == kind, ready
        assert ready.version == frames.VERSION
        yield driver
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def log_bytes(seen: list[frames.Frame], ident: int) -> bytes:
    return b"".join(f.data for f in seen if isinstance(f, frames.LogBytes) and f.ident == ident)


@pytest.fixture(params=["python3", "sh"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_log_from_the_given_offset_then_the_exit(kind: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "log").write_bytes(b"old\nnew 1\n")
    async with follower(kind, tmp_path) as f:
        f.send(frames.add_command(1, 4, shared=False, pid=0, run_dir=str(run)))
        first = await f.until(frames.LogBytes)
        assert first == [frames.LogBytes(1, 4, b"new 1\n")]
        with (run / "log").open("ab") as out:
            for i in range(2, 6):
                out.write(f"new {i}\n".encode())
                out.flush()
        (run / "exit").write_text("3\n")
        seen = await f.until(frames.ExitFile)
        assert log_bytes(seen, 1) == b"".join(f"new {i}\n".encode() for i in range(2, 6))
        offsets = [fr.offset for fr in seen if isinstance(fr, frames.LogBytes)]
        assert offsets[0] == 10  # each frame says where its bytes start
        end = seen[-1]
        assert isinstance(end, frames.ExitFile) and end.ident == 1
        assert end.text.strip() == b"3"
        assert abs(end.mtime - (run / "exit").stat().st_mtime) < 1.01


async def test_a_log_of_megabytes_arrives_whole_before_the_exit(kind: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    big = b"".join(b"%07d %s\n" % (i, b"x" * 120) for i in range(20000))  # ~2.6 MB
    async with follower(kind, tmp_path) as f:
        f.send(frames.add_command(3, 0, shared=False, pid=0, run_dir=str(run)))
        (run / "log").write_bytes(big)
        (run / "exit").write_text("0\n")
        seen = await f.until(frames.ExitFile)
    assert log_bytes(seen, 3) == big
    assert max(len(fr.data) for fr in seen if isinstance(fr, frames.LogBytes)) <= 1 << 20


async def test_a_wrapper_gone_without_an_exit_file_and_a_flush(kind: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    job = await asyncio.create_subprocess_exec(
        "sh", "-c", f"echo started >> {run}/log; exec sleep 300"
    )
    try:
        async with follower(kind, tmp_path) as f:
            f.send(frames.add_command(5, 0, shared=False, pid=job.pid, run_dir=str(run)))
            f.send(frames.flush_command(77, 5))
            seen = await f.until(frames.Flushed)
            assert seen[-1] == frames.Flushed(77)
            job.send_signal(signal.SIGKILL)
            await job.wait()
            seen += await f.until(frames.Gone)
            assert seen[-1] == frames.Gone(5)
            assert log_bytes(seen, 5) == b"started\n"
    finally:
        if job.returncode is None:
            job.kill()
        await job.wait()


async def test_a_dropped_directory_is_not_followed_and_shared_ones_have_no_exit(
    kind: str, tmp_path: Path
) -> None:
    dropped, shared = tmp_path / "dropped", tmp_path / "shared"
    for run in (dropped, shared):
        run.mkdir()
    async with follower(kind, tmp_path) as f:
        f.send(frames.add_command(1, 0, shared=False, pid=0, run_dir=str(dropped)))
        f.send(frames.add_command(2, 0, shared=True, pid=0, run_dir=str(shared)))
        f.send(frames.drop_command(1))
        f.send(frames.flush_command(8, 2))
        await f.until(frames.Flushed)  # the drop was read before the files appear
        (dropped / "log").write_text("not wanted\n")
        (dropped / "exit").write_text("0\n")
        (shared / "exit").write_text("0\n")  # a requeued Slurm job's old exit file
        (shared / "log").write_text("from a compute node\n")
        seen = await f.until(frames.LogBytes)
        with (shared / "log").open("a") as out:
            out.write("after the exit file\n")
        f.send(frames.flush_command(9, 2))
        seen += await f.until(frames.Flushed)
        assert log_bytes(seen, 2) == b"from a compute node\nafter the exit file\n"
        assert all(getattr(fr, "ident", 2) == 2 for fr in seen), seen
        assert not any(isinstance(fr, frames.ExitFile) for fr in seen)


async def test_the_follower_ends_with_stdin_and_when_ccd_goes_silent(
    kind: str, tmp_path: Path
) -> None:
    async with follower(kind, tmp_path) as f:
        f.stdin.close()
        async with asyncio.timeout(WAIT):
            await f.proc.wait()
    # a connection that died without closing: nothing on stdin for the watchdog's time
    async with follower(kind, tmp_path, watchdog=1) as f:
        async with asyncio.timeout(WAIT):
            await f.proc.wait()
    assert f.proc.returncode is not None
    if kind == "sh":  # its state directory goes with it
        wait_until(lambda: not list(tmp_path.glob("s.*")), "the state directory removed")


def test_the_launch_script_starts_each_wrapper_once_in_its_own_session(tmp_path: Path) -> None:
    starts = []
    for i in range(3):
        run_dir = str(tmp_path / "wf" / f"j{i}" / "1")
        wrapper = render_wrapper(
            run_dir=run_dir, workdir="run", env={}, command=f'echo "it\'s {i}"'
        )
        starts.append(Start(run_dir, wrapper))
    script = launch_script(starts)
    first = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=True)
    answers = answers_of(first.stdout)
    assert sorted(answers) == [0, 1, 2] and None not in answers.values()
    for i, start in enumerate(starts):
        run = Path(start.run_dir)
        wait_for_file(run / "exit")
        assert (run / "log").read_text() == f"it's {i}\n"
        pid = answers[i]
        assert pid is not None and int((run / "pid").read_text()) == pid
    # run again (a retried command): nothing is started twice, the same pids come back
    again = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=True)
    assert answers_of(again.stdout) == answers
    assert all((Path(s.run_dir) / "log").read_text().count("it's") == 1 for s in starts)


def answers_of(stdout: str) -> dict[int, int | None]:
    return dict(answer for line in stdout.splitlines() if (answer := launch_answer(line)))


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {WAIT:g} s"
        time.sleep(0.01)  # another process does it


def wait_for_file(path: Path) -> None:
    wait_until(lambda: path.exists() and path.stat().st_size > 0, f"{path} written")


def test_the_scripts_are_sh_and_python_that_the_host_can_parse() -> None:
    subprocess.run(["sh", "-n", str(REMOTE / "follow.sh")], check=True)
    compile((REMOTE / "follow.py").read_text(), "follow.py", "exec")
