"""Browser tests: a real Otklik server process and Debian's Chromium driven by Playwright.

The server runs as a separate process (uvicorn) on the test database, as a user would run it. Chromium is
`/usr/bin/chromium` (`.ci/run` installs it with apt-get); Playwright never downloads a browser. Without the
browser these tests skip, unless OTKLIK_REQUIRE_BROWSER=1 (CI) turns that into a failure.

Screenshots go to `artifacts/screenshots/` (OTKLIK_SCREENSHOT_DIR overrides) for a reviewer to look at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("OTKLIK_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("OTKLIK_SCREENSHOT_DIR", ROOT / "artifacts" / "screenshots"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="package")
def live_server() -> Iterator[str]:
    """Base URL of an Otklik server process sharing the test database (and Redis, when configured)."""
    port = _free_port()
    env = dict(os.environ)
    env["OTKLIK_EMBEDDED_WORKER"] = "false"
    log_path = Path(os.environ["OTKLIK_DATA_DIR"]) / f"live-server-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "otklik.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded CI box can be slow to import everything
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("live server did not start:\n" + log_path.read_text(errors="replace")[-4000:])
        time.sleep(0.1)
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="package")
def browser():
    # package scope: Playwright's sync API keeps an event loop running in this thread while it is open, so it
    # must close before tests outside tests/e2e call asyncio.run()
    if not Path(CHROMIUM).exists():
        if os.environ.get("OTKLIK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"browser tests need {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                     "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(browser, live_server):
    """Factory: `new_page(locale="ru-RU", viewport=(1280, 800))` opens a page in a fresh browser context."""
    contexts = []

    def make(locale: str = "ru-RU", viewport: tuple[int, int] = (1280, 800)):
        # bypass_csp: Playwright's wait_for_function polls with eval, which the pages' CSP forbids;
        # tests/e2e/test_csp.py opens its own contexts without it and checks the policy in force
        ctx = browser.new_context(base_url=live_server, locale=locale, bypass_csp=True,
                                  viewport={"width": viewport[0], "height": viewport[1]})
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(new_page):
    return new_page()


def screenshot(page, name: str) -> Path:
    """Saves a full-page PNG under artifacts/screenshots/ and returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
