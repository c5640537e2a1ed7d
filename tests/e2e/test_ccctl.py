"""`ccctl` end to end: every command run as a user types it, against a real daemon.

Each command is a fresh `python -m ccd.cli ...` process with the test's isolated
XDG environment; the `daemon` fixture runs a real `ccd run` on the test's socket.
Nothing here sleeps to wait for state: tests wait on commands that block until
something happened (`watch`, `logs -f`, `events -f`), and on processes exiting
(a daemon that is not our child is polled in /proc, with a deadline).
Every finished command is checked for a traceback by the `ccctl` fixture.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProc
from tests.e2e.conftest import DEADLINE, Ccctl, Result, pid_alive

#: the hint every "daemon unreachable" message must give
START_HINT = "ccctl daemon start"

#: every test talks to real processes; none may hang for pytest's global timeout
pytestmark = pytest.mark.timeout(2 * DEADLINE)

GOOD = """\
name: good
jobs:
  a: {run: "echo hello from a"}
  b:
    needs: [a]
    run: "echo '::ccd progress=50'; echo world"
"""

#: three problems: a typo'd key, a cycle and a missing parent
BAD = """\
name: bad
jobs:
  a:
    run: "true"
    needs: [c]
    retires: 2
  c:
    run: "true"
    needs: [a]
  d:
    run: "true"
    needs: [nothere]
"""

FAILING = """\
name: failing
jobs:
  boom: {run: "echo boom >&2; exit 3"}
  after: {needs: [boom], run: "true"}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def submit(ccctl: Ccctl, file: Path) -> str:
    """`ccctl submit FILE --json`; the new workflow's id."""
    result = ccctl("submit", str(file), "--json")
    assert result.code == 0, str(result)
    workflow_id = result.json()["id"]
    assert isinstance(workflow_id, str) and workflow_id
    return workflow_id


def watch(ccctl: Ccctl, wf: str) -> Result:
    """`ccctl watch WF` without a terminal: blocks until the workflow is final."""
    return ccctl("watch", wf)


def status(ccctl: Ccctl, wf: str) -> dict[str, Any]:
    result = ccctl("status", wf, "--json")
    assert result.code == 0, str(result)
    data: dict[str, Any] = result.json()
    return data


def jobs_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["name"]: job for job in data["jobs"]}


def problem_locations(text: str) -> list[str]:
    """`file:line:col` of every problem line in `text`."""
    return re.findall(r"(\S+\.yaml:\d+:\d+):", text)


# -- no daemon needed -------------------------------------------------------------------
def test_validate_works_without_a_daemon(ccctl: Ccctl, work: Path, ccd_env: dict[str, str]) -> None:
    good = write(work, "good.yaml", GOOD)
    bad = write(work, "bad.yaml", BAD)
    assert ccctl.env["CCD_NO_AUTOSTART"] == "1"

    ok, problems, both = ccctl.many(
        [["validate", "good.yaml"], ["validate", "bad.yaml"], ["validate", str(good), str(bad)]]
    )

    assert ok.code == 0, str(ok)
    assert ok.out.strip() == "good.yaml: ok — workflow 'good', 2 job(s)"
    assert ok.err == ""

    assert problems.code == 2, str(problems)
    assert "3 problems" in problems.err
    # every problem, each with file:line:col pointing at the offending text
    assert (
        "bad.yaml:6:5: unknown key 'retires' in job 'a' (did you mean 'retries'?)" in problems.err
    )
    assert re.search(r"bad\.yaml:\d+:\d+: cycle: (a -> c -> a|c -> a -> c)", problems.err)
    assert re.search(r"bad\.yaml:12:\d+: job 'd' needs 'nothere'", problems.err)
    assert len(set(problem_locations(problems.err))) == 3, "three problems, three places"

    # several files: the good one is ok, the bad one fails the whole command
    assert both.code == 2, str(both)
    assert f"{good}: ok" in both.out
    assert len(problem_locations(both.err)) == 3

    # validation never needed (or started) a daemon
    assert not (Path(ccd_env["XDG_RUNTIME_DIR"]) / "ccd" / "ccd.sock").exists()


