"""The real `Engine` on a real `Store`, in process, with scripted attempts.

Each test submits a workflow written as YAML, lets `FakeExecutor` play its
attempts (exit, print markers, hang, fail to launch), and reads back what the
store recorded.  Waits are on the store's commits or the executor's futures,
never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ccd.config import DaemonConfig, HostConfig
from ccd.engine import Engine, Outcome
from ccd.engine import attempt as attempt_module
from ccd.engine.outcome import outcome_of, retry_delay, why
from ccd.errors import Conflict, NotFound
from ccd.executors.base import ExitStatus
from ccd.spec.model import ExecutorKind, Workflow
from ccd.spec.validate import load_workflow_text
from ccd.states import JobState
from ccd.store import Store
from tests.unit.fake_executor import FakeExecutor, Script, exits, hangs, launch_fails
from tests.unit.shell_words import evaluated

J = JobState
#: seconds a test waits for what takes milliseconds
WAIT = 5.0
_T = TypeVar("_T")


@dataclass
class Bed:
    """A store, a fake executor and the engines driving them (a restart adds one)."""

    tmp_path: Path
    store: Store
    executor: FakeExecutor
    config: DaemonConfig
    engines: list[Engine] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.engines[-1]

    def new_engine(self, config: DaemonConfig | None = None) -> Engine:
        if config is not None:
            self.config = config
        engine = Engine(self.store, self.config, {ExecutorKind.LOCAL: self.executor})
        self.engines.append(engine)
        return engine

    async def restart(self) -> int:
        """Stop the engine as a daemon shutdown does; a new one recovers. How many it resumed."""
        await self.engine.close()
        return await self.new_engine().recover()

    def spec(self, text: str) -> Workflow:
        return load_workflow_text(textwrap.dedent(text), base_dir=self.tmp_path)

    async def submit(self, text: str) -> str:
        return await self.engine.submit(self.spec(text))

    async def until(self, check: Callable[[], Awaitable[_T | None]]) -> _T:
        """`check()`'s first truthy answer, asked again after every commit."""
        async with asyncio.timeout(WAIT):
            while True:
                seen = self.store.last_seq
                answer = await check()
                if answer:
                    return answer
                await self.store.wait_for_seq(seen)

    async def final(self, wf: str) -> dict[str, Any]:
        async def finished() -> dict[str, Any] | None:
            row = await self.store.find_workflow(wf)
            return row if row is not None and row["state"] != "running" else None

        row = await self.until(finished)
        # the engine lets go of the run as its task ends, just after the final state
        # commits: a retry or cancel right away must find it gone
        driving = [t for t in asyncio.all_tasks() if t.get_name() == f"workflow {wf}"]
        if driving:
            await asyncio.wait(driving, timeout=WAIT)
        assert not self.engine.is_running(wf)
        return row

    async def job_reaches(self, wf: str, job: str, state: JobState) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            row = await self.store.get_job(wf, job)
            return row if row is not None and row["state"] == state else None

        return await self.until(reached)

    async def jobs(self, wf: str) -> dict[str, dict[str, Any]]:
        await self.store.flush()
        return {row["name"]: row for row in await self.store.get_jobs(wf)}

    async def events(self, wf: str, kind: str | None = None) -> list[dict[str, Any]]:
        await self.store.flush()
        events = [json.loads(text) for _, text in await self.store.events_json(wf, 0, 100_000)]
        return [e for e in events if kind is None or e["kind"] == kind]

    async def states(self, wf: str, job: str) -> list[tuple[str, str | None]]:
        """The job's recorded (state, reason) changes, in order."""
        return [
            (e["data"]["state"], e["data"].get("reason"))
            for e in await self.events(wf, "job.state")
            if e["job"] == job
        ]


@pytest.fixture
async def bed(tmp_path: Path) -> AsyncIterator[Bed]:
    # no fsync per commit: these tests are about the engine, not durability
    store = await Store.open(tmp_path / "ccd.db", synchronous="OFF")
    bed = Bed(tmp_path, store, FakeExecutor(), DaemonConfig(state_dir=tmp_path, kill_grace=0.5))
    bed.new_engine()
    try:
        yield bed
    finally:
        for engine in bed.engines:
            await engine.close()
        await store.close()


def launches(bed: Bed, job: str | None = None) -> list[tuple[str, int]]:
    return [(c.job, c.attempt) for c in bed.executor.calls_of("launch", job)]


