"""A checked workflow back as canonical YAML: the text `ccctl export` and `to_yaml` give.

The text is written from the model's JSON (``Workflow.model_dump(mode="json")``,
which is also what the daemon stores), so it says what ran, not how it was
written: defaults merged into each job, paths absolute, every job's working
directory explicit.  It validates again to the same model, whatever directory it
is read from (only `source`, the file it was read from, differs).

Two things are folded back to how a file writes them: the elements of an array
job become the one job with ``array:`` (a count when the values are 0..N-1), and
a ``needs`` listing every element of an array names the array.  Every other key
is the model's value as is, and only where it differs from the model's default,
so a job key added to `ccd.spec.fields` later is exported without a change here,
as long as its check accepts the value it produced (paths already absolute,
durations already seconds).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from ccd.spec.fields import FIELD_CHECKS
from ccd.spec.model import Job, Workflow

__all__ = ["export_data", "export_yaml", "workflow_yaml"]

#: keys the export writes itself rather than copying from the model
_OWN_KEYS = frozenset({"name", "needs", "array"})


def workflow_yaml(spec: Workflow) -> str:
    """The canonical YAML of a checked workflow."""
    return export_yaml(spec.model_dump(mode="json"))


def export_yaml(dumped: dict[str, Any]) -> str:
    """The canonical YAML of a workflow's JSON form (as stored by the daemon)."""
    return yaml.dump(
        export_data(dumped),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        # never fold a long command line over two lines
        width=1 << 30,
    )


def export_data(dumped: dict[str, Any]) -> dict[str, Any]:
    """The plain mapping a workflow file holds for a workflow's JSON form."""
    jobs: dict[str, dict[str, Any]] = dumped["jobs"]
    arrays: dict[str, list[str]] = {}
    group_of: dict[str, str] = {}
    for name, job in jobs.items():
        element = job.get("array")
        if element is not None:
            arrays.setdefault(element["group"], []).append(element["value"])
            group_of[name] = element["group"]
    defaults = _defaults()
    out_jobs: dict[str, dict[str, Any]] = {}
    for name, job in jobs.items():
        group = group_of.get(name)
        if group is not None and group in out_jobs:
            continue  # the array was written with its first element
        body = _body(job, defaults)
        needs = list(dict.fromkeys(group_of.get(parent, parent) for parent in job["needs"]))
        if needs:
            body = {"needs": needs, **body}
        if group is not None:
            body["array"] = _array(arrays[group])
        out_jobs[group or name] = body
    data: dict[str, Any] = {"name": dumped["name"]}
    if dumped.get("concurrency") is not None:
        data["concurrency"] = dumped["concurrency"]
    if dumped.get("notify"):
        # each notifier as a file writes it: its keys that are set
        data["notify"] = [{k: v for k, v in n.items() if v is not None} for n in dumped["notify"]]
    if dumped.get("params"):
        # the values it ran with, as defaults: resubmitted as is, it runs the same
        data["params"] = dict(dumped["params"])
    if dumped.get("resume"):
        data["resume"] = True
    data["jobs"] = out_jobs
    return data


def _body(job: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The job's keys that a file can write, in the checker's order, defaults left out."""
    body: dict[str, Any] = {}
    for key in FIELD_CHECKS:
        if key in _OWN_KEYS or key not in job:
            continue
        value = job[key]
        if key in defaults and value == defaults[key]:
            continue
        body[key] = False if key == "cache" and value == "off" else value
    return body


def _array(values: list[str]) -> int | list[str]:
    """``array: N`` when the values are the indexes, else the values."""
    if values == [str(i) for i in range(len(values))]:
        return len(values)
    return values


def _defaults() -> dict[str, Any]:
    """The JSON form of every job field's default (fields without one are always written)."""
    found: dict[str, Any] = {}
    for key, info in Job.model_fields.items():
        if not info.is_required():
            found[key] = info.get_default(call_default_factory=True)
    # through JSON, as the dumped jobs are: an enum becomes its text, a tuple a list
    result: dict[str, Any] = json.loads(json.dumps(found, default=str))
    return result


class _Dumper(yaml.SafeDumper):
    """Safe YAML as a person writes it: text of several lines as a ``|`` block (a
    script reads as one), a list of plain values on one line (``needs: [a, b]``)."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value.rstrip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    flat = all(isinstance(item, str | int | float | bool) for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


_Dumper.add_representer(str, _text)
_Dumper.add_representer(list, _list)