def test_unreachable_daemon_exits_3_and_says_how_to_start_it(ccctl: Ccctl, work: Path) -> None:
    write(work, "good.yaml", GOOD)
    commands = [
        ["ls"],
        ["ls", "--json"],
        ["status", "good"],
        ["submit", "good.yaml"],
        ["watch", "good"],
        ["logs", "good", "a"],
        ["events", "good"],
        ["cancel", "good"],
        ["retry", "good"],
        ["graph", "good"],
    ]
    for result in ccctl.many(commands):
        assert result.code == 3, str(result)
        assert "cannot reach the ccd daemon" in result.err, str(result)
        assert START_HINT in result.err, str(result)
        assert result.out == "", str(result)

    # `daemon status` is a question, not a failure to connect: a clear answer, still exit 3
    answer = ccctl("daemon", "status")
    assert answer.code == 3, str(answer)
    assert "not running" in answer.out


HELP = {
    (): ["submit", "validate", "watch", "logs", "daemon"],
    ("validate",): ["without running", "exit 2"],
    ("submit",): ["Submit a workflow", "--watch"],
    ("ls",): ["List workflows", "--json", "--limit"],
    ("status",): ["state of each of its jobs", "--json"],
    ("watch",): ["until it ends", "exit 1"],
    ("logs",): ["output", "--follow", "--attempt"],
    ("events",): ["event log", "--follow", "--since", "--json"],
    ("cancel",): ["Cancel a running workflow"],
    ("retry",): ["failed", "again"],
    ("graph",): ["DAG", "--output", "--around"],
    ("daemon",): ["start", "stop", "status"],
    ("daemon", "start"): ["Start the daemon"],
    ("daemon", "stop"): ["Stop the daemon", "--timeout"],
    ("daemon", "status"): ["whether the daemon runs", "--json"],
}


def test_help_of_every_command(ccctl: Ccctl) -> None:
    results = ccctl.many([[*command, "--help"] for command in HELP])
    for (command, phrases), result in zip(HELP.items(), results, strict=True):
        assert result.code == 0, str(result)
        # help is wrapped to the terminal's width (and coloured if FORCE_COLOR is set)
        text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", result.out).split())
        assert "Usage:" in text, str(result)
        for phrase in phrases:
            assert phrase in text, f"`{' '.join(command)} --help` lacks {phrase!r}\n{result}"
    version = ccctl("--version")
    assert version.code == 0 and re.fullmatch(r"ccctl \d+\.\d+\.\d+\S*\n", version.out)


# -- submit and watch -------------------------------------------------------------------
def test_submit_watch_prints_a_line_per_change_and_a_summary(
    ccctl: Ccctl, daemon: DaemonProc, work: Path
) -> None:
    gate = work / "gate"
    # `tick` reports progress until the test opens the gate; the test opens it once the
    # watcher printed a progress line, so every later change must reach the watcher.
    write(
        work,
        "gated.yaml",
        f"""\
        name: gated
        jobs:
          tick:
            run: |
              i=0
              while [ ! -e {gate} ]; do i=$((i % 98 + 1)); echo "::ccd progress=$i"; sleep 0.05; done
          last:
            needs: [tick]
            run: "echo done"
        """,
    )
    watcher = ccctl.start("submit", "gated.yaml", "--watch")
    first = watcher.out.wait_for(lambda line: True)
    match = re.fullmatch(r"submitted gated as (\S+) \(2 jobs\)", first)
    assert match, first
    workflow_id = match.group(1)
    watcher.out.wait_for(
        lambda line: re.fullmatch(r"\d\d:\d\d:\d\d tick progress \d+%", line) is not None
    )
    gate.touch()
    result = watcher.finish()

    assert result.code == 0, str(result)
    assert "\x1b" not in result.out, "no terminal: no escape sequences"
    lines = result.lines
    assert lines[-1] == f"gated ({workflow_id}) succeeded — 2 succeeded"
    changes = [line.split(" ", 1)[1] for line in lines[1:-1]]
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines[1:-1]), lines
    after_gate = changes[changes.index("tick succeeded (attempt 1) exit=0") :]
    assert after_gate == [
        "tick succeeded (attempt 1) exit=0",
        "last queued",
        "last running (attempt 1)",
        "last succeeded (attempt 1) exit=0",
        "workflow succeeded",
    ]
    # one line per change: a progress value is not repeated
    progress = [line for line in changes if line.startswith("tick ") and line.endswith("%")]
    assert all(a != b for a, b in itertools.pairwise(progress)), progress


