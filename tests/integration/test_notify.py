"""Notifications from a real daemon: webhooks to a local receiver, commands, mail
through a stand-in sendmail, retries, and daemon restarts with a notice owed."""

from __future__ import annotations

import json
import signal
import textwrap
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from ccd.cli.client import ApiError
from tests.conftest import WAIT, DaemonProc, proc_alive
from tests.receiver import Receiver, free_port

Events = list[dict[str, Any]]

#: quick retries, so a test sees several attempts within seconds
QUICK = "notify_delivery: {attempts: 3, delay: 0.1, backoff: 1, timeout: 5}\n"
#: a workflow whose job `bad` fails for good (after one retry) and `good` succeeds
FAILING = textwrap.dedent("""
    name: nightly
    jobs:
      good: {run: 'true'}
      bad: {run: 'echo out of luck; exit 3', retries: 1, retry_delay: 0}
""")


def wait_events(d: DaemonProc, done: Callable[[Events], bool], timeout: float = WAIT) -> Events:
    """The daemon's whole event log, as soon as `done` holds for it (the log is
    followed: no workflow's end stops it)."""
    seen: Events = []
    deadline = time.monotonic() + timeout
    for line in d.client.stream_lines("/v1/events", {"follow": True}):
        if line.strip():
            seen.append(json.loads(line))
        if done(seen):
            return seen
        if time.monotonic() > deadline:  # checked at heartbeats too
            break
    raise AssertionError(f"gave up waiting; the log: {[e['kind'] for e in seen]}")


def of_kind(events: Events, kind: str) -> Events:
    return [e for e in events if e["kind"] == kind]


def outcomes(n: int) -> Callable[[Events], bool]:
    """`done` for `wait_events`: `n` notifications sent or given up."""
    return lambda events: len([e for e in events if e["kind"].startswith("notify.")]) >= n


def failed_attempts(d: DaemonProc) -> int:
    """Attempts the daemon's log says failed so far (it logs each one)."""
    return d.log.read_text().count("failed: ") if d.log.exists() else 0


def wait_failed_attempts(d: DaemonProc, count: int) -> None:
    deadline = time.monotonic() + WAIT
    while failed_attempts(d) < count:
        assert time.monotonic() < deadline, d.log.read_text()[-2000:]
        time.sleep(0.05)  # another process's log file: nothing to wake us


def test_each_notification_reaches_the_webhook_once(daemon_factory: Any) -> None:
    receiver = Receiver().start()
    config_hook = receiver.url("/config/secret-token")
    d: DaemonProc = daemon_factory(
        f"notify:\n  - {{on: [failed, succeeded, job_failed], webhook: '{config_hook}'}}\n"
    )
    d.start()
    # the workflow's own notifier, and the config's again (the same notifier: once)
    own = receiver.url("/own")
    wf = d.submit(
        FAILING
        + f"notify:\n  - {{webhook: '{own}'}}\n"
        + f"  - {{on: [failed, succeeded, job_failed], webhook: '{config_hook}'}}\n"
    )
    events = wait_events(d, outcomes(3))
    got = receiver.wait_for(3)
    sent = of_kind(events, "notify.sent")
    assert len(got) == len(sent) == 3 and of_kind(events, "notify.failed") == []
    by_event = {(r.path, r.body["event"]): r for r in got}
    assert set(by_event) == {
        ("/config/secret-token", "job_failed"),
        ("/config/secret-token", "failed"),
        ("/own", "failed"),  # on: left out is `ended`: any end
    }
    job = by_event[("/config/secret-token", "job_failed")].body
    assert (job["workflow_id"], job["workflow"], job["job"], job["state"]) == (
        wf, "nightly", "bad", "failed",
    )  # fmt: skip
    assert (job["attempt"], job["exit_code"], job["reason"]) == (2, 3, "exit 3: out of luck")
    end = by_event[("/own", "failed")].body
    assert (end["job"], end["state"], end["counts"]) == (
        None,
        "failed",
        {"succeeded": 1, "failed": 1},
    )
    assert end["summary"] == f"nightly ({wf}) failed: 1 succeeded, 1 failed"
    assert end["text"] == "ccd: " + end["summary"]
    assert end["time"] >= end["created"] > 0
    # each is named by its id, which the receiver may use to drop a repeat
    assert {r.headers["Idempotency-Key"] for r in got} == {r.body["id"] for r in got}
    assert len({r.body["id"] for r in got}) == 3
    # the outcomes name the host, never the URL (it may hold a token)
    assert all(e["workflow_id"] == wf for e in sent)
    assert "secret-token" not in json.dumps(sent) + json.dumps([r.body for r in got])
    assert {e["data"]["to"] for e in sent} == {f"webhook 127.0.0.1:{receiver.port}"}
    assert {e["job"] for e in sent} == {"bad", None}
    # the workflow's rows did not change for them
    status = d.status(wf)
    assert status["state"] == "failed" and status["updated"] < min(e["time"] for e in sent)
    receiver.stop()


