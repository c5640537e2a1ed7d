"""The dashboard's other pages and controls in chromium: the list's filters and
paging, "load more" in the log, retry, the downloads and a job's neighbourhood.

The browser is conftest.py's, the waits and looks helpers.py's.
"""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from ccd.spec.validate import load_workflow_text
from tests.browser.helpers import artifacts, logged_in, row, wait
from tests.conftest import DaemonProc


def listed(driver: WebDriver) -> list[str]:
    # in one script: the table refreshes itself every few seconds, and an element
    # found before a refresh is gone after it
    names: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#workflow-list tbody td:first-child a')]"
        ".map((a) => a.textContent)"
    )
    return names


def test_list_filters_by_name_and_state_and_pages_newest_first(
    browser: WebDriver,
    daemon: DaemonProc,
) -> None:
    ids = [daemon.submit(f"name: alpha-{i}\njobs:\n  a: {{run: 'true'}}\n") for i in range(30)]
    ids += [daemon.submit(f"name: beta-{i}\njobs:\n  a: {{run: 'true'}}\n") for i in range(24)]
    broken = daemon.submit("name: broken\njobs:\n  a: {run: 'exit 1'}\n")
    assert daemon.wait_final(broken)["state"] == "failed"
    port = logged_in(browser, daemon)
    wait(browser, "the first page", lambda d: len(listed(d)) == 50)
    assert listed(browser)[:3] == ["broken", "beta-23", "beta-22"]  # newest first
    browser.find_element(By.LINK_TEXT, "older ›").click()
    wait(
        browser, "the second page", lambda d: listed(d) == [f"alpha-{i}" for i in range(4, -1, -1)]
    )
    assert "page 2 of 2" in browser.find_element(By.CSS_SELECTOR, ".pager").text

    browser.get(f"http://127.0.0.1:{port}/")
    browser.find_element(By.ID, "name-filter").send_keys("beta-1")
    wait(
        browser,
        "the name filter",
        lambda d: sorted(listed(d)) == sorted(["beta-1", *(f"beta-1{i}" for i in range(10))]),
    )
    assert "name=beta-1" in browser.current_url  # the filter is in the address, to share
    browser.find_element(By.ID, "name-filter").clear()
    browser.find_element(By.CSS_SELECTOR, '#state-filter option[value="failed"]').click()
    wait(browser, "the state filter", lambda d: listed(d) == ["broken"])
    row_text = browser.find_element(By.CSS_SELECTOR, "#workflow-list tbody tr").text
    assert "failed" in row_text and "1/1" in row_text
    browser.save_screenshot(str(artifacts() / "workflow-list.png"))


def test_log_pane_shows_the_last_mib_and_loads_more(
    browser: WebDriver,
    daemon: DaemonProc,
) -> None:
    # 1.5 MiB of 100-byte lines between a first and a last line
    job = "echo FIRST; yes 'filler line .........................................................................................' | head -n 15000; echo LAST"
    wf = daemon.submit(f'name: chatty\njobs:\n  talk: {{run: "{job}"}}\n')
    assert daemon.wait_final(wf)["state"] == "succeeded"
    logged_in(browser, daemon, f"/w/{wf}")
    row(browser, "talk").click()
    log = browser.find_element(By.ID, "log")
    wait(browser, "the end of the log", lambda d: "LAST" in log.text[-200:])
    assert "FIRST" not in log.text
    more = browser.find_element(By.ID, "load-more")
    assert more.is_displayed()
    shown = len(browser.find_elements(By.CSS_SELECTOR, "#log div"))
    assert 9000 < shown < 11000, shown  # about 1 MiB of 100-byte lines
    more.click()
    wait(
        browser,
        "the start of the log",
        lambda d: d.find_element(By.CSS_SELECTOR, "#log div").text == "FIRST",
    )
    assert not more.is_displayed()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#log div")) == 15002