def test_submit_failures(ccctl: Ccctl, daemon: DaemonProc, work: Path) -> None:
    write(work, "failing.yaml", FAILING)
    bad = write(work, "bad.yaml", BAD)
    failing, invalid, missing = ccctl.many(
        [
            ["submit", "failing.yaml", "--watch"],
            ["submit", "bad.yaml", "--watch"],
            ["submit", "nope.yaml"],
        ]
    )
    # a workflow that fails: the summary says so and the exit code is 1
    assert failing.code == 1, str(failing)
    match = re.fullmatch(r"submitted failing as (\S+) \(2 jobs\)", failing.lines[0])
    assert match, str(failing)
    workflow_id = match.group(1)
    assert failing.lines[-1] == f"failing ({workflow_id}) failed — 1 failed, 1 skipped"

    # an invalid file: every problem with file:line:col, nothing submitted
    assert invalid.code == 2, str(invalid)
    assert invalid.out == ""
    assert f"{bad.resolve()}:6:5: unknown key 'retires'" in invalid.err
    assert len(problem_locations(invalid.err)) == 3
    assert missing.code == 2, str(missing)
    assert "cannot read nope.yaml" in missing.err

    listing, again = ccctl.many([["ls", "--json"], ["watch", "failing"]])
    assert [row["id"] for row in listing.json()] == [workflow_id]
    # watching it again later says the same and fails the same way
    assert again.code == 1, str(again)
    assert again.lines == [failing.lines[-1]]


# -- ls and status --------------------------------------------------------------------
def submit_and_watch(ccctl: Ccctl, file: Path) -> tuple[str, int]:
    """`ccctl submit FILE --watch`: the workflow's id and the exit code."""
    result = ccctl("submit", str(file), "--watch")
    match = re.match(r"submitted \S+ as (\S+) ", result.out)
    assert match, str(result)
    return match.group(1), result.code


def test_ls_and_status_json_by_id_and_by_name(ccctl: Ccctl, daemon: DaemonProc, work: Path) -> None:
    one = write(work, "one.yaml", "name: same\njobs:\n  only: {run: 'true'}\n")
    two = write(
        work,
        "two.yaml",
        """\
        name: same
        jobs:
          half: {run: "echo '::ccd progress=40 msg=\\"almost\\"'"}
          bad: {needs: [half], run: "exit 3"}
        """,
    )
    other = write(work, "other.yaml", GOOD)
    (first, code1), (second, code2), (third, code3) = (
        submit_and_watch(ccctl, f) for f in (one, two, other)
    )
    assert (code1, code2, code3) == (0, 1, 0)

    listing, limited, table, by_id, by_name, first_status, human = ccctl.many(
        [
            ["ls", "--json"],
            ["ls", "--json", "--limit", "1"],
            ["ls"],
            ["status", second, "--json"],
            ["status", "same", "--json"],
            ["status", first, "--json"],
            ["status", "same"],
        ]
    )
    rows = listing.json()
    assert isinstance(rows, list)
    assert [(r["id"], r["name"], r["state"]) for r in rows] == [
        (third, "good", "succeeded"),
        (second, "same", "failed"),
        (first, "same", "succeeded"),
    ], "newest first"
    assert [r["id"] for r in limited.json()] == [third]
    assert table.code == 0, str(table)
    for wf in (first, second, third):
        assert wf in table.out

    assert by_name.json()["id"] == second, "a name means the newest workflow with that name"
    for data in (by_id.json(), by_name.json()):
        assert (data["id"], data["name"], data["state"]) == (second, "same", "failed")
        jobs = jobs_of(data)
        assert list(jobs) == ["half", "bad"]
        for job in jobs.values():
            assert {"name", "state", "progress", "attempt", "exit_code"} <= job.keys()
        half, bad = jobs["half"], jobs["bad"]
        assert (half["state"], half["progress"], half["attempt"], half["exit_code"]) == (
            "succeeded",
            40,
            1,
            0,
        )
        assert (bad["state"], bad["attempt"], bad["exit_code"]) == ("failed", 1, 3)
    assert [j["name"] for j in first_status.json()["jobs"]] == ["only"]

    assert human.code == 0, str(human)
    assert human.lines[0] == f"same ({second}) failed — 1 succeeded, 1 failed"
    assert re.search(r"^bad\s+failed\b.*\b3\b", human.out, re.M), human.out


