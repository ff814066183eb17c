"""Headless Chromium (Debian's `chromium` + `chromium-driver`) through Selenium, for the tests
that drive a real browser (QR login, the status page)."""

from __future__ import annotations

import os

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def headless_chromium(request, window_size: str, *extra_arguments: str):
    """Yields a driver (use with `yield from` in a fixture); prints the browser console when
    the test failed, and quits."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver; "
                    "scripts/setup.sh --tests installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={window_size}",
                     "--disable-background-timer-throttling", "--disable-renderer-backgrounding", *extra_arguments]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        try:
            for entry in driver.get_log("browser"):
                print(f"browser console: {entry['level']} {entry['message']}")
        except Exception as error:  # a diagnostic only; the failure is already reported
            print(f"(no browser console log: {error})")
    driver.quit()