# -- the pure verdicts ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "last_line", "outcome"),
    [
        (ExitStatus(0, 1.0), "done", Outcome(J.SUCCEEDED, None, 0, 1.0)),
        (ExitStatus(3, 1.0), None, Outcome(J.FAILED, "exit 3", 3, 1.0)),
        (ExitStatus(3, 1.0), "no GPU", Outcome(J.FAILED, "exit 3: no GPU", 3, 1.0)),
        (ExitStatus(137, 1.0), "x", Outcome(J.FAILED, "terminated by SIGKILL", 137, 1.0)),
        (ExitStatus(None, 1.0), "x", Outcome(J.FAILED, "lost", None, 1.0)),
        (
            ExitStatus(None, 1.0, reason="killed by SIGTERM"),
            None,
            Outcome(J.FAILED, "killed by SIGTERM", None, 1.0),
        ),
        (ExitStatus(0, 1.0, "oom", J.FAILED), "x", Outcome(J.FAILED, "oom", 0, 1.0)),
        (ExitStatus(2, 1.0, None, J.FAILED), "bad", Outcome(J.FAILED, "exit 2: bad", 2, 1.0)),
        (
            ExitStatus(None, 1.0, "timeout", J.TIMED_OUT),
            "x",
            Outcome(J.TIMED_OUT, "timeout", None, 1.0),
        ),
    ],
)
def test_exit_status_to_outcome(
    status: ExitStatus, last_line: str | None, outcome: Outcome
) -> None:
    assert outcome_of(status, last_line) == outcome


@pytest.mark.parametrize(
    ("outcome", "text"),
    [
        (Outcome(J.FAILED, "oom", 0), "oom"),
        (Outcome(J.FAILED, None, 3), "exit code 3"),
        (Outcome(J.FAILED, None, 143), "exit code 143 (SIGTERM)"),
        (Outcome(J.TIMED_OUT), "timed_out"),
    ],
)
def test_why_an_attempt_did_not_succeed(outcome: Outcome, text: str) -> None:
    assert why(outcome) == text


def test_retry_delay_backs_off_and_stops(tmp_path: Path) -> None:
    spec = load_workflow_text(
        "jobs:\n  j: {run: x, retries: 3, retry_delay: 2, retry_backoff: 3, retry_on: [exit]}\n",
        base_dir=tmp_path,
    )
    job = spec.jobs["j"]
    failed = Outcome(J.FAILED, None, 1)
    assert [retry_delay(job, n, failed) for n in (1, 2, 3, 4)] == [2, 6, 18, None]
    assert retry_delay(job, 1, Outcome(J.TIMED_OUT)) is None  # not in retry_on
    assert retry_delay(job, 1, Outcome(J.SUCCEEDED, None, 0)) is None


# -- running a DAG --------------------------------------------------------------------
async def test_chain_runs_in_order_and_records_each_step(bed: Bed) -> None:
    wf = await bed.submit("""
        name: chain
        jobs:
          a: {run: "true"}
          b: {needs: [a], run: "true"}
          c: {needs: [b], run: "true"}
    """)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert launches(bed) == [("a", 1), ("b", 1), ("c", 1)]
    assert await bed.states(wf, "b") == [("queued", None), ("running", None), ("succeeded", None)]
    jobs = await bed.jobs(wf)
    assert all((j["exit_code"], j["attempt"]) == (0, 1) for j in jobs.values())
    assert jobs["a"]["handle"] == {"executor": "fake", "job": "a", "attempt": 1}


async def test_failure_skips_descendants_and_the_other_branch_finishes(bed: Bed) -> None:
    bed.executor.set("bad", exits(3))
    wf = await bed.submit("""
        jobs:
          bad: {run: "exit 3"}
          child: {needs: [bad], run: "true"}
          grandchild: {needs: [child], run: "true"}
          great-grandchild: {needs: [grandchild], run: "true"}
          good: {run: "true"}
          after-good: {needs: [good], run: "true"}
    """)
    assert (await bed.final(wf))["state"] == "failed"
    jobs = await bed.jobs(wf)
    assert (jobs["bad"]["state"], jobs["bad"]["exit_code"], jobs["bad"]["reason"]) == (
        "failed",
        3,
        "exit 3",  # it printed nothing
    )
    assert (jobs["child"]["state"], jobs["child"]["reason"]) == ("skipped", "ancestor 'bad' failed")
    # the root cause, not the parent, is named down the line
    assert jobs["grandchild"]["reason"] == jobs["great-grandchild"]["reason"]
    assert jobs["great-grandchild"]["reason"] == "ancestor 'bad' failed"
    assert jobs["after-good"]["state"] == "succeeded"
    assert {job for job, _ in launches(bed)} == {"bad", "good", "after-good"}