# -- logs and events ----------------------------------------------------------------------
def test_logs_and_logs_follow(ccctl: Ccctl, daemon: DaemonProc, work: Path) -> None:
    gate = work / "gate"
    wf = submit(
        ccctl,
        write(
            work,
            "slow.yaml",
            f"""\
            name: slow
            jobs:
              talk:
                run: |
                  echo first line
                  while [ ! -e {gate} ]; do sleep 0.05; done
                  echo second line >&2
                  echo third line
            """,
        ),
    )
    # wait (on the event stream) until the job runs, so that its log exists
    events = ccctl.start("events", wf, "--follow", "--json")
    events.out.wait_for(
        lambda line: (
            json.loads(line)["kind"] == "job.state"
            and json.loads(line)["data"]["state"] == "running"
        )
    )
    follow = ccctl.start("logs", "-f", wf, "talk")
    follow.out.wait_for(lambda line: line == "first line")
    assert follow.proc.poll() is None, "logs -f must keep following a running job"
    gate.touch()
    result = follow.finish()
    assert result.code == 0, str(result)
    assert result.lines == ["first line", "second line", "third line"]
    assert events.finish().code == 0, "events -f ends when the workflow ends"

    plain = ccctl("logs", "slow", "talk")
    assert plain.code == 0, str(plain)
    assert plain.out == "first line\nsecond line\nthird line\n"


def test_events_human_and_json(ccctl: Ccctl, daemon: DaemonProc, work: Path) -> None:
    write(work, "good.yaml", GOOD)
    assert ccctl("submit", "good.yaml", "--watch").code == 0

    human, as_json, since = ccctl.many(
        [
            ["events", "good"],
            ["events", "good", "--json"],
            ["events", "good", "--json", "--since", "5"],
        ]
    )
    assert human.code == 0 and as_json.code == 0 and since.code == 0, f"{human}\n{as_json}"
    events = [json.loads(line) for line in as_json.lines]
    assert len(events) == len(human.lines) >= 9  # submitted, 3 per job, progress, final
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all({"seq", "kind", "job", "time", "data"} <= e.keys() for e in events)
    assert events[0]["kind"] == "workflow.submitted"
    assert events[-1]["kind"] == "workflow.state" and events[-1]["data"]["state"] == "succeeded"
    starts = [e["job"] for e in events if e["kind"] == "job.state" and e["data"].get("handle")]
    assert starts == ["a", "b"]  # each running event carries its executor handle
    queued = [e for e in events if e["kind"] == "job.state" and e["data"]["state"] == "queued"]
    # queueing a new attempt clears the last attempt's handle (never adopted after a crash)
    assert [e["job"] for e in queued] == ["a", "b"]
    assert all(e["data"]["handle"] is None for e in queued)

    lines = human.lines
    for line, event in zip(lines, events, strict=True):
        assert re.match(rf"\s*{event['seq']} \d\d:\d\d:\d\d {event['job'] or 'workflow'} ", line)
    body = "\n".join(lines)
    assert "workflow submitted good" in lines[0]
    assert re.search(r" a running \(attempt 1\)$", body, re.M)
    assert re.search(r" a succeeded \(attempt 1\) exit=0$", body, re.M)
    assert re.search(r" b progress 50%$", body, re.M)
    assert lines[-1].endswith(" workflow succeeded")
    # --since N: only the events after sequence number N
    assert [json.loads(line) for line in since.lines] == [e for e in events if e["seq"] > 5]