def test_a_receiver_down_for_5s_gets_it_once_after_retries(daemon_factory: Any) -> None:
    port = free_port()  # nothing listens there yet: connections are refused
    d: DaemonProc = daemon_factory(
        f"notify: [{{webhook: 'http://127.0.0.1:{port}/late'}}]\n"
        "notify_delivery: {attempts: 20, delay: 0.5, backoff: 1.5, max_delay: 2}\n"
    )
    d.start()
    wf = d.submit("name: short\njobs: {a: {run: 'true'}}\n")
    ended = time.monotonic()
    d.wait_final(wf)
    wait_failed_attempts(d, 3)
    # the receiver is down for 5 s in all (the part not yet spent waiting above)
    time.sleep(max(0.0, 5.0 - (time.monotonic() - ended)))
    receiver = Receiver(port).start()
    events = wait_events(d, outcomes(1))
    assert of_kind(events, "notify.failed") == []
    [sent] = of_kind(events, "notify.sent")
    assert sent["data"]["attempts"] >= 4 and sent["data"]["on"] == "succeeded"
    [got] = receiver.wait_for(1)
    assert (got.path, got.body["workflow_id"], got.body["state"]) == ("/late", wf, "succeeded")
    receiver.stop()


def test_notify_failed_is_recorded_once_the_attempts_are_spent(daemon_factory: Any) -> None:
    receiver = Receiver(statuses={"/busy": 503, "/gone": 404}).start()
    d: DaemonProc = daemon_factory(
        f"notify:\n  - {{webhook: '{receiver.url('/busy')}'}}\n"
        f"  - {{webhook: '{receiver.url('/gone')}'}}\n" + QUICK
    )
    d.start()
    wf = d.submit("name: short\njobs: {a: {run: 'true'}}\n")
    events = wait_events(d, outcomes(2))
    assert of_kind(events, "notify.sent") == []
    failed = {e["data"]["error"]: e for e in of_kind(events, "notify.failed")}
    assert set(failed) == {"HTTP 503 Service Unavailable", "HTTP 404 Not Found"}
    # a busy receiver is tried `attempts` times; one that says the hook is gone, once
    assert failed["HTTP 503 Service Unavailable"]["data"]["attempts"] == 3
    assert failed["HTTP 404 Not Found"]["data"]["attempts"] == 1
    paths = [r.path for r in receiver.received]
    assert sorted(paths) == ["/busy", "/busy", "/busy", "/gone"]
    assert {e["workflow_id"] for e in failed.values()} == {wf}
    receiver.stop()


