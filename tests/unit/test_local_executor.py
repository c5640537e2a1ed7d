"""The local executor's launch path, with real wrappers run by /bin/sh."""

from __future__ import annotations

import asyncio
import os
import resource
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccd.executors import local
from ccd.executors.base import LaunchRequest
from ccd.executors.filewatch import FileWatcher
from ccd.executors.local import LocalAttempt, LocalExecutor
from ccd.spec.model import Job
from ccd.usage import Usage


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


# -- what a job cost ----------------------------------------------------------------------
#: 200 MiB touched and 0.5 s of CPU (more than this test process holds: see below); the
#: child prints its own CPU seconds and peak RSS
BIG_CHILD = """\
import resource, time
b = bytearray(200 * 2**20)
t = time.process_time()
while time.process_time() - t < 0.5:
    pass
u = resource.getrusage(resource.RUSAGE_SELF)
print(u.ru_utime + u.ru_stime, u.ru_maxrss)
"""


async def test_the_kernel_gives_a_reaped_jobs_cpu_and_peak(
    tmp_path: Path, executor: LocalExecutor
) -> None:
    script = tmp_path / "big.py"
    script.write_text(BIG_CHILD)
    attempt = await executor.launch(request(tmp_path, "j", f"{sys.executable} {script}"))
    _, log = await finish(attempt)
    usage = (await attempt.exited).usage
    cpu, peak = (float(w) for w in log.split())
    assert usage is not None and usage.source == "kernel"
    assert usage.cpu == pytest.approx(cpu, rel=0.1, abs=0.02)
    assert usage.maxrss_kb == pytest.approx(peak, rel=0.1)
    assert usage.maxrss_bound is None  # larger than the daemon: exact
    assert not (attempt.run_dir / "usage").exists()  # nothing written for it


async def test_a_job_smaller_than_the_daemon_has_only_a_bound(
    tmp_path: Path, executor: LocalExecutor
) -> None:
    # the spawned wrapper starts with this process's high-water mark as its own peak
    attempt = await executor.launch(request(tmp_path, "j", "true"))
    await finish(attempt)
    usage = (await attempt.exited).usage
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert usage is not None and usage.maxrss_bound is True
    assert usage.maxrss_kb is not None and usage.maxrss_kb <= own + local.INHERITED_SLACK_KB


async def test_an_adopted_attempt_takes_the_figures_its_wrapper_wrote(
    tmp_path: Path, executor: LocalExecutor
) -> None:
    first = await executor.launch(request(tmp_path, "j", "exit 0"))
    await finish(first)
    # as an orphaned wrapper writes them (the daemon that spawned it was gone)
    (first.run_dir / "usage").write_text("utime=1.5 stime=0.5 maxrss_kb=4096 node=here\n")
    status = await (await executor.adopt(first.handle)).exited
    assert status.usage == Usage(cpu_user=1.5, cpu_sys=0.5, maxrss_kb=4096, node="here")


async def test_a_wrapper_writing_its_figures_is_still_the_wrapper(
    tmp_path: Path, executor: LocalExecutor
) -> None:
    """A new daemon adopting an orphaned wrapper that has already exec'd python3 to
    measure the job (its command line is no longer `sh wrapper.sh`) follows it to its
    exit file; it is not taken for a stranger that reused the pid."""
    run_dir = tmp_path / "runs" / "wf" / "j" / "1"
    run_dir.mkdir(parents=True)
    (run_dir / "wrapper.sh").write_text("")
    # a stand-in for the measuring step: the run dir and the code as its arguments
    code = "import sys, time; time.sleep(0.3); open(sys.argv[1] + '/exit', 'w').write('0\\n')"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, str(run_dir), "0")
    handle = {"executor": "local", "run_dir": str(run_dir), "pid": proc.pid}
    status = await (await executor.adopt(handle)).exited
    await proc.wait()
    assert (status.exit_code, status.reason) == (0, None)
    # while this test process, which names neither, is no wrapper of that run
    table = executor._processes
    assert not table.runs(os.getpid(), run_dir / "wrapper.sh")
    assert not table.runs(os.getpid(), run_dir)
