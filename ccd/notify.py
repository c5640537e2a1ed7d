"""Notifications: which events make which notifiers speak, and what they say (pure).

A *trigger* is a committed event a notifier may be ``on``: a workflow entering a
final state, or a job entering ``failed`` or ``timed_out`` (a failed attempt that
is retried enters ``queued``, so only a failure for good counts).  A *notice* is
one notifier's notification of one trigger; its id (the trigger's seq and a digest
of the notifier) is what the ``notify.sent`` / ``notify.failed`` events record, so
a new daemon knows which notices are still owed (`ccd.daemon.notifier` delivers
them; this module decides and words, and does no I/O).

What a notice says is one JSON object (`payload`): the webhook's body, the
command's stdin (and its fields in environment variables, `environment`), and the
facts of the mail (`mail_message`).  None of it holds a URL: the summary is safe to
forward, and the events name a webhook by its host only (`describe`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Final
from urllib.parse import urlsplit

from ccd.events import EventKind
from ccd.spec.notify import Notifier
from ccd.states import FINAL_WORKFLOW_STATES, JobState

#: the job states that are a job's failure for good
JOB_FAILURES: Final = frozenset({JobState.FAILED.value, JobState.TIMED_OUT.value})
#: the event names a job's failure and any workflow end also go by
JOB_FAILED: Final = "job_failed"
ENDED: Final = "ended"
#: the order job counts are listed in a summary
_COUNT_ORDER: Final = ("succeeded", "failed", "timed_out", "cancelled", "skipped")
#: HTTP answers worth another attempt: the receiver is busy, down or timed out;
#: any other 4xx (and a redirect, which is not followed) would be answered the same
RETRYABLE_STATUS: Final = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class Trigger:
    """A committed event that notifiers may be on."""

    seq: int
    workflow_id: str
    #: the job that failed; None for a workflow's end
    job: str | None
    time: float
    #: the state entered (the workflow's, or the job's)
    state: str
    reason: str | None = None
    exit_code: int | None = None
    attempt: int | None = None

    @property
    def event(self) -> str:
        """The name this trigger goes by in a notice (``failed``, ``job_failed``, ...)."""
        return JOB_FAILED if self.job is not None else self.state

    @property
    def names(self) -> frozenset[str]:
        """Every ``on:`` value that matches it."""
        return frozenset({JOB_FAILED}) if self.job is not None else frozenset({self.state, ENDED})


def trigger_of(
    seq: int, workflow_id: str, job: str | None, when: float, kind: str, data: Mapping[str, Any]
) -> Trigger | None:
    """The trigger an event is, or None (most events are none)."""
    state = data.get("state")
    if kind == EventKind.WORKFLOW_STATE and job is None and state in FINAL_WORKFLOW_STATES:
        return Trigger(seq, workflow_id, None, when, str(state), _text(data.get("reason")))
    if kind == EventKind.JOB_STATE and job is not None and state in JOB_FAILURES:
        exit_code, attempt = data.get("exit_code"), data.get("attempt")
        return Trigger(
            seq, workflow_id, job, when, str(state), _text(data.get("reason")),
            exit_code if isinstance(exit_code, int) else None,
            attempt if isinstance(attempt, int) else None,
        )  # fmt: skip
    return None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def notifier_key(notifier: Notifier) -> str:
    """A short digest of what the notifier is: the same entry in the config and in a
    workflow (or twice in one list) is one notifier, and notifies once."""
    text = json.dumps(notifier.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Notice:
    """One notifier's notification of one trigger."""

    trigger: Trigger
    notifier: Notifier
    #: `notifier_key` of the notifier
    key: str

    @property
    def id(self) -> str:
        return f"{self.trigger.seq}-{self.key}"


def due(trigger: Trigger, notifiers: Iterable[Notifier]) -> list[Notice]:
    """The notices `trigger` makes: one per distinct notifier on one of its names."""
    names = trigger.names
    found: dict[str, Notice] = {}
    for notifier in notifiers:
        if names.isdisjoint(notifier.on):
            continue
        key = notifier_key(notifier)
        found.setdefault(key, Notice(trigger, notifier, key))
    return list(found.values())


@dataclass(frozen=True, slots=True)
class Facts:
    """What the store knows of the trigger's workflow when its notice is first sent."""

    name: str
    state: str
    source: str = ""
    created: float | None = None
    #: jobs per state (read for a workflow's end only)
    counts: Mapping[str, int] = field(default_factory=dict)


def payload(notice: Notice, facts: Facts) -> dict[str, Any]:
    """The notification as JSON: the webhook's body, the command's stdin."""
    trigger = notice.trigger
    text = summary(notice, facts)
    return {
        "id": notice.id,
        "event": trigger.event,
        "workflow_id": trigger.workflow_id,
        "workflow": facts.name,
        "state": trigger.state,
        "workflow_state": trigger.state if trigger.job is None else facts.state,
        "job": trigger.job,
        "attempt": trigger.attempt,
        "exit_code": trigger.exit_code,
        "reason": trigger.reason,
        "time": trigger.time,
        "created": facts.created,
        "counts": dict(facts.counts),
        "source": facts.source,
        "summary": text,
        # what chat services' incoming webhooks (Slack, Mattermost) show
        "text": f"ccd: {text}",
    }