def test_a_command_gets_the_details_in_its_environment_and_the_json_on_stdin(
    daemon_factory: Any, tmp_path: Path
) -> None:
    record, tries = tmp_path / "record", tmp_path / "tries"
    # fails twice (a nonzero exit is a failed attempt), then records what it got
    command = (
        f'echo x >> {tries}; [ "$(wc -l < {tries})" -ge 3 ] || exit 1; '
        f'printf "%s|%s|%s|%s|%s|%s\\n" "$CCD_NOTIFY_EVENT" "$CCD_WORKFLOW_ID" "$CCD_WORKFLOW" '
        f'"$CCD_STATE" "$CCD_JOB" "$CCD_REASON" > {record}; cat >> {record}'
    )
    d: DaemonProc = daemon_factory(
        f"notify: [{{on: [job_failed], command: {json.dumps(command)}}}]\n"
        "notify_delivery: {attempts: 5, delay: 0.1, backoff: 1}\n"
    )
    d.start()
    wf = d.submit(FAILING)
    events = wait_events(d, outcomes(1))
    [sent] = of_kind(events, "notify.sent")
    assert (sent["job"], sent["data"]["attempts"], sent["data"]["to"]) == ("bad", 3, "command echo")
    env_line, body = record.read_text().split("\n", 1)
    assert env_line == f"job_failed|{wf}|nightly|failed|bad|exit 3: out of luck"
    data = json.loads(body)
    assert (data["workflow_id"], data["job"], data["exit_code"], data["id"]) == (
        wf, "bad", 3, sent["data"]["notice"],
    )  # fmt: skip
    assert tries.read_text().count("x") == 3


