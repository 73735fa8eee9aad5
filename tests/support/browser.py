"""A real browser for the tests: Playwright for Python driving Debian's Chromium.

Never a browser download (`playwright install` is not used): `make test` installs the
`chromium` package when it is absent. Each call runs in a thread of its own, with Playwright's
sync API there, so that its event loop never meets pytest-tornado's.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 10_000

T = TypeVar("T")


def chromium_path() -> str:
    """Debian's Chromium; a clear failure (never a skip) when it is missing."""
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    assert found, ("no chromium: `make test` installs it (apt-get install -y chromium);"
                   " the browser tests are part of the suite and are never skipped")
    return found


def in_browser(work: Callable[[Page], T], screenshots: Path) -> T:
    """`work(page)` in a fresh headless Chromium, in a thread of its own. When it fails, the
    page's screenshot is saved under `screenshots` (pytest's temp dir) and its path printed."""
    def run() -> T:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(),
                                                 headless=True, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.set_default_timeout(TIMEOUT_MS)
                try:
                    return work(page)
                except BaseException:
                    shot = screenshots / "failure.png"
                    try:
                        page.screenshot(path=str(shot), full_page=True)
                        print(f"browser test failed: screenshot at {shot}")  # noqa: T201
                    except Exception as error:  # a crashed page: the failure itself matters
                        print(f"browser test failed; no screenshot ({error})")  # noqa: T201
                    raise
            finally:
                browser.close()

    with ThreadPoolExecutor(1, thread_name_prefix="browser") as pool:
        return pool.submit(run).result()
