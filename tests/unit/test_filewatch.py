"""The file watcher: several readers of one directory (the engine and `logs -f`)
with inotify, and the timed re-read where inotify is not used."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccd.executors import filewatch
from ccd.executors.filewatch import FileWatch, FileWatcher


@pytest.fixture
async def watcher() -> AsyncIterator[FileWatcher]:
    w = FileWatcher(inotify=True)  # whatever CCD_PLATFORM_FALLBACKS says
    w.start()
    assert w.mechanism == "inotify"
    yield w
    await w.close()


async def woken(sub: FileWatch) -> bool:
    """True once `sub` is woken (within 5 s), re-armed for the next change."""
    try:
        async with asyncio.timeout(5):
            await sub.changed.wait()
    except TimeoutError:
        return False
    sub.changed.clear()
    return True


async def test_every_reader_of_a_directory_is_woken(tmp_path: Path, watcher: FileWatcher) -> None:
    engine, logs_f = watcher.watch(tmp_path), watcher.watch(tmp_path)
    assert engine.timeout is None and logs_f.timeout is None  # both really watched
    (tmp_path / "log").write_bytes(b"x")
    assert await woken(engine)
    assert await woken(logs_f)


async def test_a_reader_leaving_keeps_the_others_watch(
    tmp_path: Path, watcher: FileWatcher
) -> None:
    engine, logs_f = watcher.watch(tmp_path), watcher.watch(tmp_path)
    logs_f.close()  # `ccctl logs -f` interrupted while the job runs on
    (tmp_path / "log").write_bytes(b"more")
    assert await woken(engine)
    assert not logs_f.changed.is_set()
    engine.close()
    assert watcher._subscribers == {}


async def test_a_watch_after_all_left_works_again(tmp_path: Path, watcher: FileWatcher) -> None:
    first = watcher.watch(tmp_path)
    first.close()
    again = watcher.watch(tmp_path)
    (tmp_path / "exit").write_text("0\n")
    assert await woken(again)
    again.close()


async def test_without_inotify_readers_re_read_on_a_timer(tmp_path: Path) -> None:
    w = FileWatcher(inotify=False)
    w.start()
    assert w.mechanism == "re-read"
    sub = w.watch(tmp_path)
    assert sub.timeout == filewatch.FALLBACK_INTERVAL
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.wait_for(sub.wait(), 10 * filewatch.FALLBACK_INTERVAL)  # nothing changed
    assert loop.time() - start >= filewatch.FALLBACK_INTERVAL * 0.9
    other = w.watch(tmp_path / "elsewhere")
    assert await woken(sub) and await woken(other)  # one timer wakes every reader
    sub.close()
    other.close()
    assert w._polled == {}
    await asyncio.sleep(1.5 * filewatch.FALLBACK_INTERVAL)
    assert w._tick is None  # no reader left: the timer stopped
    await w.close()
