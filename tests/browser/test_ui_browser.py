"""The dashboard in a real browser: Debian's chromium, headless, through chromedriver.

Each test opens the link `ccctl ui` would print and acts as a user: it waits for
what a user would see (WebDriverWait, never a fixed sleep) and drives jobs with
trigger files, so every step happens when the test says.  Screenshots go to
``$CCD_TEST_ARTIFACTS`` (default: a ``ccd-ui-artifacts`` directory under the temp
directory).  A machine without chromium fails here: these tests never skip.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from ccd.cli.format import STATE_COLOURS
from ccd.executors.wrapper import PID, attempt_dir
from tests.browser.conftest import CHROMIUM
from tests.browser.helpers import artifacts, logged_in, node_fill, open_link, row, wait
from tests.conftest import DaemonProc, proc_alive


def gated_job(tmp_path: Path) -> str:
    """A job that reports 10%, waits for `go`, reports 60% and a log line, waits for
    `end`, and succeeds."""
    go, end = tmp_path / "go", tmp_path / "end"
    return textwrap.dedent(f"""
        name: gated
        jobs:
          work:
            run: |
              echo 'starting'
              echo '::ccd progress=10 msg="warming up"'
              while [ ! -e {go} ]; do sleep 0.05; done
              echo '::ccd progress=60 msg="halfway"'
              echo 'the second line'
              while [ ! -e {end} ]; do sleep 0.05; done
              echo 'done'
          after:
            needs: [work]
            run: "true"
    """)


def test_page_loads_with_the_token_and_is_401_without(
    browser: WebDriver, daemon: DaemonProc
) -> None:
    url, port = open_link(daemon)
    browser.get(f"http://127.0.0.1:{port}/")
    assert "no valid token" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(url)
    wait(browser, "the workflows page", lambda d: d.title == "Workflows — ccd")
    assert "token" not in browser.current_url
    assert browser.find_element(By.ID, "workflow-list")
    browser.get(f"http://127.0.0.1:{port}/docs")
    wait(browser, "the API docs under the same cookie", lambda d: "ccd API" in d.title)


def test_progress_bar_changes_without_reload(
    browser: WebDriver, daemon: DaemonProc, tmp_path: Path
) -> None:
    wf = daemon.submit(gated_job(tmp_path))
    logged_in(browser, daemon, f"/w/{wf}")
    browser.execute_script("window.__notReloaded = true")

    def bar(d: WebDriver) -> str:
        return str(row(d, "work").find_element(By.CSS_SELECTOR, ".bar span").get_attribute("style"))

    wait(browser, "10% on the bar", lambda d: "width: 10%" in bar(d))
    assert row(browser, "work").find_element(By.CSS_SELECTOR, ".c-message").text == "warming up"
    (tmp_path / "go").touch()
    wait(browser, "60% on the bar", lambda d: "width: 60%" in bar(d))
    assert row(browser, "work").find_element(By.CSS_SELECTOR, ".pct").text == "60%"
    assert browser.execute_script("return window.__notReloaded") is True
    (tmp_path / "end").touch()


def test_graph_node_colour_changes_on_success(
    browser: WebDriver, daemon: DaemonProc, tmp_path: Path
) -> None:
    wf = daemon.submit(gated_job(tmp_path))
    logged_in(browser, daemon, f"/w/{wf}")
    running = STATE_COLOURS["running"]
    wait(browser, "the running node", lambda d: node_fill(d, "work") == running)
    assert node_fill(browser, "after") == STATE_COLOURS["pending"]
    browser.execute_script("window.__notReloaded = true")
    (tmp_path / "go").touch()
    (tmp_path / "end").touch()
    succeeded = STATE_COLOURS["succeeded"]
    wait(browser, "both nodes green", lambda d: node_fill(d, "after") == succeeded)
    assert node_fill(browser, "work") == succeeded
    wait(
        browser,
        "the workflow's state",
        lambda d: d.find_element(By.ID, "wf-state").text == "succeeded",
    )
    assert browser.execute_script("return window.__notReloaded") is True
    assert browser.find_element(By.ID, "wf-done").text == "2/2 done"
    assert browser.find_element(By.ID, "wf-duration").text.endswith("s")
    row(browser, "work").click()
    wait(browser, "the log of work", lambda d: "done" in d.find_element(By.ID, "log").text)
    browser.save_screenshot(str(artifacts() / "workflow-page.png"))
    browser.find_element(By.ID, "graph-panel").screenshot(str(artifacts() / "graph.png"))


def test_log_pane_follows_new_lines_with_markers_highlighted(
    browser: WebDriver, daemon: DaemonProc, tmp_path: Path
) -> None:
    wf = daemon.submit(gated_job(tmp_path))
    logged_in(browser, daemon, f"/w/{wf}")
    wait(
        browser, "work running", lambda d: row(d, "work").get_attribute("class") == "state-running"
    )
    row(browser, "work").click()
    log = browser.find_element(By.ID, "log")
    wait(browser, "the first lines", lambda d: "warming up" in log.text)
    markers = browser.find_elements(By.CSS_SELECTOR, "#log div.marker")
    assert [m.text for m in markers] == ['::ccd progress=10 msg="warming up"']
    assert "the second line" not in log.text
    (tmp_path / "go").touch()
    wait(browser, "the line written after", lambda d: "the second line" in log.text)
    marked = [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#log div.marker")]
    assert marked[-1] == '::ccd progress=60 msg="halfway"'
    (tmp_path / "end").touch()
    wait(browser, "the end of the log", lambda d: log.text.endswith("done"))


def test_cancel_button_cancels_the_job_and_kills_its_process(
    browser: WebDriver, daemon: DaemonProc
) -> None:
    wf = daemon.submit("name: long\njobs:\n  sleeper: {run: 'echo up; exec sleep 300'}\n")
    logged_in(browser, daemon, f"/w/{wf}")
    wait(
        browser,
        "sleeper running",
        lambda d: "state-running" in str(row(d, "sleeper").get_attribute("class")),
    )
    pid_file = attempt_dir(daemon.state_dir / "runs", wf, "sleeper", 1) / PID
    # the wrapper writes its pid itself, maybe a moment after the launch was recorded
    wait(browser, "the pid file", lambda d: pid_file.exists() and pid_file.read_text().strip())
    pid = int(pid_file.read_text())
    row(browser, "sleeper").click()
    button = browser.find_element(By.ID, "cancel-job")
    wait(browser, "the cancel button enabled", lambda d: button.is_enabled())
    button.click()
    dialog = browser.find_element(By.ID, "confirm")
    wait(browser, "the confirmation", lambda d: dialog.is_displayed())
    assert "sleeper" in browser.find_element(By.ID, "confirm-text").text
    browser.save_screenshot(str(artifacts() / "cancel-confirmation.png"))
    browser.find_element(By.ID, "confirm-ok").click()
    state = row(browser, "sleeper").find_element(By.CSS_SELECTOR, ".c-state")
    wait(browser, "sleeper cancelled", lambda d: state.text == "cancelled")
    assert daemon.jobs(wf)["sleeper"]["state"] == "cancelled"
    wait(browser, "its process gone", lambda d: not proc_alive(pid))


def upload(browser: WebDriver, file: Path) -> None:
    browser.find_element(By.ID, "upload-file").send_keys(str(file))
    browser.find_element(By.ID, "upload-submit").click()


def test_bad_yaml_upload_shows_the_problem_with_its_line(
    browser: WebDriver, daemon: DaemonProc, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\njobs:\n  a: {run: 'true', retires: 2}\n")
    logged_in(browser, daemon)
    upload(browser, bad)
    problems = wait(
        browser, "the validator's message", lambda d: d.find_elements(By.CSS_SELECTOR, ".problems")
    )[0]
    assert "bad.yaml:3:" in problems.text
    assert "retires" in problems.text
    browser.save_screenshot(str(artifacts() / "bad-upload.png"))
    assert daemon.client.call("GET", "/v1/workflows") == []


def test_good_upload_runs(browser: WebDriver, daemon: DaemonProc, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: uploaded\njobs:\n  hello: {run: 'echo hello'}\n")
    logged_in(browser, daemon)
    upload(browser, good)
    wait(browser, "the workflow's page", lambda d: "/w/" in d.current_url)
    state = browser.find_element(By.ID, "wf-state")
    wait(browser, "it succeeded", lambda d: state.text == "succeeded")
    [listed] = daemon.client.call("GET", "/v1/workflows")
    assert listed["name"] == "uploaded" and listed["state"] == "succeeded"
    browser.get(browser.current_url.split("/w/")[0] + "/")
    wait(
        browser,
        "the list shows it",
        lambda d: "uploaded" in d.find_element(By.ID, "workflow-list").text,
    )


def test_chromium_is_debians(browser: WebDriver) -> None:
    # the browser under test is the system's, never one a tool downloaded
    assert browser.capabilities["browserName"] in ("chrome", "chromium")
    assert shutil.which("chromium") == str(CHROMIUM)


def sweep(tmp_path: Path) -> str:
    end = tmp_path / "end"
    wait_end = f"while [ ! -e {end} ]; do sleep 0.05; done"
    return textwrap.dedent(f"""
        name: sweep
        jobs:
          prepare: {{run: "echo data ready"}}
          train-a:
            needs: [prepare]
            run: |
              echo 'epoch 1'; echo '::ccd progress=35 msg="epoch 4/10"'
              {wait_end}
          train-b:
            needs: [prepare]
            run: |
              echo '::ccd progress=80 msg="epoch 8/10"'
              {wait_end}
          train-c:
            needs: [prepare]
            run: "echo 'CUDA out of memory' >&2; exit 3"
          evaluate: {{needs: [train-a, train-b], run: "true"}}
          report: {{needs: [evaluate, train-c], run: "true"}}
    """)


def test_job_table_sorts_and_filters_the_not_succeeded(
    browser: WebDriver, daemon: DaemonProc, tmp_path: Path
) -> None:
    wf = daemon.submit(sweep(tmp_path))
    logged_in(browser, daemon, f"/w/{wf}")

    def state_of(job: str) -> str:
        return str(row(browser, job).find_element(By.CSS_SELECTOR, ".c-state").text)

    wait(browser, "train-c failed", lambda d: state_of("train-c") == "failed")
    wait(browser, "train-b at 80%", lambda d: "80%" in row(d, "train-b").text)
    wait(browser, "train-a at 35%", lambda d: "35%" in row(d, "train-a").text)
    assert row(browser, "train-c").find_element(By.CSS_SELECTOR, ".c-exit").text == "3"
    assert (
        "CUDA out of memory"
        in row(browser, "train-c").find_element(By.CSS_SELECTOR, ".c-message").text
    )

    browser.find_element(By.ID, "not-succeeded").click()
    wait(browser, "prepare hidden", lambda d: not row(d, "prepare").is_displayed())
    assert row(browser, "train-c").is_displayed() and row(browser, "evaluate").is_displayed()

    browser.find_element(By.CSS_SELECTOR, '#jobs th[data-key="progress"]').click()
    browser.find_element(By.CSS_SELECTOR, '#jobs th[data-key="progress"]').click()  # descending
    order = [
        tr.get_attribute("data-job")
        for tr in browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
    ]
    assert order[:2] == ["train-b", "train-a"], order

    row(browser, "train-a").click()
    wait(browser, "train-a's log", lambda d: "epoch 1" in d.find_element(By.ID, "log").text)
    wait(browser, "train-a's node", lambda d: node_fill(d, "train-c") == STATE_COLOURS["failed"])
    browser.save_screenshot(str(artifacts() / "dashboard.png"))
    (tmp_path / "end").touch()
    wait(
        browser, "the workflow failed", lambda d: d.find_element(By.ID, "wf-state").text == "failed"
    )
    assert state_of("report") == "skipped"
