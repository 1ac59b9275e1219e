"""A real browser for the report: Debian's headless Chromium driven by Selenium through
Debian's chromedriver (nothing is downloaded: Selenium Manager stays offline)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
WIDTH, HEIGHT = 1280, 900

CHECKS = """
const problems = [];
for (const img of document.images) {
  if (!img.complete || img.naturalWidth === 0) problems.push('image does not decode: ' + img.alt);
}
for (const table of document.querySelectorAll('table')) {
  const head = table.querySelectorAll('thead tr th').length;
  table.querySelectorAll('tbody tr').forEach((row, i) => {
    if (row.children.length !== head)
      problems.push('table row ' + i + ' has ' + row.children.length + ' cells under ' + head);
  });
}
const verdicts = document.getElementById('verdicts');
const box = verdicts ? verdicts.getBoundingClientRect() : null;
return {
  problems: problems,
  images: document.images.length,
  tables: document.querySelectorAll('table').length,
  verdictsBottom: box ? box.bottom : null,
  viewport: window.innerHeight,
  verdictText: verdicts ? verdicts.innerText : '',
  scripts: document.scripts.length,
  links: document.links.length,
};
"""


def browser_paths() -> tuple[str, str]:
    """The Chromium and chromedriver executables (AssertionError naming the package if not)."""
    browser = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    driver = shutil.which(DRIVER)
    assert browser and driver, "install Debian's chromium and chromium-driver (.ci/run does)"
    return browser, driver


@contextlib.contextmanager
def chromium(width: int = WIDTH, height: int = HEIGHT) -> Iterator[Any]:
    """A headless Chromium session with a fresh profile; quit and removed at the end."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never reaches out
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = browser_paths()
    profile = tempfile.mkdtemp(prefix="shadow-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def inspect_report(path: Path, screenshot: Path | None = None) -> dict[str, Any]:
    """Open report.html: what the page checks found, the browser's own errors, and (with
    `screenshot`) PNGs of the first screen and of the whole page."""
    with chromium() as driver:
        driver.get(path.resolve().as_uri())
        found = driver.execute_script(CHECKS)
        logged = driver.get_log("browser")
        found["errors"] = [e["message"] for e in logged if e["level"] == "SEVERE"]
        if screenshot is not None:
            driver.save_screenshot(str(screenshot.with_suffix(".first.png")))
            full = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(WIDTH, min(int(full) + 100, 30000))
            driver.save_screenshot(str(screenshot))
    return found