async def test_a_timed_out_ancestor_is_named_as_such(bed: Bed) -> None:
    bed.executor.set("slow", hangs())
    wf = await bed.submit("""
        jobs:
          slow: {run: "sleep 60", timeout: 0.01}
          child: {needs: [slow], run: "true"}
          grandchild: {needs: [child], run: "true"}
    """)
    await bed.final(wf)
    jobs = await bed.jobs(wf)
    assert jobs["slow"]["state"] == "timed_out"
    assert jobs["child"]["reason"] == jobs["grandchild"]["reason"] == "ancestor 'slow' timed out"


async def test_an_executor_bug_fails_only_that_job(bed: Bed) -> None:
    bed.executor.set("bad", Script(crash=RuntimeError("boom")))
    wf = await bed.submit("""
        jobs:
          bad: {run: "true"}
          child: {needs: [bad], run: "true"}
          fine: {run: "true"}
    """)
    row = await bed.final(wf)
    jobs = await bed.jobs(wf)
    assert (jobs["bad"]["state"], jobs["bad"]["reason"]) == (
        "failed",
        "internal error: RuntimeError('boom')",
    )
    assert jobs["child"]["state"] == "skipped"
    assert jobs["fine"]["state"] == "succeeded"
    # the workflow ran to its end: it did not crash as a whole
    assert row["state"] == "failed"
    workflow_reasons = [e["data"].get("reason") for e in await bed.events(wf, "workflow.state")]
    assert "internal error; see the daemon log" not in workflow_reasons


async def test_a_launch_error_fails_the_attempt_with_its_message(bed: Bed) -> None:
    bed.executor.set("j", launch_fails("cannot start the job on localhost: ENOSPC"), exits(0))
    wf = await bed.submit("jobs:\n  j: {run: 'true', retries: 1, retry_delay: 0.01}\n")
    assert (await bed.final(wf))["state"] == "succeeded"
    assert await bed.states(wf, "j") == [
        ("queued", None),
        ("queued", "cannot start the job on localhost: ENOSPC; retry 1/1 in 0.01s"),
        ("running", None),
        ("succeeded", None),
    ]


# -- retries --------------------------------------------------------------------------
async def test_retries_with_backoff_until_success(bed: Bed) -> None:
    bed.executor.set("flaky", exits(4), exits(137), exits(0, "attempt 3"))
    wf = await bed.submit("""
        jobs:
          flaky: {run: "x", retries: 3, retry_delay: 0.01, retry_backoff: 2}
    """)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert await bed.states(wf, "flaky") == [
        ("queued", None),
        ("running", None),
        ("queued", "exit 4; retry 1/3 in 0.01s"),
        ("running", None),
        ("queued", "terminated by SIGKILL; retry 2/3 in 0.02s"),
        ("running", None),
        ("succeeded", None),
    ]
    launched = [e["data"] for e in await bed.events(wf, "job.state") if "handle" in e["data"]]
    # each launch records its handle; each queued state before one forgets the last
    assert [(d["state"], d["attempt"], d["handle"] is None) for d in launched] == [
        ("queued", 0, True),
        ("running", 1, False),
        ("queued", 1, True),
        ("running", 2, False),
        ("queued", 2, True),
        ("running", 3, False),
    ]
    assert launches(bed) == [("flaky", 1), ("flaky", 2), ("flaky", 3)]
    assert (await bed.jobs(wf))["flaky"]["attempt"] == 3


async def test_retries_exhausted(bed: Bed) -> None:
    bed.executor.set("j", exits(2))
    wf = await bed.submit("jobs:\n  j: {run: 'exit 2', retries: 1, retry_delay: 0.01}\n")
    await bed.final(wf)
    job = (await bed.jobs(wf))["j"]
    assert (job["state"], job["attempt"], job["exit_code"]) == ("failed", 2, 2)
    assert launches(bed) == [("j", 1), ("j", 2)]


@pytest.mark.parametrize(
    ("first", "retry_on", "retried"),
    [
        (exits(1), "[timeout]", False),
        (exits(1), "[exit]", True),
        (Script(status=ExitStatus(None, 0.0, reason="lost")), "[lost]", True),
        (Script(status=ExitStatus(None, 0.0, reason="lost")), "[exit]", False),
        (Script(status=ExitStatus(0, 0.0, "oom", J.FAILED)), "[oom, node_fail]", True),
        (Script(status=ExitStatus(0, 0.0, "oom", J.FAILED)), "[exit]", False),
        (Script(status=ExitStatus(None, 0.0, "preempted", J.FAILED)), "[preempted]", True),
        (hangs(), "[timeout]", True),
        (hangs(), "[exit, lost]", False),
    ],
)
async def test_retry_on_retries_only_the_listed_failures(
    bed: Bed, first: Script, retry_on: str, retried: bool
) -> None:
    bed.executor.set("j", first, exits(0))
    wf = await bed.submit(f"""
        jobs:
          j: {{run: x, retries: 2, retry_delay: 0.01, timeout: 0.02, retry_on: {retry_on}}}
    """)
    row = await bed.final(wf)
    assert (row["state"], len(launches(bed))) == (("succeeded", 2) if retried else ("failed", 1))


