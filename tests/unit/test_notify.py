"""ccd.notify (pure): which events trigger which notifiers, what they say, when to retry."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from typing import Any

import pytest

from ccd.cli.format import event_text
from ccd.events import Event, EventKind
from ccd.fold import BadEvent, Fold, JobRow, WorkflowRow
from ccd.notify import (
    Facts,
    Notice,
    Trigger,
    describe,
    due,
    environment,
    mail_message,
    notifier_key,
    outcome_data,
    payload,
    retry_delays,
    retryable,
    trigger_of,
)
from ccd.spec.notify import Notifier

WID = "a1b2c3d4"
T0 = 1_700_000_000.0


def hook(*on: str, url: str = "https://hooks.example.org/T0/secret") -> Notifier:
    return Notifier(on=list(on), webhook=url) if on else Notifier(webhook=url)


#: (kind, job, data) -> the names `on:` may match, or None for no trigger
TRIGGERS = [
    ("workflow.state", None, {"state": "succeeded"}, {"succeeded", "ended"}),
    ("workflow.state", None, {"state": "failed", "reason": "x"}, {"failed", "ended"}),
    ("workflow.state", None, {"state": "cancelled"}, {"cancelled", "ended"}),
    ("workflow.state", None, {"state": "running"}, None),
    ("job.state", "train", {"state": "failed", "attempt": 2}, {"job_failed"}),
    ("job.state", "train", {"state": "timed_out"}, {"job_failed"}),
    # a failed attempt that is retried goes to queued: not a failure for good
    ("job.state", "train", {"state": "queued", "reason": "retry"}, None),
    ("job.state", "train", {"state": "cancelled"}, None),
    ("job.state", "train", {"state": "skipped"}, None),
    ("job.state", "train", {"state": "succeeded"}, None),
    ("job.warning", "train", {"message": "failed"}, None),
    ("notify.sent", None, {"on": "failed"}, None),
]


@pytest.mark.parametrize(("kind", "job", "data", "names"), TRIGGERS)
def test_which_events_are_triggers(
    kind: str, job: str | None, data: dict[str, Any], names: set[str] | None
) -> None:
    trigger = trigger_of(7, WID, job, T0, kind, data)
    assert (None if trigger is None else set(trigger.names)) == names


def test_a_job_trigger_keeps_what_its_failure_said() -> None:
    data = {"state": "failed", "attempt": 3, "exit_code": 2, "reason": "exit 2: oom"}
    trigger = trigger_of(9, WID, "train", T0, "job.state", data)
    assert trigger == Trigger(9, WID, "train", T0, "failed", "exit 2: oom", 2, 3)
    assert trigger.event == "job_failed"


#: a trigger's state -> which of these notifiers speak
NOTIFIERS = {
    "default": hook(),
    "failed": hook("failed"),
    "succeeded": hook("succeeded"),
    "jobs": hook("job_failed"),
    "both": hook("failed", "job_failed"),
    "ended": hook("ended", "failed"),
}


@pytest.mark.parametrize(
    ("job", "state", "speak"),
    [
        (None, "succeeded", {"default", "succeeded", "ended"}),
        (None, "failed", {"default", "failed", "both", "ended"}),
        (None, "cancelled", {"default", "ended"}),
        ("train", "failed", {"jobs", "both"}),
        ("train", "timed_out", {"jobs", "both"}),
    ],
)
def test_which_notifiers_a_trigger_makes_speak(
    job: str | None, state: str, speak: set[str]
) -> None:
    trigger = Trigger(5, WID, job, T0, state)
    notices = due(trigger, NOTIFIERS.values())
    by_notifier = {name for name, n in NOTIFIERS.items() for x in notices if x.notifier == n}
    assert by_notifier == speak
    # on: [ended, failed] matches a failure twice, and still makes one notice
    assert len(notices) == len(speak)


def test_the_same_notifier_twice_makes_one_notice() -> None:
    # e.g. in the daemon config and in the workflow file
    notices = due(Trigger(5, WID, None, T0, "failed"), [hook(), hook(), hook("failed")])
    assert len(notices) == 2
    assert notices[0].id == f"5-{notifier_key(hook())}"
    assert notifier_key(hook()) != notifier_key(hook(url="https://hooks.example.org/other"))


def facts() -> Facts:
    return Facts("mnist", "failed", "/work/mnist.yaml", T0 - 60, {"succeeded": 3, "failed": 1})


def test_the_payload_of_a_workflow_end() -> None:
    trigger = Trigger(12, WID, None, T0, "failed")
    [notice] = due(trigger, [hook()])
    body = payload(notice, facts())
    assert body == {
        "id": notice.id, "event": "failed", "workflow_id": WID, "workflow": "mnist",
        "state": "failed", "workflow_state": "failed", "job": None, "attempt": None,
        "exit_code": None, "reason": None, "time": T0, "created": T0 - 60,
        "counts": {"succeeded": 3, "failed": 1}, "source": "/work/mnist.yaml",
        "summary": f"mnist ({WID}) failed: 3 succeeded, 1 failed",
        "text": f"ccd: mnist ({WID}) failed: 3 succeeded, 1 failed",
    }  # fmt: skip
    assert "hooks.example.org" not in json.dumps(body)


def test_the_payload_of_a_job_failure() -> None:
    trigger = Trigger(13, WID, "train[2]", T0, "timed_out", "timed out after 60s", None, 1)
    [notice] = due(trigger, [hook("job_failed")])
    body = payload(notice, Facts("mnist", "running"))
    assert (body["event"], body["state"], body["workflow_state"]) == (
        "job_failed", "timed_out", "running",
    )  # fmt: skip
    assert body["summary"] == (
        f"job train[2] of mnist ({WID}) timed out (attempt 1): timed out after 60s"
    )


def test_the_command_sees_the_payload_in_its_environment() -> None:
    trigger = Trigger(13, WID, "train", T0, "failed", "exit 3: boom", 3, 2)
    [notice] = due(trigger, [Notifier(on=["job_failed"], command="notify-send hi")])
    env = environment(payload(notice, Facts("mnist", "running")))
    assert env == {
        "CCD_NOTIFY_ID": notice.id, "CCD_NOTIFY_EVENT": "job_failed", "CCD_WORKFLOW_ID": WID,
        "CCD_WORKFLOW": "mnist", "CCD_STATE": "failed", "CCD_WORKFLOW_STATE": "running",
        "CCD_JOB": "train", "CCD_ATTEMPT": "2", "CCD_EXIT_CODE": "3",
        "CCD_REASON": "exit 3: boom", "CCD_TIME": str(T0),
        "CCD_SUMMARY": f"job train of mnist ({WID}) failed (attempt 2): exit 3: boom",
    }  # fmt: skip
    # a workflow's end has no job: empty, never the text "None"
    [end] = due(Trigger(14, WID, None, T0, "succeeded"), [hook()])
    assert environment(payload(end, facts()))["CCD_JOB"] == ""


def test_the_mail_is_an_rfc_5322_message_for_sendmail_t() -> None:
    notifier = Notifier(mail="Ops <ops@example.org>, me@example.org")
    [notice] = due(Trigger(12, WID, None, T0, "failed", "internal error"), [notifier])
    message = mail_message(notifier, payload(notice, facts()), "ccd <me@lab>", "lab")
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["To"] == "Ops <ops@example.org>, me@example.org"
    assert parsed["From"] == "ccd <me@lab>"
    assert parsed["Subject"] == (
        f"ccd: mnist ({WID}) failed: 3 succeeded, 1 failed; internal error"
    )
    assert parsed["Message-ID"].endswith("@lab>") and notice.id in parsed["Message-ID"]
    assert parsed["Date"].datetime.timestamp() == int(T0)
    assert parsed["Auto-Submitted"] == "auto-generated"
    text = parsed.get_content()
    assert text.startswith(f"mnist ({WID}) failed: 3 succeeded, 1 failed; internal error\n")
    assert "reason:    internal error\n" in text and "file:      /work/mnist.yaml\n" in text
    assert "job:" not in text  # no job, no line


def test_the_retry_schedule_grows_and_is_capped() -> None:
    assert retry_delays(8, 2.0, 2.0, 60.0) == [2, 4, 8, 16, 32, 60, 60]
    assert sum(retry_delays(8, 2.0, 2.0, 60.0)) == 182  # the default: ~3 minutes
    assert retry_delays(3, 0.5, 1.0, 60.0) == [0.5, 0.5]
    assert retry_delays(1, 2.0, 2.0, 60.0) == []


@pytest.mark.parametrize(
    ("status", "again"),
    [(500, True), (503, True), (429, True), (408, True), (404, False), (400, False), (301, False)],
)
def test_which_http_answers_are_tried_again(status: int, again: bool) -> None:
    assert retryable(status) is again


def test_a_notifier_is_described_without_its_url_or_arguments() -> None:
    assert describe(hook()) == "webhook hooks.example.org"
    assert describe(hook(url="http://127.0.0.1:8080/x?token=1")) == "webhook 127.0.0.1:8080"
    assert describe(Notifier(command="curl -H 'Authorization: abc' x")) == "command curl"
    assert describe(Notifier(mail="me@example.org")) == "mail to me@example.org"


def test_outcome_events_fold_into_no_row_and_read_as_a_line() -> None:
    trigger = Trigger(12, WID, "train", T0, "failed")
    notice = Notice(trigger, hook(), notifier_key(hook()))
    sent = outcome_data(notice, 1)
    failed = outcome_data(notice, 8, "HTTP 503 Service Unavailable")
    assert sent == {
        "notice": notice.id, "on": "job_failed", "to": "webhook hooks.example.org",
        "attempts": 1, "trigger": 12,
    }  # fmt: skip
    workflow = WorkflowRow(WID, "mnist", "failed", "x.yaml", T0, T0, T0)
    job = JobRow(
        WID, "train", 0, "failed", 1, None, None, 3, "exit 3", "localhost", "local", "[]",
        None, "{}", T0, T0, T0,
    )  # fmt: skip
    fold = Fold({WID: workflow}, {(WID, "train"): job})
    before = (repr(workflow), repr(job))
    for kind, data in ((EventKind.NOTIFY_SENT, sent), (EventKind.NOTIFY_FAILED, failed)):
        assert fold.apply(Event(WID, "train", kind, data, T0 + 5)) == kind.value
        assert fold.apply(Event(WID, None, kind, data, T0 + 5)) == kind.value
    assert (repr(workflow), repr(job)) == before
    with pytest.raises(BadEvent):
        fold.apply(Event(WID, "nope", EventKind.NOTIFY_SENT, sent))
    line = event_text({"kind": "notify.sent", "job": "train", "data": sent})
    assert line == "train notified webhook hooks.example.org (job_failed)"
    line = event_text({"kind": "notify.failed", "job": None, "data": failed})
    assert line == (
        "workflow notifying webhook hooks.example.org (job_failed) failed after 8 attempt(s): "
        "HTTP 503 Service Unavailable"
    )


def test_watch_shows_an_outcome_as_a_line_and_changes_nothing() -> None:
    from ccd.cli.watch import WatchModel
    from tests.unit.cli_data import event, make_job, make_status

    model = WatchModel(make_status(make_job("train", "failed", attempt=2), state="failed"))
    before = (repr(model.workflow), repr(model.jobs))
    data = {"notice": "9-x", "on": "job_failed", "to": "command notify-send", "attempts": 1}
    [line] = model.apply(event("notify.sent", "train", data, at=5))
    assert line.endswith(" train notified command notify-send (job_failed)")
    failed = {**data, "attempts": 3, "error": "the command exited 1"}
    [line] = model.apply(event("notify.failed", None, failed, at=6))
    assert line.endswith(
        " workflow notifying command notify-send (job_failed) failed after 3 attempt(s): "
        "the command exited 1"
    )
    assert (repr(model.workflow), repr(model.jobs)) == before
