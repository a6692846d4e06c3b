"""Headless Chromium for browser tests: Debian's `chromium` package, installed when missing, driven
by Playwright (which then downloads no browser of its own)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from debian_packages import apt_install
from playwright.sync_api import Browser, sync_playwright

CHROMIUM_PACKAGE = "chromium"


def chromium_executable() -> str:
    """The path of Debian's Chromium, installed with apt-get first when it is not there."""
    if found := shutil.which("chromium"):
        return found
    apt_install(CHROMIUM_PACKAGE)
    found = shutil.which("chromium")
    assert found, f"apt-get installed {CHROMIUM_PACKAGE}, yet no chromium is on PATH"
    return found


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(),
            args=["--no-sandbox"],  # CI runs as root, where Chromium's sandbox refuses to start
        )
        try:
            yield browser
        finally:
            browser.close()