def summary(notice: Notice, facts: Facts) -> str:
    """One line that says what happened: ``mnist (a1b2c3d4) failed: 3 succeeded, 1 failed``."""
    trigger = notice.trigger
    state = trigger.state.replace("_", " ")
    if trigger.job is not None:
        attempt = f" (attempt {trigger.attempt})" if trigger.attempt else ""
        head = f"job {trigger.job} of {facts.name} ({trigger.workflow_id}) {state}{attempt}"
        return head + (f": {trigger.reason}" if trigger.reason else "")
    text = f"{facts.name} ({trigger.workflow_id}) {state}"
    counts = _counts_text(facts.counts)
    if counts:
        text += f": {counts}"
    return text + (f"; {trigger.reason}" if trigger.reason else "")


def _counts_text(counts: Mapping[str, int]) -> str:
    order = [*_COUNT_ORDER, *sorted(set(counts) - set(_COUNT_ORDER))]
    return ", ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in order if counts.get(s))


def environment(body: Mapping[str, Any]) -> dict[str, str]:
    """The command's environment variables for a notification (`payload`'s fields)."""
    names = {
        "CCD_NOTIFY_ID": "id", "CCD_NOTIFY_EVENT": "event", "CCD_WORKFLOW_ID": "workflow_id",
        "CCD_WORKFLOW": "workflow", "CCD_STATE": "state", "CCD_WORKFLOW_STATE": "workflow_state",
        "CCD_JOB": "job", "CCD_ATTEMPT": "attempt", "CCD_EXIT_CODE": "exit_code",
        "CCD_REASON": "reason", "CCD_TIME": "time", "CCD_SUMMARY": "summary",
    }  # fmt: skip
    return {var: "" if body.get(key) is None else str(body[key]) for var, key in names.items()}


def mail_message(
    notifier: Notifier, body: Mapping[str, Any], sender: str, domain: str
) -> EmailMessage:
    """An RFC 5322 message of the notification, for ``sendmail -t`` (which reads the
    recipients from To:); `sender` is the From: address, `domain` the Message-ID's."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notifier.mail or ""
    message["Subject"] = f"ccd: {body['summary']}"[:200]
    message["Date"] = formatdate(float(body["time"]), localtime=True)
    message["Message-ID"] = make_msgid(idstring=str(body["id"]), domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message.set_content(_mail_text(body))
    return message


def _mail_text(body: Mapping[str, Any]) -> str:
    rows = [
        ("workflow", f"{body['workflow']} ({body['workflow_id']})"),
        ("state", body["state"]),
        ("job", body["job"]),
        ("attempt", body["attempt"]),
        ("exit code", body["exit_code"]),
        ("reason", body["reason"]),
        ("at", time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(float(body["time"])))),
        ("file", body["source"] or None),
    ]
    lines = [str(body["summary"]), ""]
    lines += [f"{label + ':':<11}{value}" for label, value in rows if value is not None]
    lines += ["", f"ccctl status {body['workflow_id']}   # for the details", "-- ccd"]
    return "\n".join(lines) + "\n"


def retry_delays(attempts: int, delay: float, backoff: float, max_delay: float) -> list[float]:
    """Seconds to wait before each attempt after the first: `delay`, then times
    `backoff` after each failure, at most `max_delay`."""
    return [min(max_delay, delay * backoff**n) for n in range(max(0, attempts - 1))]


def retryable(status: int) -> bool:
    """Whether an HTTP answer other than 2xx is worth another attempt."""
    return status >= 500 or status in RETRYABLE_STATUS


def describe(notifier: Notifier) -> str:
    """The notifier in an event or a log line, without its URL (which may hold a
    token) or its command's arguments: ``webhook hooks.example.org``."""
    if notifier.webhook:
        parts = urlsplit(notifier.webhook)
        return f"webhook {parts.hostname}" + (f":{parts.port}" if parts.port else "")
    if notifier.command:
        words = notifier.command.split()
        return f"command {words[0]}" if words else "command"
    return f"mail to {notifier.mail}"


def outcome_data(notice: Notice, attempts: int, error: str | None = None) -> dict[str, Any]:
    """The data of the ``notify.sent`` (no `error`) or ``notify.failed`` event."""
    data: dict[str, Any] = {
        "notice": notice.id,
        "on": notice.trigger.event,
        "to": describe(notice.notifier),
        "attempts": attempts,
        "trigger": notice.trigger.seq,
    }
    if error is not None:
        data["error"] = error
    return data