# -- cancel and retry -----------------------------------------------------------------
def test_cancel_a_running_workflow(ccctl: Ccctl, daemon: DaemonProc, work: Path) -> None:
    wf = submit(
        ccctl,
        write(
            work,
            "long.yaml",
            """\
            name: long
            jobs:
              long: {run: "echo started; exec sleep 300"}
              child: {needs: [long], run: "true"}
            """,
        ),
    )
    events = ccctl.start("events", wf, "-f", "--json")
    events.out.wait_for(
        lambda line: (
            json.loads(line)["job"] == "long" and json.loads(line)["data"].get("state") == "running"
        )
    )
    cancel = ccctl("cancel", "long")
    assert cancel.code == 0, str(cancel)
    assert cancel.out.strip() == f"cancelling workflow of {wf}"
    # the event stream ends by itself when the workflow is final
    followed = events.finish()
    last = json.loads(followed.lines[-1])
    assert (last["kind"], last["data"]["state"]) == ("workflow.state", "cancelled")

    data = status(ccctl, wf)
    assert data["state"] == "cancelled"
    assert {name: job["state"] for name, job in jobs_of(data).items()} == {
        "long": "cancelled",
        "child": "cancelled",
    }
    assert watch(ccctl, wf).code == 1, "watch fails for a workflow that did not succeed"

    again = ccctl("cancel", wf)
    assert again.code == 1, str(again)
    assert f"workflow {wf} is not running; nothing to cancel" in again.err
    assert again.out == ""


def test_retry_after_fixing_the_cause(ccctl: Ccctl, daemon: DaemonProc, work: Path) -> None:
    ready = work / "ready"
    write(
        work,
        "fixme.yaml",
        f"""\
        name: fixme
        jobs:
          check: {{run: "test -e {ready} || {{ echo not ready; exit 5; }}; echo ready"}}
          after: {{needs: [check], run: "echo after"}}
        """,
    )
    failed = ccctl("submit", "fixme.yaml", "--watch")
    assert failed.code == 1, str(failed)
    wf = failed.lines[0].split()[3]
    assert jobs_of(status(ccctl, wf))["check"]["exit_code"] == 5

    early = ccctl("cancel", wf)
    assert early.code == 1 and "not running" in early.err, str(early)

    ready.touch()  # fix the cause
    retry = ccctl("retry", "fixme")
    assert retry.code == 0, str(retry)
    assert retry.out.strip() == f"retrying 2 job(s) of {wf}: check, after"
    watched = watch(ccctl, wf)
    assert watched.code == 0, str(watched)
    assert watched.lines[-1] == f"fixme ({wf}) succeeded — 2 succeeded"

    jobs = jobs_of(status(ccctl, wf))
    assert (jobs["check"]["state"], jobs["check"]["attempt"]) == ("succeeded", 2)
    assert jobs["after"]["state"] == "succeeded"
    first, latest = ccctl.many([["logs", wf, "check", "--attempt", "1"], ["logs", wf, "check"]])
    assert (first.code, first.out) == (0, "not ready\n")
    assert (latest.code, latest.out) == (0, "ready\n")

    nothing = ccctl("retry", wf)
    assert nothing.code == 1, str(nothing)
    assert "no failed, cancelled or skipped jobs" in nothing.err


# -- graph --------------------------------------------------------------------------------
def test_graph_svg_dot_and_around(ccctl: Ccctl, daemon: DaemonProc, work: Path) -> None:
    write(
        work,
        "diamond.yaml",
        """\
        name: diamond
        jobs:
          fetch: {run: "true"}
          train: {needs: [fetch], run: "true"}
          lint: {needs: [fetch], run: "exit 1"}
          report: {needs: [train], run: "true"}
          unrelated: {run: "true"}
        """,
    )
    assert ccctl("submit", "diamond.yaml", "--watch").code == 1
    svg, dot, around, stdout = ccctl.many(
        [
            ["graph", "diamond", "-o", "x.svg"],
            ["graph", "diamond", "--output", "x.dot"],
            ["graph", "diamond", "--around", "train", "-o", "around.dot"],
            ["graph", "diamond"],
        ]
    )
    assert (svg.code, svg.out) == (0, "wrote x.svg\n"), str(svg)
    image = (work / "x.svg").read_text()
    assert image.lstrip().startswith("<?xml") and "<svg" in image
    for name in ("fetch", "train", "lint", "report", "unrelated"):
        assert f">{name}</text>" in image, name
    assert 'fill="#ef5350"' in image, "the failed job is drawn in the failed colour"

    assert (dot.code, dot.out) == (0, "wrote x.dot\n"), str(dot)
    text = (work / "x.dot").read_text()
    assert text.startswith('digraph "diamond" {')
    for edge in ('"fetch" -> "train"', '"fetch" -> "lint"', '"train" -> "report"'):
        assert edge in text
    assert text == stdout.out, "without -o the DOT goes to stdout"

    assert around.code == 0, str(around)
    near = (work / "around.dot").read_text()
    nodes = set(re.findall(r'^  "(\w+)" \[', near, re.M))
    assert nodes == {"fetch", "train", "report"}
    assert '"fetch" -> "train"' in near and '"train" -> "report"' in near
    assert '"fetch" -> "lint"' not in near

    nosuch, badext = ccctl.many(
        [["graph", "diamond", "--around", "nosuch"], ["graph", "diamond", "-o", "x.png"]]
    )
    assert nosuch.code == 2 and "no job named 'nosuch'" in nosuch.err, str(nosuch)
    assert badext.code == 2 and "use a .svg or .dot" in badext.err, str(badext)
    assert not (work / "x.png").exists()