async def test_a_failed_job_says_its_exit_code_and_last_log_line(bed: Bed) -> None:
    last = "ValueError: " + "x" * 500
    bed.executor.set(
        "train",
        exits(3, "epoch 1", "Traceback (most recent call last):", last, "", "::ccd progress=10"),
        exits(3, "  CUDA out of memory  ", "# cloudmesh status=running progress=50", "   "),
    )
    wf = await bed.submit("jobs:\n  train: {run: x, retries: 1, retry_delay: 0.01}\n")
    await bed.final(wf)
    job = (await bed.jobs(wf))["train"]
    assert (job["state"], job["exit_code"], job["reason"]) == (
        "failed",
        3,
        "exit 3: CUDA out of memory",
    )
    # markers and blank lines are not the last line; a long one is cut to one bounded line
    retry = [r for s, r in await bed.states(wf, "train") if s == "queued" and r]
    assert retry == ["exit 3: ValueError: " + "x" * 187 + "…; retry 1/1 in 0.01s"]


# -- timeouts -------------------------------------------------------------------------
async def test_timeout_kills_the_attempt_with_the_configured_grace(bed: Bed) -> None:
    bed.executor.set("slow", hangs("started"))
    wf = await bed.submit("jobs:\n  slow: {run: 'sleep 300', timeout: 0.02}\n")
    await bed.final(wf)
    job = (await bed.jobs(wf))["slow"]
    assert (job["state"], job["reason"]) == ("timed_out", "timed out after 0.02s")
    [kill] = bed.executor.calls_of("kill")
    assert (kill.job, kill.attempt, kill.grace) == ("slow", 1, 0.5)


async def test_a_batch_system_enforces_its_own_timeout(bed: Bed) -> None:
    bed.executor.set("batch", Script(exit_code=None, enforces_timeout=True))
    bed.executor.set("local", hangs())
    wf = await bed.submit("""
        jobs:
          batch: {run: x, timeout: 0.01}
          local: {run: x, timeout: 0.03}
    """)
    await bed.job_reaches(wf, "local", J.TIMED_OUT)
    # the engine's timer for `batch` would have fired before the one for `local`
    assert [c.job for c in bed.executor.calls_of("kill")] == ["local"]
    batch = await bed.executor.launched("batch")
    batch.end(ExitStatus(None, time.time(), "timeout", J.TIMED_OUT))
    await bed.final(wf)
    assert (await bed.jobs(wf))["batch"]["state"] == "timed_out"


# -- what the attempt says -----------------------------------------------------------
async def test_outputs_reach_the_childs_command_and_environment(bed: Bed) -> None:
    bed.executor.set(
        "train",
        exits(0, "::ccd output acc=0.93", '::ccd output note="semi; colon $(touch x)"'),
    )
    wf = await bed.submit("""
        jobs:
          train: {run: "python train.py"}
          report:
            needs: [train]
            env: {ACC: "acc=${{ jobs.train.outputs.acc }}"}
            run: 'echo "${{ jobs.train.outputs.note }}"'
    """)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert (await bed.jobs(wf))["train"]["outputs"] == {
        "acc": "0.93",
        "note": "semi; colon $(touch x)",
    }
    [request] = [r for r in bed.executor.requests if r.job.name == "report"]
    # in the command an output is a variable reference, never shell text
    assert request.command == 'echo "${CCD_OUTPUT_TRAIN_NOTE}"'
    assert request.env["CCD_OUTPUT_TRAIN_NOTE"] == "semi; colon $(touch x)"
    assert request.env["CCD_OUTPUT_TRAIN_ACC"] == "0.93"  # every output of a parent
    assert evaluated(request.exports["ACC"]) == "acc=0.93"
    assert (request.env["CCD_JOB"], request.env["CCD_ATTEMPT"]) == ("report", "1")


