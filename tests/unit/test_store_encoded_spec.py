"""A submitted spec already encoded as JSON (by the engine) is stored as is, once per place."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ccd.events import Event, EventKind
from ccd.fold import EncodedJSON, dumps, dumps_data
from ccd.spec.model import Job, Workflow
from ccd.store import Store


def test_event_data_embeds_encoded_values_as_they_are() -> None:
    data = {"name": "wf ü", "spec": EncodedJSON('{"a":[1,2.5,"x"]}'), "source": "<s>"}
    assert dumps_data(data) == '{"name":"wf ü","spec":{"a":[1,2.5,"x"]},"source":"<s>"}'
    plain = {"name": "wf", "n": [1, None]}
    assert dumps_data(plain) == dumps(plain)


async def test_an_encoded_spec_makes_the_same_rows_as_a_plain_one(tmp_path: Path) -> None:
    spec = Workflow(
        name="wf",
        jobs={
            "a": Job(name="a", run="true", workdir="/w"),
            "b": Job(name="b", run="echo ü", needs=["a"], host="h", executor="ssh", workdir="~"),
        },
        source="/w/wf.yaml",
    )
    text = spec.model_dump_json()
    store = await Store.open(tmp_path / "ccd.db")
    try:
        for wid, value in [("w1", EncodedJSON(text)), ("w2", spec.model_dump(mode="json"))]:
            data = {"name": spec.name, "spec": value, "source": spec.source}
            await store.record(Event(wid, None, EventKind.WORKFLOW_SUBMITTED, data))
        one, two = await store.get_jobs("w1"), await store.get_jobs("w2")
        assert [{**j, "workflow_id": "", "updated": 0} for j in one] == [
            {**j, "workflow_id": "", "updated": 0} for j in two
        ]
        assert [(j["name"], j["host"], j["needs"]) for j in one] == [
            ("a", "localhost", []),
            ("b", "h", ["a"]),
        ]
        assert await store.get_spec("w1") == await store.get_spec("w2") == json.loads(text)
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "ccd.db") as db:
        (stored,) = db.execute("SELECT spec FROM workflows WHERE id = 'w1'").fetchone()
        (event,) = db.execute("SELECT data FROM events WHERE workflow_id = 'w1'").fetchone()
    assert stored == text  # the engine's text, not a second encoding
    assert json.loads(event)["spec"] == json.loads(text)