def test_retry_asks_first_and_runs_the_failed_jobs_again(
    browser: WebDriver,
    daemon: DaemonProc,
    tmp_path: Path,
) -> None:
    ok = tmp_path / "ok"
    wf = daemon.submit(
        f"name: flaky\njobs:\n  try: {{run: 'if [ -e {ok} ]; then echo fine; else echo missing; exit 1; fi'}}\n"
        "  then: {needs: [try], run: 'true'}\n"
    )
    assert daemon.wait_final(wf)["state"] == "failed"
    logged_in(browser, daemon, f"/w/{wf}")
    retry = browser.find_element(By.ID, "retry-workflow")
    assert retry.is_enabled()
    assert not browser.find_element(By.ID, "cancel-workflow").is_enabled()
    retry.click()
    dialog = browser.find_element(By.ID, "confirm")
    wait(browser, "the confirmation", lambda d: dialog.is_displayed())
    browser.find_element(By.ID, "confirm-no").click()  # "keep it": nothing happens
    wait(browser, "the dialog closed", lambda d: not dialog.is_displayed())
    assert daemon.status(wf)["state"] == "failed"
    ok.touch()
    retry.click()
    wait(browser, "the confirmation again", lambda d: dialog.is_displayed())
    assert "flaky" in browser.find_element(By.ID, "confirm-text").text
    browser.find_element(By.ID, "confirm-ok").click()
    state = browser.find_element(By.ID, "wf-state")
    wait(browser, "the retried workflow succeeded", lambda d: state.text == "succeeded")
    assert row(browser, "try").find_element(By.CSS_SELECTOR, ".c-attempt").text == "2"
    assert row(browser, "then").find_element(By.CSS_SELECTOR, ".c-state").text == "succeeded"

    # the job's panel: what `ccctl status WF try` says, and either attempt's log
    row(browser, "try").click()
    detail = browser.find_element(By.ID, "job-detail")
    wait(browser, "the job's detail", lambda d: "run directory" in detail.text)
    assert str(daemon.state_dir / "runs" / wf / "try" / "2") in detail.text
    log = browser.find_element(By.ID, "log")
    wait(browser, "attempt 2's log", lambda d: log.text == "fine")
    browser.find_element(By.CSS_SELECTOR, '#log-attempt option[value="1"]').click()
    wait(browser, "attempt 1's log", lambda d: log.text == "missing")