async def test_outputs_of_any_ancestor_but_no_other_job(bed: Bed) -> None:
    bed.executor.set("a", exits(0, "::ccd output v=1"))
    bed.executor.set("side", exits(0, "::ccd output v=2"))
    wf = await bed.submit("""
        jobs:
          a: {run: x}
          side: {run: x}
          b: {needs: [a], run: x}
          c: {needs: [b, side], run: 'echo ${{ jobs.a.outputs.v }}'}
          d: {needs: [c], run: 'echo ${{ jobs.side.outputs.v }}'}
          f: {needs: [a], run: 'echo ${{ jobs.a.outputs.nothing }}'}
    """)
    await bed.final(wf)
    jobs = await bed.jobs(wf)
    assert jobs["c"]["state"] == jobs["d"]["state"] == "succeeded"
    requests = {r.job.name: r for r in bed.executor.requests}
    assert (requests["c"].command, requests["c"].env["CCD_OUTPUT_A_V"]) == (
        "echo ${CCD_OUTPUT_A_V}",
        "1",
    )
    assert requests["d"].env["CCD_OUTPUT_SIDE_V"] == "2"  # side is d's grandparent
    assert jobs["f"]["state"] == "failed"
    assert "job 'a' set no output 'nothing'" in jobs["f"]["reason"]
    # (a non-ancestor's output is a validation error, caught before the engine runs)
    assert "f" not in requests


async def test_markers_become_progress_and_warnings(bed: Bed) -> None:
    bed.executor.set(
        "m",
        exits(
            0,
            '::ccd progress=10 msg="epoch 1/10"',
            "# cloudmesh status=running progress=55 pid=42",
            "::ccd progress=abc",
            "plain line",
        ),
    )
    bed.executor.set("r", exits(0, *(f"Epoch {i}/4" for i in (1, 2, 3))))
    wf = await bed.submit("""
        jobs:
          m: {run: x}
          r: {run: x, progress_regex: 'Epoch (?P<progress>\\d)/4'}
    """)
    await bed.final(wf)
    jobs = await bed.jobs(wf)
    assert jobs["m"]["progress"] == 55
    progress = [
        (e["data"]["progress"], e["data"].get("message"))
        for e in await bed.events(wf, "job.progress")
        if e["job"] == "m"
    ]
    assert progress[0] == (10, "epoch 1/10") and progress[-1][0] == 55
    assert jobs["r"]["progress"] == 3
    [warning] = await bed.events(wf, "job.warning")
    assert warning["job"] == "m" and "abc" in warning["data"]["message"]


async def test_marker_warnings_beyond_the_cap_are_counted_once(bed: Bed) -> None:
    cap = attempt_module.MAX_WARNINGS
    bed.executor.set("m", exits(0, *["::ccd progress=abc"] * (cap + 5)))
    wf = await bed.submit("jobs:\n  m: {run: x}\n")
    await bed.final(wf)
    messages = [e["data"]["message"] for e in await bed.events(wf, "job.warning")]
    assert len(messages) == cap + 1
    assert messages[-1] == "more marker warnings in this attempt are not recorded"


async def test_executor_reports_queued_running_unreachable(bed: Bed) -> None:
    bed.executor.set(
        "b",
        Script(
            launched_state=J.QUEUED,
            states=(
                (J.QUEUED, "Priority"),
                (J.RUNNING, None),
                (J.UNREACHABLE, "host 'h' does not answer"),
                (J.RUNNING, None),
            ),
            exit_code=None,
        ),
    )
    wf = await bed.submit("jobs:\n  b: {run: x}\n")
    attempt = await bed.executor.launched("b")
    await bed.job_reaches(wf, "b", J.RUNNING)
    attempt.warn("squeue did not answer")
    attempt.finish(0)
    await bed.final(wf)
    assert await bed.states(wf, "b") == [
        ("queued", None),
        ("queued", "submitted"),
        ("queued", "Priority"),  # the same state, a new reason: shown
        ("running", None),
        ("unreachable", "host 'h' does not answer"),
        ("running", None),
        ("succeeded", None),
    ]
    [warning] = await bed.events(wf, "job.warning")
    assert warning["data"]["message"] == "squeue did not answer"


# -- limits ---------------------------------------------------------------------------
async def test_the_workflow_concurrency_limit_holds(bed: Bed) -> None:
    names = [f"j{i}" for i in range(5)]
    for name in names:
        bed.executor.set(name, hangs())
    jobs = "".join(f"\n  {name}: {{run: x}}" for name in names)
    wf = await bed.submit(f"concurrency: 2\njobs:{jobs}\n")
    for step, name in enumerate(names):
        attempt = await bed.executor.launched(name)

        async def settled(step: int = step) -> bool:
            states = [j["state"] for j in (await bed.jobs(wf)).values()]
            return states.count("running") == min(2, len(names) - step)

        # the oldest two run, the rest wait in `queued` until one of them ends
        await bed.until(settled)
        attempt.finish(0)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert bed.executor.running.peak == 2
    assert launches(bed) == [(name, 1) for name in names]


