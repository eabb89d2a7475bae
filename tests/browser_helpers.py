"""Debian's chromium through Playwright, for the tests of web pages (console, upload pages)."""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless browser for the block (Playwright's sync API; the test skips without Playwright)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def login(browser: Any, console: str, name: str, password: str, *, height: int = 900,
          wait: bool = True) -> tuple[Any, Any]:
    """A new desktop context that opened the console (sent to its login page) and logged in.
    `wait`: until a staff page is shown (False for a login that is meant to fail)."""
    ctx = browser.new_context(viewport={"width": 1366, "height": height}, accept_downloads=True, locale="ja-JP")
    page = ctx.new_page()
    page.goto(console + "/")
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    if wait:
        page.wait_for_url(re.compile(r".*/(deliveries|approvals|admin)"))
    return ctx, page
