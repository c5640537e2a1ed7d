"""The dashboard's list of workflows: a page and a count from the store, filtered there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccd.events import Event, EventKind
from ccd.store import Store


def spec(name: str) -> dict[str, object]:
    return {"name": name, "source": "", "jobs": {"a": {"name": "a", "run": "true", "needs": []}}}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "ccd.db")
    # 120 workflows, newest last: 80 "Sweep-i", 40 "other-i"; every 10th failed
    for i in range(120):
        name = f"Sweep-{i}" if i < 80 else f"other-{i}"
        wid = f"w{i:03d}"
        data = {"name": name, "spec": spec(name), "source": ""}
        s.emit(Event(wid, None, EventKind.WORKFLOW_SUBMITTED, data, time=1000.0 + i))
        if i % 10 == 0:
            s.emit(Event(wid, None, EventKind.WORKFLOW_STATE, {"state": "failed"}, 2000.0 + i))
    await s.flush()
    yield s
    await s.close()


async def test_a_page_is_newest_first_with_the_count_of_all(store: Store) -> None:
    rows, total = await store.list_workflows_page("", "", 50, 0)
    assert total == 120
    assert [r["id"] for r in rows[:2]] == ["w119", "w118"] and len(rows) == 50
    rows, _ = await store.list_workflows_page("", "", 50, 100)
    assert [r["id"] for r in rows] == [f"w{i:03d}" for i in range(19, -1, -1)]
    assert rows[0]["counts"] == {"pending": 1}  # the same rows as list_workflows


@pytest.mark.parametrize(
    ("state", "name", "total"),
    [
        ("failed", "", 12),
        ("", "sweep", 80),
        ("", "SWEEP-1", 11),
        ("failed", "other", 4),
        ("", "x", 0),
    ],
)
async def test_filters_by_state_and_part_of_the_name_any_case(
    store: Store, state: str, name: str, total: int
) -> None:
    rows, matched = await store.list_workflows_page(state, name, 200, 0)
    assert matched == total == len(rows)
    assert all(r["state"] == state for r in rows) if state else True
    assert all(name.lower() in r["name"].lower() for r in rows)


async def test_past_the_end_is_empty(store: Store) -> None:
    assert await store.list_workflows_page("", "", 50, 500) == ([], 120)