async def test_the_daemon_wide_and_host_limits_hold_across_workflows(bed: Bed) -> None:
    config = DaemonConfig(state_dir=bed.tmp_path, max_jobs=1, hosts={"localhost": HostConfig()})
    await bed.engine.close()
    bed.new_engine(config)
    bed.executor.set("first", hangs())
    one = await bed.submit("jobs:\n  first: {run: x}\n")
    two = await bed.submit("jobs:\n  second: {run: x}\n")
    first = await bed.executor.launched("first")
    await bed.job_reaches(two, "second", J.QUEUED)
    assert launches(bed) == [("first", 1)]
    first.finish(0)
    await bed.final(two)
    assert (await bed.final(one))["state"] == "succeeded"
    assert bed.executor.running.peak == 1


# -- cancel ---------------------------------------------------------------------------
async def test_cancel_a_running_job_cancels_its_descendants_only(bed: Bed) -> None:
    bed.executor.set("stuck", hangs())
    wf = await bed.submit("""
        jobs:
          stuck: {run: "sleep 300"}
          after: {needs: [stuck], run: "true"}
          fine: {run: "true"}
    """)
    await bed.executor.launched("stuck")
    bed.engine.cancel(wf, "stuck")
    assert (await bed.final(wf))["state"] == "cancelled"
    jobs = await bed.jobs(wf)
    assert (jobs["stuck"]["state"], jobs["stuck"]["reason"]) == ("cancelled", "cancelled by user")
    assert (jobs["after"]["state"], jobs["after"]["reason"]) == (
        "cancelled",
        "ancestor 'stuck' was cancelled",
    )
    assert jobs["fine"]["state"] == "succeeded"
    [kill] = bed.executor.calls_of("kill")
    assert (kill.job, kill.grace) == ("stuck", 0.5)
    assert not launches(bed, "after")


async def test_cancel_a_job_still_waiting_for_its_parents(bed: Bed) -> None:
    bed.executor.set("stuck", hangs())
    wf = await bed.submit("""
        jobs:
          stuck: {run: "sleep 300"}
          waiting: {needs: [stuck], run: "true"}
          grandchild: {needs: [waiting], run: "true"}
    """)
    await bed.executor.launched("stuck")
    bed.engine.cancel(wf, "waiting")
    await bed.job_reaches(wf, "grandchild", J.CANCELLED)
    jobs = await bed.jobs(wf)
    assert jobs["stuck"]["state"] == "running"
    assert (jobs["waiting"]["state"], jobs["waiting"]["reason"]) == (
        "cancelled",
        "cancelled by user",
    )
    assert jobs["grandchild"]["reason"] == "ancestor 'waiting' was cancelled"
    assert not bed.executor.calls_of("kill")
    bed.engine.cancel(wf)
    assert (await bed.final(wf))["state"] == "cancelled"
    assert (await bed.jobs(wf))["stuck"]["reason"] == "workflow cancelled"


async def test_cancel_a_workflow_with_waiting_queued_and_running_jobs(bed: Bed) -> None:
    bed.executor.set("running", hangs())
    wf = await bed.submit("""
        concurrency: 1
        jobs:
          running: {run: x}
          queued: {run: x}
          waiting: {needs: [running], run: x}
    """)
    await bed.executor.launched("running")
    await bed.job_reaches(wf, "queued", J.QUEUED)
    bed.engine.cancel(wf)
    assert (await bed.final(wf))["state"] == "cancelled"
    jobs = await bed.jobs(wf)
    assert {n: (j["state"], j["reason"]) for n, j in jobs.items()} == {
        name: ("cancelled", "workflow cancelled") for name in ("running", "queued", "waiting")
    }
    assert launches(bed) == [("running", 1)]
    assert [c.job for c in bed.executor.calls_of("kill")] == ["running"]


async def test_cancel_while_the_host_is_not_ready_launches_nothing(bed: Bed) -> None:
    bed.executor.ready_gate = asyncio.Event()
    wf = await bed.submit("jobs:\n  j: {run: x}\n  k: {needs: [j], run: x}\n")
    await bed.job_reaches(wf, "j", J.QUEUED)
    bed.engine.cancel(wf, "j")
    await bed.final(wf)
    assert (await bed.jobs(wf))["j"]["reason"] == "cancelled by user"
    assert bed.executor.calls_of("ready") and not launches(bed)


