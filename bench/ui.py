"""The web dashboard in a real browser (Debian's chromium, headless): issue #14's figures.

* 5,000-job page: a workflow of 5,000 jobs (waiting on one gate job) opened in the
  browser; navigation timing of the page: its HTML received, DOMContentLoaded (the
  script has run: the page answers clicks) and load. Target: interactive < 2 s.
* 200 jobs reporting: 200 jobs print a progress marker every `--interval` s for
  `--seconds` s while their page is open; per second, how many times the page
  repainted (target ≤ 4) and how late a 50 ms timer in the page fired (p95, max: the
  page's responsiveness), and the events the page applied.
* idle: the 5,000-job page open on a workflow where nothing happens, for 10 s, then
  the workflow list: the daemon's CPU seconds (utime + stime from /proc) per second.
  Target: ~0.

    python bench/ui.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from bench.common import BenchDaemon, Row, new_scratch, percentile, print_rows, remove_scratch
from ccd.cli.client import path_of

CONFIG = "hosts:\n  localhost:\n    max_jobs: 1000\n"
#: the page's own probe: how late a 50 ms timer fires (the page's responsiveness)
PROBE = """
window.ccdLag = [];
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  window.ccdLag.push(now - last - 50);
  last = now;
}, 50);
"""


def densest_second(times: list[float]) -> int:
    """The most repaints in any 1 s window (the page notes each repaint's time)."""
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= 1000:
            first += 1
        most = max(most, last - first + 1)
    return most


def browser() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1500,1100"):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_page(driver: WebDriver, port: int, wf: str) -> dict[str, float]:
    driver.get(f"http://127.0.0.1:{port}/w/{wf}")
    timing: dict[str, float] = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return {html: n.responseEnd, interactive: n.domContentLoadedEventEnd,"
        " load: n.loadEventEnd, bytes: n.transferSize};"
    )
    return timing


def big_page(
    daemon: BenchDaemon, driver: WebDriver, port: int, base: Path
) -> tuple[str, list[Row]]:
    gate = base / "gate"
    jobs = [f"  gate: {{run: 'while [ ! -e {gate} ]; do sleep 0.5; done'}}"]
    jobs += [f"  j{i}: {{needs: [gate], run: 'true'}}" for i in range(5000)]
    wf, _ = daemon.submit("name: big\njobs:\n" + "\n".join(jobs) + "\n")
    best: dict[str, float] | None = None
    for _ in range(3):  # best of three: the VM is noisy
        timing = open_page(driver, port, wf)
        if best is None or timing["interactive"] < best["interactive"]:
            best = timing
    assert best is not None
    rows = [
        Row("ui 5,000-job page: HTML received", "", f"{best['html'] / 1000:.2f} s"),
        Row(
            "ui 5,000-job page: interactive (DOMContentLoaded)",
            "< 2 s",
            f"{best['interactive'] / 1000:.2f} s",
            met=best["interactive"] < 2000,
        ),
        Row("ui 5,000-job page: load", "", f"{best['load'] / 1000:.2f} s"),
        Row("ui 5,000-job page: bytes", "", f"{best['bytes'] / 1e6:.1f} MB"),
    ]
    return wf, rows


def idle(daemon: BenchDaemon, seconds: float, page: str) -> Row:
    before, start = cpu_seconds(daemon.pid), time.monotonic()
    time.sleep(seconds)  # measuring: nothing is awaited, the page just stays open
    per_second = (cpu_seconds(daemon.pid) - before) / (time.monotonic() - start)
    return Row(
        f"ui idle: daemon CPU with {page} open",
        "~0",
        f"{per_second * 1000:.1f} ms/s",
        met=per_second < 0.01,
    )


def reporting(
    daemon: BenchDaemon, driver: WebDriver, port: int, seconds: float, interval: float
) -> list[Row]:
    count = int(seconds / interval)
    job = (
        f'for i in $(seq 1 {count}); do echo "::ccd progress=$((i * 100 / {count}))"; '
        f"sleep {interval}; done"
    )
    jobs = "\n".join(f"  r{i}: {{run: '{job}'}}" for i in range(200))
    wf, _ = daemon.submit(f"name: reporting\njobs:\n{jobs}\n")
    open_page(driver, port, wf)
    driver.execute_script(PROBE)
    started = time.monotonic()
    state = daemon.wait(wf)
    took = time.monotonic() - started
    times: list[float] = driver.execute_script("return window.ccdPaintTimes || []")
    lag: list[float] = driver.execute_script("return window.ccdLag")
    most = densest_second(times)
    gap = min((b - a for a, b in itertools.pairwise(times)), default=0.0)
    events = sum(
        1 for line in daemon.client.stream_lines(path_of("workflows", wf, "events")) if line.strip()
    )
    return [
        Row(
            f"ui 200 jobs reporting every {interval:g} s: repaints in any 1 s (max)",
            "≤ 4",
            f"{most} (shortest gap {gap:.0f} ms; {events} events in {took:.0f} s, {state})",
            met=most <= 4,
        ),
        Row(
            "ui 200 jobs reporting: a 50 ms timer's lateness p95 / max",
            "",
            f"{percentile(lag, 95):.0f} / {max(lag, default=0):.0f} ms",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    base = new_scratch("ccd-bench-ui-")
    daemon = BenchDaemon(base, CONFIG)
    driver = browser()
    try:
        body = json.dumps({"host": "127.0.0.1", "port": None}).encode()
        link: dict[str, Any] = daemon.client.call(
            "POST", "/v1/ui", body=body, headers={"Content-Type": "application/json"}
        )
        driver.get(link["url"])
        wf, rows = big_page(daemon, driver, int(link["port"]), base)
        rows.append(idle(daemon, 5 if args.quick else 10, "the 5,000-job page"))
        driver.get(f"http://127.0.0.1:{link['port']}/")  # it follows every event
        rows.append(idle(daemon, 5 if args.quick else 10, "the workflow list"))
        daemon.client.call("POST", path_of("workflows", wf, "cancel"))
        seconds = 10 if args.quick else 30
        rows += reporting(daemon, driver, int(link["port"]), seconds, args.interval)
    finally:
        driver.quit()
        daemon.close()
        remove_scratch(base)
    print_rows(rows, args.json)


if __name__ == "__main__":
    main()
