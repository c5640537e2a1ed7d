"""The local executor's launch path, with real wrappers run by /bin/sh."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccd.executors import local
from ccd.executors.base import LaunchRequest
from ccd.executors.filewatch import FileWatcher
from ccd.executors.local import LocalAttempt, LocalExecutor
from ccd.spec.model import Job


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[LocalExecutor]:
    watcher = FileWatcher()
    watcher.start()
    yield LocalExecutor(tmp_path / "runs", watcher)
    await watcher.close()


def request(tmp_path: Path, name: str, command: str) -> LaunchRequest:
    return LaunchRequest("wf", Job(name=name, run=command, workdir=str(tmp_path)), 1, command)


async def finish(attempt: LocalAttempt) -> tuple[int | None, bytes]:
    log = b"".join([chunk async for chunk in attempt.log_chunks()])
    return (await attempt.exited).exit_code, log


async def test_a_job_s_log_exit_code_and_run_directory(
    tmp_path: Path, executor: LocalExecutor
) -> None:
    attempt = await executor.launch(request(tmp_path, "j", "echo hi; echo err >&2; exit 3"))
    assert await finish(attempt) == (3, b"hi\nerr\n")
    assert attempt.run_dir == tmp_path / "runs" / "wf" / "j" / "1"
    assert sorted(p.name for p in attempt.run_dir.iterdir()) == ["exit", "log", "pid", "wrapper.sh"]


async def test_a_silent_job_still_has_a_log(tmp_path: Path, executor: LocalExecutor) -> None:
    attempt = await executor.launch(request(tmp_path, "j", "true"))
    assert await finish(attempt) == (0, b"")
    assert (attempt.run_dir / "log").read_bytes() == b""  # created by the wrapper


async def test_a_burst_of_launches_lets_the_loop_go_round_between_slices(
    tmp_path: Path, executor: LocalExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "LAUNCH_SLICE", 0.0)  # every slice ends after one launch
    rounds = 0
    launched_in: list[int] = []
    spawn = local._prepare_and_spawn

    def counted(run_dir: Path, script: str, env: dict[str, str]) -> int:
        launched_in.append(rounds)
        return spawn(run_dir, script, env)

    async def count_rounds() -> None:
        nonlocal rounds
        while True:
            await asyncio.sleep(0)
            rounds += 1

    monkeypatch.setattr(local, "_prepare_and_spawn", counted)
    counter = asyncio.create_task(count_rounds())
    attempts = await asyncio.gather(
        *(executor.launch(request(tmp_path, f"j{i}", "true")) for i in range(4))
    )
    counter.cancel()
    assert len(set(launched_in)) == 4  # one launch per round of the loop
    assert [await finish(a) for a in attempts] == [(0, b"")] * 4


async def test_adopting_an_ended_attempt_gives_its_exit_file_s_time(
    tmp_path: Path, executor: LocalExecutor
) -> None:
    first = await executor.launch(request(tmp_path, "j", "exit 4"))
    await finish(first)
    exit_file = first.run_dir / "exit"
    os.utime(exit_file, (1_700_000_000.0, 1_700_000_000.0))  # it ended long ago
    adopted = await executor.adopt(first.handle)
    status = await adopted.exited
    assert (status.exit_code, status.ended) == (4, 1_700_000_000.0)
