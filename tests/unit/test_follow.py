"""Following a growing file: every executor's log stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ccd.executors.follow import Signal, follow_file


async def test_a_missing_file_reads_as_empty_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "log"
    chunks = [chunk async for chunk in follow_file(path, Signal(), lambda: True)]
    assert chunks == []
    assert not path.exists()  # the writer creates it, never the reader


async def test_a_file_created_while_waiting_is_read_to_its_end(tmp_path: Path) -> None:
    path = tmp_path / "log"
    waker = Signal()
    finished = False
    got: list[bytes] = []

    async def read() -> None:
        async for chunk in follow_file(path, waker, lambda: finished):
            got.append(chunk)

    reader = asyncio.create_task(read())
    for _ in range(3):
        await asyncio.sleep(0)  # let the reader find no file and wait
    assert not reader.done() and got == []
    path.write_bytes(b"one\n")
    waker.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert b"".join(got) == b"one\n"
    with path.open("ab") as fh:
        fh.write(b"two\n")
    finished = True  # the writer is done: set after its last write, then wake
    waker.set()
    await reader
    assert b"".join(got) == b"one\ntwo\n"


async def test_reading_starts_at_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"0123456789")
    chunks = [chunk async for chunk in follow_file(path, Signal(), lambda: True, offset=4)]
    assert b"".join(chunks) == b"456789"
    at_end = [chunk async for chunk in follow_file(path, Signal(), lambda: True, offset=10)]
    assert at_end == []
