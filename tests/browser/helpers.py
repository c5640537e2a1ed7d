"""What the dashboard's browser tests share: the link, waits, and looks at the page."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import WAIT, DaemonProc


def artifacts() -> Path:
    path = Path(
        os.environ.get("CCD_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "ccd-ui-artifacts"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_link(daemon: DaemonProc) -> tuple[str, int]:
    """What `ccctl ui` asks the daemon for: (the link with its token, the port)."""
    body = json.dumps({"host": "127.0.0.1", "port": None}).encode()
    result = daemon.client.call(
        "POST", "/v1/ui", body=body, headers={"Content-Type": "application/json"}
    )
    return str(result["url"]), int(result["port"])


def wait(driver: WebDriver, what: str, condition: Callable[[WebDriver], Any]) -> Any:
    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition, message=what)


def logged_in(browser: WebDriver, daemon: DaemonProc, path: str = "/") -> int:
    url, port = open_link(daemon)
    browser.get(url)
    wait(browser, "the token swapped for a cookie", lambda d: "token=" not in d.current_url)
    if path != "/":
        browser.get(f"http://127.0.0.1:{port}{path}")
    return port


def row(browser: WebDriver, job: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'#jobs tr[data-job="{job}"]')


def node_fill(driver: WebDriver, job: str) -> str | None:
    fill: str | None = driver.execute_script(
        """for (const g of document.querySelectorAll('#graph g.node')) {
             if (g.querySelector('title').textContent === arguments[0])
               return g.querySelector('path, polygon').getAttribute('fill');
           } return null;""",
        job,
    )
    return fill