async def test_cancel_errors(bed: Bed) -> None:
    bed.executor.set("j", hangs())
    wf = await bed.submit("jobs:\n  j: {run: x}\n")
    await bed.executor.launched("j")
    with pytest.raises(NotFound, match="has no job 'nope'"):
        bed.engine.cancel(wf, "nope")
    bed.engine.cancel(wf)
    await bed.final(wf)
    with pytest.raises(Conflict, match="is not running"):
        bed.engine.cancel(wf)


@pytest.mark.parametrize("job", [None, "a"])
async def test_cancel_in_the_round_of_the_submit(bed: Bed, job: str | None) -> None:
    # before the run's task has begun: nothing may be left waiting for ever
    wf = await bed.submit("jobs:\n  a: {run: x}\n  b: {needs: [a], run: x}\n  c: {run: x}\n")
    bed.engine.cancel(wf, job)
    row = await bed.final(wf)
    jobs = await bed.jobs(wf)
    if job is None:
        assert row["state"] == "cancelled" and not launches(bed)
        assert {j["state"] for j in jobs.values()} == {"cancelled"}
    else:
        assert (jobs["a"]["reason"], jobs["b"]["reason"]) == (
            "cancelled by user",
            "ancestor 'a' was cancelled",
        )
        assert jobs["c"]["state"] == "succeeded" and launches(bed) == [("c", 1)]


# -- workflow retry -------------------------------------------------------------------
async def test_workflow_retry_reruns_only_what_did_not_succeed(bed: Bed) -> None:
    bed.executor.set("ok", exits(0, "::ccd output k=v1"))
    bed.executor.set("flag", exits(1), exits(0))
    bed.executor.set("slow", hangs(), exits(0))
    wf = await bed.submit("""
        jobs:
          ok: {run: x}
          flag: {needs: [ok], run: 'test ${{ jobs.ok.outputs.k }}'}
          after: {needs: [flag], run: x}
          slow: {run: x, timeout: 0.01}
    """)
    assert (await bed.final(wf))["state"] == "failed"
    assert (await bed.jobs(wf))["after"]["state"] == "skipped"
    again = await bed.engine.retry(wf)
    assert sorted(again) == ["after", "flag", "slow"]
    assert (await bed.final(wf))["state"] == "succeeded"
    jobs = await bed.jobs(wf)
    assert {n: j["attempt"] for n, j in jobs.items()} == {"ok": 1, "flag": 2, "after": 1, "slow": 2}
    assert launches(bed, "ok") == [("ok", 1)]
    # the kept job's outputs come from the store
    second = [r for r in bed.executor.requests if r.job.name == "flag"][-1]
    assert second.env["CCD_OUTPUT_OK_K"] == "v1"
    assert ("pending", "retry") in await bed.states(wf, "after")
    with pytest.raises(Conflict, match="no failed, cancelled or skipped jobs"):
        await bed.engine.retry(wf)


async def test_retry_of_a_running_or_unknown_workflow_is_refused(bed: Bed) -> None:
    bed.executor.set("j", hangs())
    wf = await bed.submit("jobs:\n  j: {run: x}\n")
    with pytest.raises(Conflict, match="still running"):
        await bed.engine.retry(wf)
    with pytest.raises(NotFound):
        await bed.engine.retry("00000000")


# -- recovery -------------------------------------------------------------------------
async def test_a_new_engine_adopts_a_running_job(bed: Bed) -> None:
    bed.executor.set("wait", hangs("::ccd progress=50"))
    wf = await bed.submit("jobs:\n  wait: {run: x}\n  then: {needs: [wait], run: x}\n")
    attempt = await bed.executor.launched("wait")
    assert (await bed.job_reaches(wf, "wait", J.RUNNING))["attempt"] == 1
    assert await bed.restart() == 1
    assert await bed.executor.adopted("wait") is attempt
    assert not bed.executor.calls_of("kill")
    attempt.finish(7)
    await bed.final(wf)
    jobs = await bed.jobs(wf)
    assert (jobs["wait"]["state"], jobs["wait"]["exit_code"], jobs["wait"]["attempt"]) == (
        "failed",
        7,
        1,
    )
    assert launches(bed) == [("wait", 1)]
    reasons = [e["data"].get("reason") for e in await bed.events(wf, "workflow.state")]
    assert (
        "resumed by a new daemon: 1 launched job(s) followed again, 1 still to start or check"
        in reasons
    )