def fetch_text(driver: WebDriver, element_id: str) -> str:
    """What the link downloads, fetched by the page itself (with its cookie)."""
    text: str = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
           fetch(document.getElementById(arguments[0]).href)
             .then((r) => r.ok ? r.text() : 'HTTP ' + r.status).then(done);""",
        element_id,
    )
    return text


def test_downloads_are_the_workflow_as_yaml_and_the_graph_as_svg(
    browser: WebDriver,
    daemon: DaemonProc,
) -> None:
    text = textwrap.dedent("""
        name: chain
        jobs:
          a: {run: "true"}
          b: {needs: [a], run: "true"}
          c: {needs: [b], run: "true"}
          d: {needs: [c], run: "true"}
    """)
    wf = daemon.submit(text)
    daemon.wait_final(wf)
    logged_in(browser, daemon, f"/w/{wf}")
    yaml_text = fetch_text(browser, "download-yaml")
    assert load_workflow_text(yaml_text.encode(), source="<export>", base_dir=None).name == "chain"
    assert browser.find_element(By.ID, "download-yaml").get_attribute("download") == "chain.yaml"
    svg = fetch_text(browser, "download-svg")
    assert "<svg" in svg and "<title>d</title>" in svg


def graph_nodes(driver: WebDriver) -> set[str]:
    # in one script: the graph is swapped whole, which leaves found elements stale
    names: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#graph g.node > title')].map((t) => t.textContent)"
    )
    return set(names)


def test_a_jobs_neighbourhood_and_back_to_the_whole_graph(
    browser: WebDriver,
    daemon: DaemonProc,
) -> None:
    text = "name: chain\njobs:\n  a: {run: 'true'}\n  b: {needs: [a], run: 'true'}\n  c: {needs: [b], run: 'true'}\n  d: {needs: [c], run: 'true'}\n"
    wf = daemon.submit(text)
    daemon.wait_final(wf)
    logged_in(browser, daemon, f"/w/{wf}")
    wait(browser, "the whole graph", lambda d: graph_nodes(d) == {"a", "b", "c", "d"})
    row(browser, "c").click()
    browser.find_element(By.ID, "around-job").click()
    wait(browser, "c and its neighbours", lambda d: graph_nodes(d) == {"b", "c", "d"})
    browser.find_element(By.ID, "graph-all").click()
    wait(browser, "the whole graph again", lambda d: graph_nodes(d) == {"a", "b", "c", "d"})


def folded_status(driver: WebDriver, title: str) -> str | None:
    text: str | None = driver.execute_script(
        """for (const g of document.querySelectorAll('#graph g.node')) {
             if (g.querySelector('title').textContent === arguments[0])
               return [...g.querySelectorAll('text')].map((t) => t.textContent).join(' | ');
           } return null;""",
        title,
    )
    return text


def test_a_big_array_is_one_live_node_that_opens_on_click(
    browser: WebDriver, daemon: DaemonProc, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    wf = daemon.submit(
        "name: sweep\njobs:\n"
        f"  work: {{array: 60, run: 'while [ ! -e {gate} ]; do sleep 0.05; done'}}\n"
        "  after: {needs: [work], run: 'true'}\n"
    )
    logged_in(browser, daemon, f"/w/{wf}")
    wait(browser, "the folded node", lambda d: "running" in (folded_status(d, "work[×60]") or ""))
    assert graph_nodes(browser) == {"work[×60]", "after"}
    gate.touch()
    wait(
        browser, "its counts", lambda d: folded_status(d, "work[×60]") == "work[×60] | 60 succeeded"
    )
    browser.find_element(By.CSS_SELECTOR, "#graph g.node:first-of-type").click()
    wait(browser, "its elements", lambda d: len(graph_nodes(d)) == 61)
    assert {f"work[{i}]" for i in range(60)} < graph_nodes(browser)


def test_a_5000_job_workflow_renders_and_cancels_from_its_button(
    browser: WebDriver, daemon: DaemonProc, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    wf = daemon.submit(
        "name: huge\njobs:\n"
        f"  gate: {{run: 'while [ ! -e {gate} ]; do sleep 0.05; done'}}\n"
        "  sweep: {array: 5000, needs: [gate], run: 'true'}\n"
    )
    logged_in(browser, daemon, f"/w/{wf}")
    rows = browser.execute_script("return document.querySelectorAll('#jobs tbody tr').length")
    assert rows == 5001
    wait(browser, "the graph, sweep folded", lambda d: graph_nodes(d) == {"gate", "sweep[×5000]"})
    # the folded node's count is drawn just after the node itself: waited for
    expected = "sweep[×5000] | 5000 pending"
    wait(browser, expected, lambda d: folded_status(d, "sweep[×5000]") == expected)
    browser.find_element(By.ID, "cancel-workflow").click()
    wait(browser, "the confirmation", lambda d: d.find_element(By.ID, "confirm").is_displayed())
    browser.find_element(By.ID, "confirm-ok").click()
    state = browser.find_element(By.ID, "wf-state")
    wait(browser, "the workflow cancelled", lambda d: state.text == "cancelled")
    wait(
        browser,
        "the folded node's counts",
        lambda d: (
            "5000 " in (folded_status(d, "sweep[×5000]") or "")
            and "pending" not in (folded_status(d, "sweep[×5000]") or "")
        ),
    )
    assert daemon.jobs(wf)["gate"]["state"] == "cancelled"


def test_the_list_shows_new_workflows_and_their_ends_without_reload(
    browser: WebDriver, daemon: DaemonProc, tmp_path: Path
) -> None:
    logged_in(browser, daemon)
    wait(
        browser,
        "the empty list",
        lambda d: "No workflows yet" in d.find_element(By.ID, "workflows").text,
    )
    browser.execute_script("window.__notReloaded = true")
    gate = tmp_path / "gate"
    wf = daemon.submit(
        f"name: later\njobs:\n  a: {{run: 'while [ ! -e {gate} ]; do sleep 0.05; done'}}\n"
    )

    def state(d: WebDriver) -> str | None:
        text: str | None = d.execute_script(
            "const r = document.querySelector(`#workflow-list tr[data-workflow='${arguments[0]}']`);"
            "return r && r.querySelector('.state').textContent",
            wf,
        )
        return text

    wait(browser, "the new workflow", lambda d: state(d) == "running")
    gate.touch()
    wait(browser, "its end", lambda d: state(d) == "succeeded")
    assert browser.execute_script("return window.__notReloaded") is True


def test_the_page_says_when_it_is_stale_and_catches_up_after_a_restart(
    browser: WebDriver, daemon_factory: Any, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    d: DaemonProc = daemon_factory(f"web:\n  listen: 127.0.0.1:{port}\n")
    d.start()
    gate = tmp_path / "gate"
    wf = d.submit(
        f"name: survivor\njobs:\n  a: {{run: 'while [ ! -e {gate} ]; do sleep 0.05; done'}}\n"
    )
    assert logged_in(browser, d, f"/w/{wf}") == port  # the configured port
    badge = browser.find_element(By.ID, "live")
    wait(browser, "following", lambda dr: badge.text == "live")
    wait(browser, "a running", lambda dr: row(dr, "a").get_attribute("class") == "state-running")
    assert d.stop() == 0  # the job keeps running without it
    wait(browser, "the page says so", lambda dr: badge.text == "reconnecting…")
    d.start()
    gate.touch()
    wait(
        browser,
        "the end, seen after the restart",
        lambda dr: dr.find_element(By.ID, "wf-state").text == "succeeded",
    )
    assert row(browser, "a").find_element(By.CSS_SELECTOR, ".c-state").text == "succeeded"


def test_a_generated_fan_out_is_one_node_too(browser: WebDriver, daemon: DaemonProc) -> None:
    fits = "\n".join(f"  fit-{i}: {{needs: [load], run: 'true'}}" for i in range(60))
    picks = ", ".join(f"fit-{i}" for i in range(60))
    wf = daemon.submit(
        f"name: fan\njobs:\n  load: {{run: 'true'}}\n{fits}\n  pick: {{needs: [{picks}], run: 'true'}}\n"
    )
    daemon.wait_final(wf)
    logged_in(browser, daemon, f"/w/{wf}")
    title = "fit-0 … fit-59 [×60]"
    wait(browser, "the fan-out folded", lambda d: graph_nodes(d) == {"load", title, "pick"})
    wait(browser, "its counts", lambda d: folded_status(d, title) == f"{title} | 60 succeeded")
    browser.find_element(By.XPATH, f"//*[local-name()='title' and text()='{title}']/..").click()
    wait(browser, "its members", lambda d: len(graph_nodes(d)) == 62)


def test_jobs_added_to_a_running_workflow_are_offered_and_shown(
    browser: WebDriver, daemon: DaemonProc, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    wf = daemon.submit(
        f"name: growing\njobs:\n  gate: {{run: 'while [ ! -e {gate} ]; do sleep 0.05; done'}}\n"
    )
    logged_in(browser, daemon, f"/w/{wf}")
    wait(
        browser, "gate running", lambda d: row(d, "gate").get_attribute("class") == "state-running"
    )
    note = browser.find_element(By.ID, "jobs-added")
    assert not note.is_displayed()
    daemon.client.call(
        "POST", f"/v1/workflows/{wf}/jobs", body=b"jobs:\n  extra: {needs: [gate], run: 'true'}\n"
    )
    wait(browser, "the offer to show them", lambda d: note.is_displayed())
    browser.find_element(By.ID, "jobs-added-reload").click()
    wait(
        browser,
        "the new job's row",
        lambda d: d.find_elements(By.CSS_SELECTOR, '#jobs tr[data-job="extra"]'),
    )
    gate.touch()
    wait(
        browser,
        "extra ran",
        lambda d: row(d, "extra").find_element(By.CSS_SELECTOR, ".c-state").text == "succeeded",
    )


def test_a_foreach_fanning_out_while_the_page_is_open(
    browser: WebDriver, daemon: DaemonProc, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    wf = daemon.submit(
        textwrap.dedent(f"""
            name: fanning
            jobs:
              prepare:
                run: |
                  while [ ! -e {gate} ]; do sleep 0.05; done
                  echo '::ccd output grid=[1, 2, 3]'
              train:
                needs: [prepare]
                foreach: ${{{{ jobs.prepare.outputs.grid }}}}
                run: "echo item $CCD_ITEM"
        """)
    )
    logged_in(browser, daemon, f"/w/{wf}")
    wait(
        browser,
        "prepare running",
        lambda d: row(d, "prepare").get_attribute("class") == "state-running",
    )
    gate.touch()
    note = browser.find_element(By.ID, "jobs-added")
    wait(browser, "the offer to show the elements", lambda d: note.is_displayed())
    browser.find_element(By.ID, "jobs-added-reload").click()
    wait(
        browser,
        "the elements' rows",
        lambda d: len(d.find_elements(By.CSS_SELECTOR, '#jobs tr[data-job^="train["]')) == 3,
    )
    wait(
        browser,
        "the workflow's end",
        lambda d: d.find_element(By.ID, "wf-state").text == "succeeded",
    )