# -- errors ---------------------------------------------------------------------------------
def test_unknown_workflow_and_bad_parameters(ccctl: Ccctl, daemon: DaemonProc, work: Path) -> None:
    write(work, "good.yaml", GOOD)
    assert ccctl("submit", "good.yaml", "--watch").code == 0
    unknown = [
        ["status", "nope"],
        ["status", "nope", "--json"],
        ["watch", "nope"],
        ["logs", "nope", "a"],
        ["events", "nope"],
        ["cancel", "nope"],
        ["retry", "nope"],
        ["graph", "nope"],
    ]
    bad = [
        ["logs", "good", "a", "--attempt", "0"],
        ["ls", "--limit", "0"],
        ["events", "good", "--since", "-1"],
    ]
    usage = [["logs", "good", "a", "--attempt", "x"], ["status"], ["frobnicate"]]
    missing = [["logs", "good", "nojob"], ["logs", "good", "a", "--attempt", "9"]]
    results = ccctl.many(unknown + bad + usage + missing)
    for result in results[: len(unknown)]:
        assert result.code == 1, str(result)
        assert "no workflow with id or name 'nope'" in result.err, str(result)
        assert result.out == "", str(result)
    attempt, limit, since = results[len(unknown) : len(unknown) + len(bad)]
    for result, param in ((attempt, "attempt"), (limit, "limit"), (since, "since")):
        assert result.code == 2, str(result)
        assert result.err.startswith("ccctl: bad request:"), str(result)
        assert param in result.err and "greater than or equal to" in result.err, str(result)
    for result in results[len(unknown) + len(bad) : -len(missing)]:
        assert result.code == 2, str(result)
        assert "Usage:" in result.err or "Error" in result.err, str(result)
    nojob, noattempt = results[-len(missing) :]
    assert nojob.code == 1 and "has no job 'nojob'" in nojob.err, str(nojob)
    assert noattempt.code == 1 and "has no attempt 9" in noattempt.err, str(noattempt)


