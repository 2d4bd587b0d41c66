"""Debian's Chromium, driven by Playwright, for the add-in pages: nothing is downloaded.

    with chromium() as browser:                  # the ``browser`` fixture: one per session
        context = browser.new_context()
        context.route(OFFICE_JS, lambda r: r.fulfill(body=STANDIN.read_text(),
                                                      content_type="text/javascript"))

Office.js is never fetched: a test routes its URL to ``STANDIN`` (the stand-in the add-in's
own unit tests use) or aborts it (a plain browser, where the pane runs in preview mode).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OFFICE_JS = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js"
STANDIN = ROOT / "addins" / "tests" / "office-standin.js"
# No sandbox (tests may run as root in a container), and none of Chromium's own traffic.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            browser.close()
