"""Notifiers: the ``notify:`` list of a workflow file or the daemon config (pure).

Each entry sends by one means, on the events it names::

    notify:
      - {on: [failed, job_failed], webhook: https://hooks.example.org/ccd}
      - {command: 'notify-send "ccd: $CCD_WORKFLOW $CCD_STATE"'}
      - {mail: me@example.org, on: [failed], via: /usr/sbin/sendmail}

The events are a workflow's end (``succeeded``, ``failed``, ``cancelled``, or
``ended`` for any of them, the default) and ``job_failed`` (a job failed or timed
out for good, its retries spent). `checked_notify` turns what was written into
`Notifier` models, with a located problem for everything wrong (did-you-mean for
keys and event names); the workflow checker and the daemon config both use it.
"""

from __future__ import annotations

import re
from email.utils import getaddresses
from typing import Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from ccd.spec.hints import Suggestions, show, what
from ccd.spec.positions import PathKey, Report, path_part

#: what a notifier may be ``on``: a workflow's final states, any of them, a job's failure
EVENTS: Final = ("succeeded", "failed", "cancelled", "ended", "job_failed")
#: ``on`` left out: when the workflow is over, however it ended
DEFAULT_ON: Final = ("ended",)
#: how a notifier sends; an entry has exactly one of these keys
KINDS: Final = ("webhook", "command", "mail")
KEYS: Final = ("on", *KINDS, "via")
#: the program ``mail:`` pipes its message to when ``via`` is not given
SENDMAIL: Final = "sendmail"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Notifier(BaseModel):
    """One checked entry of ``notify:``: exactly one of webhook, command, mail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on: list[str] = Field(default_factory=lambda: list(DEFAULT_ON))
    #: an http(s) URL the notification is POSTed to as JSON
    webhook: str | None = None
    #: shell text run with ``sh -c``; the details in its environment, the JSON on stdin
    command: str | None = None
    #: one or more addresses (comma-separated); the message is piped to `via`
    mail: str | None = None
    #: the sendmail-compatible program for ``mail`` (a name on PATH or a path, with
    #: arguments if needed); None: ``sendmail``
    via: str | None = None

    @property
    def kind(self) -> str:
        return "webhook" if self.webhook else "command" if self.command else "mail"


def checked_notify(
    block: object, suggest: Suggestions, root: PathKey = ("notify",)
) -> tuple[list[Notifier], list[Report]]:
    """The notifiers `block` declares (a list of entries, or one entry), and reports
    located under `root`."""
    if block is None:
        return [], []
    entries = [block] if isinstance(block, dict) else block
    if not isinstance(entries, list):
        message = f"notify must be a list of notifiers, not {what(block)}; e.g. {_EXAMPLE}"
        return [], [(root, "wrong-type", message, False)]
    notifiers: list[Notifier] = []
    reports: list[Report] = []
    for index, entry in enumerate(entries):
        path = root if entries is not block else (*root, index)
        found = _entry(entry, path, suggest)
        if isinstance(found, Notifier):
            notifiers.append(found)
        else:
            reports.extend(found)
    return notifiers, reports


_EXAMPLE = "notify: [{on: [failed], webhook: https://example.org/hook}]"


def _entry(entry: object, path: PathKey, suggest: Suggestions) -> Notifier | list[Report]:
    if not isinstance(entry, dict):
        hint = "; write {webhook: URL}, {command: ...} or {mail: ADDRESS}"
        return [(path, "wrong-type", f"a notifier is a mapping, not {what(entry)}{hint}", False)]
    # YAML 1.1 reads a plain `on` as true (as in GitHub's workflow files): it is `on`
    body = {("on" if key is True else key): value for key, value in entry.items()}
    reports: list[Report] = []
    for key in entry:
        if key is not True and key not in KEYS:
            message = f"unknown key {show(key)} in a notifier{suggest(key, KEYS)}"
            reports.append(((*path, path_part(key)), "unknown-key", message, True))
    kinds = [kind for kind in KINDS if kind in body]
    if not kinds:
        message = "a notifier needs one of webhook: URL, command: TEXT or mail: ADDRESS"
        reports.append((path, "no-notifier-kind", message, False))
    elif len(kinds) > 1:
        message = (
            f"a notifier sends one way, but this one has {' and '.join(kinds)}; "
            "write one entry for each"
        )
        reports.append(((*path, kinds[1]), "two-notifier-kinds", message, True))
    on_key = "True" if True in entry else "on"
    on = _on(body.get("on"), (*path, on_key), suggest, reports) if "on" in body else None
    values: dict[str, object] = {
        kind: _CHECKS[kind](body[kind], (*path, kind), reports) for kind in kinds
    }
    if "via" in body:
        values["via"] = _via(body, path, reports)
    if reports:
        return reports
    if on is not None:
        values["on"] = on
    return Notifier.model_validate(values)


def _on(value: object, path: PathKey, suggest: Suggestions, reports: list[Report]) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        message = f"on must be a list of events ({', '.join(EVENTS)}), not {what(value)}"
        reports.append((path, "wrong-type", message, False))
        return []
    if not items:
        message = f"on is empty, so this never notifies; leave it out for {DEFAULT_ON[0]}"
        reports.append((path, "bad-value", message, False))
    events: list[str] = []
    for index, item in enumerate(items):
        where = path if items is not value else (*path, index)
        if item in EVENTS:
            if item not in events:
                events.append(str(item))
            continue
        message = (
            f"unknown event {show(item)} in on{suggest(item, EVENTS)}; "
            f"the events are {', '.join(EVENTS)}"
        )
        reports.append((where, "unknown-event", message, False))
    return events


def _text(value: object, path: PathKey, key: str, meaning: str, reports: list[Report]) -> str:
    if not isinstance(value, str):
        reports.append(
            (path, "wrong-type", f"{key} must be text ({meaning}), not {what(value)}", False)
        )
        return ""
    if not value.strip():
        reports.append((path, "bad-value", f"{key} is empty; give {meaning}", False))
    return value.strip()


def _webhook(value: object, path: PathKey, reports: list[Report]) -> str:
    url = _text(value, path, "webhook", "an http:// or https:// URL", reports)
    if url and (problem := url_problem(url)) is not None:
        reports.append((path, "bad-url", f"webhook {url!r}: {problem}", False))
    return url


def url_problem(url: str) -> str | None:
    """What keeps `url` from being a webhook's address, or None."""
    if _CONTROL.search(url) or " " in url:
        return "a URL has no spaces or control characters (percent-encode them)"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return "a webhook is an http:// or https:// URL"
    try:
        parts.port  # noqa: B018 -- urllib checks the port only when it is read
    except ValueError:
        return "its port is not a number from 1 to 65535"
    if not parts.hostname:
        return "the URL names no host"
    return None


def _command(value: object, path: PathKey, reports: list[Report]) -> str:
    return _text(value, path, "command", "a shell command line", reports)


def _mail(value: object, path: PathKey, reports: list[Report]) -> str:
    text = _text(value, path, "mail", "an address, e.g. me@example.org", reports)
    if text and (problem := address_problem(text)) is not None:
        reports.append((path, "bad-address", f"mail {text!r}: {problem}", False))
    return text


def address_problem(text: str) -> str | None:
    """What keeps `text` from being one or more mail addresses (comma-separated), or None."""
    if _CONTROL.search(text):
        return "an address is one line of text"
    for _, address in getaddresses([text]):
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain or " " in address:
            return "give addresses like me@example.org, separated by commas"
    return None


def _via(body: dict[object, object], path: PathKey, reports: list[Report]) -> str:
    where = (*path, "via")
    if "mail" not in body:
        message = "via names the sendmail program of a mail: notifier; this one has no mail:"
        reports.append((where, "bad-value", message, True))
    text = _text(body["via"], where, "via", "a sendmail-compatible program", reports)
    if _CONTROL.search(text):
        reports.append((where, "bad-value", "via is one line of text", False))
    return text


_CHECKS = {"webhook": _webhook, "command": _command, "mail": _mail}
