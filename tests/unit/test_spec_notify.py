"""notify: in a workflow file and in the daemon config: what is accepted, and every
problem at its line with a did-you-mean where one helps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ccd.config import DaemonConfig, load_config
from ccd.errors import CcdError, SpecError
from ccd.spec.export import workflow_yaml
from ccd.spec.notify import Notifier
from ccd.spec.validate import load_workflow_text

JOBS = "jobs: {a: {run: 'true'}}\n"


def notifiers(block: str) -> list[Notifier]:
    return load_workflow_text("name: n\n" + block + JOBS, base_dir="/tmp").notify


def problems(block: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(SpecError) as err:
        load_workflow_text("name: n\n" + textwrap.dedent(block) + JOBS, base_dir="/tmp")
    return [(p.line, p.column, p.code, p.message) for p in err.value.problems]


def test_each_kind_of_notifier_and_the_default_events() -> None:
    found = notifiers(
        textwrap.dedent("""
        notify:
          - on: [failed, job_failed]
            webhook: https://hooks.example.org/T0/B0
          - {command: 'notify-send "$CCD_SUMMARY"'}
          - {mail: 'Ops <ops@example.org>, me@example.org', via: /usr/sbin/sendmail, on: failed}
          - {"on": [succeeded, succeeded], webhook: 'http://127.0.0.1:8080/x'}
    """)
    )
    assert found == [
        Notifier(on=["failed", "job_failed"], webhook="https://hooks.example.org/T0/B0"),
        Notifier(on=["ended"], command='notify-send "$CCD_SUMMARY"'),
        Notifier(
            on=["failed"], mail="Ops <ops@example.org>, me@example.org", via="/usr/sbin/sendmail"
        ),
        Notifier(on=["succeeded"], webhook="http://127.0.0.1:8080/x"),
    ]
    assert [n.kind for n in found] == ["webhook", "command", "mail", "webhook"]


def test_one_notifier_may_be_written_without_the_list() -> None:
    assert notifiers("notify: {webhook: 'https://example.org/h'}\n") == [
        Notifier(webhook="https://example.org/h")
    ]
    assert notifiers("") == []


def test_notifiers_export_and_read_back_the_same() -> None:
    spec = load_workflow_text(
        "name: n\nnotify: [{on: [failed], webhook: 'https://e.org/h'}, {mail: me@e.org}]\n" + JOBS,
        base_dir="/tmp",
    )
    text = workflow_yaml(spec)
    assert "notify:" in text and "null" not in text
    assert load_workflow_text(text, base_dir="/tmp") == spec


def test_an_unknown_event_gets_a_did_you_mean_at_its_place() -> None:
    found = problems("""
        notify:
          - on: [failed, job_faild]
            webhook: https://example.org/h
          - {on: finished, command: 'true'}
    """)
    assert found == [
        (
            4, 18, "unknown-event",
            "unknown event 'job_faild' in on (did you mean 'job_failed'?); the events are "
            "succeeded, failed, cancelled, ended, job_failed",
        ),
        (
            6, 10, "unknown-event",
            "unknown event 'finished' in on; the events are succeeded, failed, cancelled, "
            "ended, job_failed",
        ),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/h", "a webhook is an http:// or https:// URL"),
        ("example.org/h", "a webhook is an http:// or https:// URL"),
        ("https:///h", "the URL names no host"),
        ("https://example.org:99999/h", "its port is not a number from 1 to 65535"),
        ("https://example.org/a b", "a URL has no spaces or control characters"),
    ],
)
def test_a_webhook_must_be_an_http_url(url: str, why: str) -> None:
    [(line, _, code, message)] = problems(f"notify: [{{webhook: '{url}'}}]\n")
    assert (line, code) == (2, "bad-url") and message.startswith(f"webhook {url!r}: {why}")


def test_one_entry_sends_one_way_and_needs_one() -> None:
    found = problems("""
        notify:
          - webhook: https://example.org/h
            mail: me@example.org
          - {on: [failed]}
          - {mail: me@example.org, webhok: x}
          - {command: 'true', via: sendmail}
          - https://example.org/h
    """)
    assert [(line, code) for line, _, code, _ in found] == [
        (5, "two-notifier-kinds"), (6, "no-notifier-kind"), (7, "unknown-key"),
        (8, "bad-value"), (9, "wrong-type"),
    ]  # fmt: skip
    messages = [message for *_, message in found]
    assert messages[0] == (
        "a notifier sends one way, but this one has webhook and mail; write one entry for each"
    )
    assert "(did you mean 'webhook'?)" in messages[2]
    assert messages[3].startswith("via names the sendmail program of a mail: notifier")


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ("{mail: 'not an address'}", "bad-address"),
        ("{mail: ''}", "bad-value"),
        ("{command: 3}", "wrong-type"),
        ("{on: [], command: 'true'}", "bad-value"),
        ("{on: {failed: 1}, command: 'true'}", "wrong-type"),
    ],
)
def test_bad_values_of_an_entry(entry: str, code: str) -> None:
    assert [c for _, _, c, _ in problems(f"notify: [{entry}]\n")] == [code]


def test_notify_must_be_a_list() -> None:
    [(line, _, code, _)] = problems("notify: https://example.org/h\n")
    assert (line, code) == (2, "wrong-type")


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_daemon_config_takes_notifiers_and_delivery_settings(tmp_path: Path) -> None:
    loaded = load_config(
        config(
            tmp_path,
            """
            notify:
              - {on: [failed], webhook: 'https://example.org/h'}
            notify_delivery: {attempts: 3, delay: 0.5, timeout: 2}
            """,
        )
    )
    assert loaded.notify == [Notifier(on=["failed"], webhook="https://example.org/h")]
    delivery = loaded.notify_delivery
    assert (delivery.attempts, delivery.delay, delivery.backoff, delivery.timeout) == (3, 0.5, 2, 2)
    assert DaemonConfig().notify == [] and DaemonConfig().notify_delivery.attempts == 8


def test_the_daemon_config_says_every_problem_with_its_line(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        """
        max_jobs: 4
        notify:
          - on: [faild]
            webhook: https://example.org/h
          - {command: 'true', mail: me@example.org}
        notify_delivery: {attempts: 0, dealy: 1}
        """,
    )
    with pytest.raises(CcdError) as err:
        load_config(path)
    assert err.value.message.splitlines() == [
        f"{path}: invalid daemon config",
        f"  {path}:4:10: unknown event 'faild' in on (did you mean 'failed'?); the events are "
        "succeeded, failed, cancelled, ended, job_failed [unknown-event]",
        f"  {path}:6:23: a notifier sends one way, but this one has command and mail; write one "
        "entry for each [two-notifier-kinds]",
        "  notify_delivery.attempts: Input should be greater than or equal to 1",
        "  notify_delivery.dealy: unknown key 'dealy' (did you mean 'delay'?)",
    ]


def test_a_config_built_in_code_gets_the_same_checks() -> None:
    with pytest.raises(ValueError, match="unknown event 'x' in on"):
        DaemonConfig.model_validate({"notify": [{"on": ["x"], "webhook": "https://e.org/h"}]})


def test_the_python_api_takes_notifiers_with_the_same_checks() -> None:
    from ccd.sdk.builder import Workflow

    flow = Workflow("n", notify=[{"on": ["failed"], "webhook": "https://e.org/h"}])
    flow.job("a", run="true")
    assert flow.validate(known_hosts=()).notify == [
        Notifier(on=["failed"], webhook="https://e.org/h")
    ]
    bad = Workflow("n", notify=[{"on": ["faild"], "webhook": "https://e.org/h"}])
    bad.job("a", run="true")
    with pytest.raises(SpecError, match=r"unknown event 'faild' in on \(did you mean 'failed'\?\)"):
        bad.validate(known_hosts=())