async def test_an_adopted_attempt_ended_when_its_exit_file_says(bed: Bed) -> None:
    bed.executor.set("wait", hangs("working", "gave up"))
    wf = await bed.submit("jobs:\n  wait: {run: x}\n")
    attempt = await bed.executor.launched("wait")
    started = (await bed.job_reaches(wf, "wait", J.RUNNING))["started"]
    await bed.engine.close()
    # the attempt ends while no daemon runs (as soon as it started, by its exit file),
    # and the next daemon learns of it later
    attempt.end(ExitStatus(exit_code=2, ended=started))
    await bed.new_engine().recover()
    await bed.final(wf)
    job = (await bed.jobs(wf))["wait"]
    assert (job["state"], job["exit_code"], job["reason"]) == ("failed", 2, "exit 2: gave up")
    [final] = [e for e in await bed.events(wf, "job.state") if e["data"]["state"] == "failed"]
    assert job["ended"] == final["data"]["ended"] == started < final["time"]


async def test_an_attempt_started_but_not_recorded_is_adopted_not_launched_again(
    bed: Bed,
) -> None:
    # the daemon dies inside `launch`: the attempt runs, its running event never came
    bed.executor.set("only", Script(exit_code=None, launch_hangs=True))
    wf = await bed.submit("jobs:\n  only: {run: x}\n")
    attempt = await bed.executor.launched("only")
    await bed.restart()
    assert await bed.executor.adopted("only") is attempt
    attempt.finish(0)
    await bed.final(wf)
    job = (await bed.jobs(wf))["only"]
    assert (job["state"], job["attempt"], job["handle"]) == ("succeeded", 1, attempt.handle)
    assert launches(bed) == [("only", 1)]
    assert [(c.job, c.attempt) for c in bed.executor.calls_of("find")] == [("only", 1)]
    [warning] = await bed.events(wf, "job.warning")
    assert "adopted it instead of starting it again" in warning["data"]["message"]


async def test_a_queued_attempt_that_never_started_is_launched_once(bed: Bed) -> None:
    bed.executor.set("a", hangs())
    wf = await bed.submit("concurrency: 1\njobs:\n  a: {run: x}\n  b: {run: x}\n")
    first = await bed.executor.launched("a")
    await bed.job_reaches(wf, "b", J.QUEUED)
    await bed.restart()
    first.finish(0)
    assert (await bed.final(wf))["state"] == "succeeded"
    assert launches(bed) == [("a", 1), ("b", 1)]
    assert [(c.job, c.attempt) for c in bed.executor.calls_of("find")] == [("b", 1)]
    assert [c.job for c in bed.executor.calls_of("adopt")] == ["a"]


async def test_unknown_while_find_cannot_answer(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attempt_module, "UNKNOWN_AFTER", 0.01)
    bed.executor.set("only", Script(exit_code=None, launch_hangs=True))
    wf = await bed.submit("jobs:\n  only: {run: x}\n")
    attempt = await bed.executor.launched("only")
    answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    bed.executor.find_answers[("only", 1)] = answer
    await bed.restart()
    unknown = await bed.job_reaches(wf, "only", J.UNKNOWN)
    assert unknown["attempt"] == 0  # the last attempt known for certain
    assert unknown["reason"] == (
        "cannot check yet whether attempt 1 already started "
        "(host 'localhost' does not answer); waiting for it"
    )
    # a cancel now must wait for the answer: the attempt may be running
    bed.engine.cancel(wf, "only")
    answer.set_result(attempt.handle)
    await bed.final(wf)
    job = (await bed.jobs(wf))["only"]
    assert (job["state"], job["attempt"]) == ("cancelled", 1)
    assert [c.what for c in bed.executor.calls if c.what != "ready"] == [
        "launch",
        "find",
        "adopt",
        "kill",
    ]


async def test_an_adopted_attempt_that_is_gone_is_lost_and_retried(bed: Bed) -> None:
    bed.executor.set("j", hangs(), exits(0))
    wf = await bed.submit("jobs:\n  j: {run: x, retries: 1, retry_delay: 0.01, retry_on: [lost]}\n")
    await bed.job_reaches(wf, "j", J.RUNNING)
    del bed.executor.attempts[("j", 1)]  # the host rebooted while no daemon ran
    await bed.restart()
    assert (await bed.final(wf))["state"] == "succeeded"
    assert ("queued", "lost: no attempt 1 of j to adopt; retry 1/1 in 0.01s") in await bed.states(
        wf, "j"
    )
    assert launches(bed) == [("j", 1), ("j", 2)]


async def test_shutdown_leaves_launched_attempts_running(bed: Bed) -> None:
    bed.executor.set("j", hangs())
    wf = await bed.submit("jobs:\n  j: {run: x}\n")
    attempt = await bed.executor.launched("j")
    await bed.engine.close()
    assert not attempt.exited.done() and not bed.executor.calls_of("kill")
    assert not bed.engine.is_running(wf)
    assert (await bed.store.find_workflow(wf) or {})["state"] == "running"
