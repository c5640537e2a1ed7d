"""Notifications: what following the log costs the store, and how late a webhook is.

1. The store benchmark's load (bench/store.py: 1,000 jobs, progress and state
   events in bursts), with the notifier following the log and a webhook notifier
   configured, against the same store with no notifier (same process).
2. From the commit of a workflow's final event to a local receiver (asyncio, in
   the same loop) reading the webhook's POST, over N workflow ends, one at a
   time; baseline: the same POST made by httpx directly after the commit.

    python bench/notify.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Row, new_scratch, print_rows, remove_scratch
from bench.store import BURST, events, workflow_spec
from ccd.config import DaemonConfig
from ccd.daemon.notifier import Notifications
from ccd.events import Event, EventKind
from ccd.store import Store


class Receiver:
    """A minimal HTTP/1.1 receiver: answers 204, wakes whoever waits for the next POST."""

    def __init__(self) -> None:
        self.arrived: asyncio.Queue[float] = asyncio.Queue()
        self.port = 0

    async def start(self) -> asyncio.Server:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.arrived.put_nowait(time.perf_counter())
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def throughput(path: Path, follow: bool, n: int) -> float:
    store = await Store.open(path)
    config = DaemonConfig.model_validate({"notify": [{"webhook": "http://127.0.0.1:9/x"}]})
    notifications = Notifications(store, config) if follow else None
    if notifications is not None:
        await notifications.start()
    await store.record(
        Event("wf", None, EventKind.WORKFLOW_SUBMITTED, {"name": "store", "spec": workflow_spec()})
    )
    batch = events(n)
    start = time.perf_counter()
    for i in range(0, len(batch), BURST):
        for event in batch[i : i + BURST]:
            store.emit(event)
        await asyncio.sleep(0)
    await store.flush()
    elapsed = time.perf_counter() - start
    if notifications is not None:
        await notifications.close()
    await store.close()
    return elapsed


async def latency(path: Path, count: int) -> tuple[list[float], list[float]]:
    import httpx

    receiver = Receiver()
    server = await receiver.start()
    url = f"http://127.0.0.1:{receiver.port}/hook"
    store = await Store.open(path)
    notifications = Notifications(
        store, DaemonConfig.model_validate({"notify": [{"webhook": url}]})
    )
    await notifications.start()
    spec = {"name": "wf", "jobs": {}}
    ccd, direct = [], []
    async with httpx.AsyncClient() as client:
        for i in range(count):
            wid = f"w{i:07d}"
            await store.record(
                Event(wid, None, EventKind.WORKFLOW_SUBMITTED, {"name": "wf", "spec": spec})
            )
            await store.record(Event(wid, None, EventKind.WORKFLOW_STATE, {"state": "succeeded"}))
            committed = time.perf_counter()
            ccd.append(await receiver.arrived.get() - committed)
            before = time.perf_counter()
            await client.post(url, content=b"{}")
            direct.append(await receiver.arrived.get() - before)
    await notifications.close()
    await store.close()
    server.close()
    return ccd, direct


def measure(quick: bool) -> list[Row]:
    n, count = (50_000, 20) if quick else (200_000, 100)
    base = new_scratch("ccd-bench-notify-")
    try:
        with_s = min(asyncio.run(throughput(base / f"w{i}.db", True, n)) for i in range(3))
        without_s = min(asyncio.run(throughput(base / f"o{i}.db", False, n)) for i in range(3))
        ccd, direct = asyncio.run(latency(base / "latency.db", count))
    finally:
        remove_scratch(base)
    rate, base_rate = n / with_s, n / without_s
    median, p95 = statistics.median(ccd), sorted(ccd)[int(0.95 * (len(ccd) - 1))]
    return [
        Row(
            f"notify: store events/s with the notifier following ({n:,} events)",
            "within 10% of without",
            f"{rate:,.0f}/s",
            f"{base_rate:,.0f}/s (no notifier)",
            f"{rate / base_rate:.2f}",
            met=rate >= 0.9 * base_rate,
        ),
        Row(
            f"notify: workflow end committed → webhook received (median, p95 of {count})",
            "≤ 0.25 s",
            f"{median * 1000:.0f} ms, {p95 * 1000:.0f} ms",
            f"{statistics.median(direct) * 1000:.1f} ms (httpx POST)",
            f"{median / statistics.median(direct):.0f}",
            met=p95 <= 0.25,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and workflow ends")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print_rows(measure(args.quick), args.json)


if __name__ == "__main__":
    main()