def test_a_command_that_runs_too_long_is_killed_and_given_up(
    daemon_factory: Any, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    d: DaemonProc = daemon_factory(
        f"notify: [{{command: 'echo $$ >> {pids}; exec sleep 60'}}]\n"
        "notify_delivery: {attempts: 2, delay: 0, timeout: 0.5}\n"
    )
    d.start()
    d.submit("name: short\njobs: {a: {run: 'true'}}\n")
    events = wait_events(d, outcomes(1))
    [failed] = of_kind(events, "notify.failed")
    assert failed["data"]["attempts"] == 2
    assert failed["data"]["error"] == "the command ran over 0.5s and was killed"
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2 and not any(proc_alive(pid) for pid in started)


def test_mail_goes_to_the_sendmail_stand_in(daemon_factory: Any, tmp_path: Path) -> None:
    stand_in, argv, stdin = tmp_path / "fake-sendmail", tmp_path / "argv", tmp_path / "stdin"
    stand_in.write_text(f'#!/bin/sh\necho "$@" > {argv}\ncat > {stdin}\n')
    stand_in.chmod(0o755)
    d: DaemonProc = daemon_factory(
        f"notify: [{{mail: 'Ops <ops@example.org>, me@example.org', on: [failed], "
        f"via: '{stand_in}'}}]\n"
    )
    d.start()
    wf = d.submit(FAILING)
    events = wait_events(d, outcomes(1))
    [sent] = of_kind(events, "notify.sent")
    assert sent["data"]["to"] == "mail to Ops <ops@example.org>, me@example.org"
    assert argv.read_text() == "-t -i\n"
    message = message_from_bytes(stdin.read_bytes(), policy=policy.default)
    assert message["To"] == "Ops <ops@example.org>, me@example.org"
    assert message["Subject"] == f"ccd: nightly ({wf}) failed: 1 succeeded, 1 failed"
    assert message["From"].startswith("ccd <") and message["Date"] and message["Message-ID"]
    text = message.get_content()
    assert f"ccctl status {wf}" in text and "state:     failed" in text


def test_a_sendmail_that_is_not_there_fails_without_retries(
    daemon_factory: Any, tmp_path: Path
) -> None:
    d: DaemonProc = daemon_factory(
        f"notify: [{{mail: me@example.org, via: {tmp_path / 'nowhere'}}}]\n" + QUICK
    )
    d.start()
    d.submit("name: short\njobs: {a: {run: 'true'}}\n")
    [failed] = of_kind(wait_events(d, outcomes(1)), "notify.failed")
    assert failed["data"]["attempts"] == 1
    assert "cannot run" in failed["data"]["error"] and "No such file" in failed["data"]["error"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_notice_owed_when_the_daemon_stops_is_sent_once_by_the_next(
    daemon_factory: Any, sig: signal.Signals
) -> None:
    port = free_port()
    d: DaemonProc = daemon_factory(
        f"notify: [{{webhook: 'http://127.0.0.1:{port}/hook'}}]\n"
        "notify_delivery: {attempts: 1000, delay: 0.2, backoff: 1}\n"
    )
    d.start()
    wf = d.submit("name: first\njobs: {a: {run: 'true'}}\n")
    d.wait_final(wf)
    wait_failed_attempts(d, 2)  # the notice is owed, and being retried
    assert d.stop(sig) in (0, -signal.SIGKILL)
    receiver = Receiver(port).start()
    d.start()
    events = wait_events(d, outcomes(1))
    [sent] = of_kind(events, "notify.sent")
    [got] = receiver.wait_for(1)
    assert got.body["workflow_id"] == sent["workflow_id"] == wf
    assert got.body["id"] == sent["data"]["notice"]
    # a third daemon sends nothing again: the second workflow's notice is the only new one
    assert d.stop() == 0
    d.start()
    second = d.submit("name: second\njobs: {a: {run: 'true'}}\n")
    events = wait_events(d, outcomes(2))
    assert [e["workflow_id"] for e in of_kind(events, "notify.sent")] == [wf, second]
    assert [r.body["workflow_id"] for r in receiver.wait_for(2)] == [wf, second]
    receiver.stop()


def test_a_first_start_does_not_notify_of_old_workflows(daemon_factory: Any) -> None:
    receiver = Receiver().start()
    d: DaemonProc = daemon_factory()
    d.start()
    old = d.submit("name: old\njobs: {a: {run: 'false'}}\n")
    d.wait_final(old)
    d.stop()
    # the same state directory, now with a notifier: old ends are not news
    d.config = d.state_dir.parent / "notify.yaml"
    d.config.write_text(f"notify: [{{webhook: '{receiver.url()}'}}]\n")
    d.start()
    new = d.submit("name: new\njobs: {a: {run: 'false'}}\n")
    events = wait_events(d, outcomes(1))
    assert [e["workflow_id"] for e in of_kind(events, "notify.sent")] == [new]
    assert [r.body["workflow_id"] for r in receiver.wait_for(1)] == [new]
    receiver.stop()


def test_bad_notifiers_are_refused_at_submit_with_their_lines(daemon: DaemonProc) -> None:
    text = textwrap.dedent("""
        name: bad
        notify:
          - {on: [faild], webhook: 'https://example.org/hook'}
          - {webhook: 'ftp://example.org/hook'}
          - {command: 'true', mail: me@example.org}
        jobs: {a: {run: 'true'}}
    """)
    with pytest.raises(ApiError) as refused:
        daemon.client.call("POST", "/v1/workflows", body=text.encode())
    assert refused.value.status == 422
    problems = refused.value.body["problems"]
    assert [(p["line"], p["code"]) for p in problems] == [
        (4, "unknown-event"), (5, "bad-url"), (6, "two-notifier-kinds"),
    ]  # fmt: skip
    assert "did you mean 'failed'?" in problems[0]["message"]
    assert daemon.client.call("GET", "/v1/workflows") == []


def test_a_notice_sent_just_before_a_crash_is_not_sent_again(daemon_factory: Any) -> None:
    receiver = Receiver().start()
    d: DaemonProc = daemon_factory(f"notify: [{{webhook: '{receiver.url()}'}}]\n")
    d.start()
    first = d.submit("name: first\njobs: {a: {run: 'true'}}\n")
    wait_events(d, outcomes(1))
    # killed before it wrote its cursor past the notice: the next daemon reads the
    # trigger again, and finds the notice's outcome recorded
    d.stop(signal.SIGKILL)
    d.start()
    second = d.submit("name: second\njobs: {a: {run: 'true'}}\n")
    events = wait_events(d, outcomes(2))
    assert [e["workflow_id"] for e in of_kind(events, "notify.sent")] == [first, second]
    assert [r.body["workflow_id"] for r in receiver.wait_for(2)] == [first, second]
    receiver.stop()