# -- the daemon itself ----------------------------------------------------------------------
def wait_gone(pid: int, timeout: float = DEADLINE) -> None:
    """Wait for another process to exit (its parent is gone, so it cannot be waited on)."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} is still alive"
        time.sleep(0.02)  # polling another process's /proc entry, bounded by the deadline


def daemon_state(ccctl: Ccctl, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    result = ccctl("daemon", "status", "--json", env=env)
    data: dict[str, Any] = result.json()
    return result.code, data


def test_autostart_on_first_use(
    ccctl: Ccctl, no_daemon_left: Path, ccd_env: dict[str, str]
) -> None:
    env = ccctl.environ(CCD_NO_AUTOSTART=None)
    log = Path(ccd_env["XDG_STATE_HOME"]) / "ccd" / "ccd.log"
    assert not no_daemon_left.exists() and not log.exists()

    # a daemon that cannot start: the user is told why, from its log
    config = Path(ccd_env["XDG_CONFIG_HOME"]) / "ccd" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("hosts: [\n")
    broken = ccctl("ls", env=env)
    assert broken.code == 3, str(broken)
    assert "exited at start-up" in broken.err and f"{config}: not valid YAML" in broken.err
    config.unlink()

    listing = ccctl("ls", "--json", env=env)
    assert listing.code == 0, str(listing)
    assert listing.json() == []
    assert no_daemon_left.exists()

    code, health = daemon_state(ccctl, env)
    assert code == 0 and health["running"] is True, health
    pid = health["pid"]
    assert pid_alive(pid)
    assert health["socket"] == str(no_daemon_left)
    assert health["state_dir"] == str(log.parent)

    # later commands use the running daemon instead of starting another one
    table, again = ccctl.many([["ls"], ["daemon", "status", "--json"]], env=env)
    assert table.code == 0 and again.json()["pid"] == pid, f"{table}\n{again}"

    stop = ccctl("daemon", "stop", env=env)
    assert stop.code == 0, str(stop)
    assert stop.out.strip() == f"ccd (pid {pid}) stopped"
    wait_gone(pid)
    assert daemon_state(ccctl, env) == (3, {"running": False, "socket": str(no_daemon_left)})
    # the autostarted daemon logged to the state directory, from start to stop
    text = log.read_text()
    assert f"ccd listening on {no_daemon_left} (pid {pid})" in text, text
    assert "received SIGTERM: stopping" in text, text


def test_daemon_start_status_stop_round_trip(ccctl: Ccctl, no_daemon_left: Path) -> None:
    # the daemon commands work with autostart off: they are how a user starts it
    assert ccctl.env["CCD_NO_AUTOSTART"] == "1"
    before = ccctl("daemon", "status")
    assert (
        before.code == 3 and before.out.strip() == f"ccd is not running (socket {no_daemon_left})"
    )

    start = ccctl("daemon", "start")
    assert start.code == 0, str(start)
    match = re.fullmatch(
        rf"ccd started \(pid (\d+)\) on {re.escape(str(no_daemon_left))}\n", start.out
    )
    assert match, str(start)
    pid = int(match.group(1))

    again = ccctl("daemon", "start")
    assert again.code == 0, str(again)
    assert again.out.strip() == f"ccd is already running (pid {pid}) on {no_daemon_left}"

    running = ccctl("daemon", "status")
    assert running.code == 0, str(running)
    assert re.match(
        rf"ccd \S+ running, pid {pid}, up \d+s, socket {re.escape(str(no_daemon_left))}",
        running.out,
    )
    assert ccctl("ls", "--json").code == 0, "no autostart needed: the daemon answers"

    stop = ccctl("daemon", "stop")
    assert (stop.code, stop.out.strip()) == (0, f"ccd (pid {pid}) stopped"), str(stop)
    wait_gone(pid)
    after, stop_again = ccctl.many([["daemon", "status"], ["daemon", "stop"]])
    assert after.code == 3 and "not running" in after.out, str(after)
    assert (stop_again.code, stop_again.out.strip()) == (0, "ccd is not running")


def test_autostart_from_an_unactivated_venv_gives_jobs_its_bin(
    ccctl: Ccctl, no_daemon_left: Path, tmp_path: Path
) -> None:
    """`.venv/bin/ccctl` without `source .venv/bin/activate`: jobs still find the venv's
    tools, and `ccctl daemon status` says which PATH they start with."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=DEADLINE,
    )
    python = str(venv / "bin" / "python")
    env = ccctl.environ(CCD_NO_AUTOSTART=None, PATH="/usr/bin:/bin")
    (ccctl.cwd / "wf.yaml").write_text("name: venv\njobs:\n  which: {run: 'command -v python'}\n")
    submitted = subprocess.run(
        [python, "-m", "ccd.cli", "submit", "wf.yaml", "--watch"],
        env=env, cwd=ccctl.cwd, capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    status = ccctl("daemon", "status", "--json", env=env)
    assert status.json()["job_path"] == f"{venv / 'bin'}:/usr/bin:/bin"
    assert "jobs start with PATH=" + str(venv / "bin") in ccctl("daemon", "status", env=env).out
    log = ccctl("logs", "venv", "which", env=env)
    assert log.out == python + "\n", str(log)
    assert ccctl("daemon", "stop", env=env).code == 0
