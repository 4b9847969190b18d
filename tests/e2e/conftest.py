"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live
server (real PostgreSQL, the real API, static files from the Vite build)."""
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
MANIFEST = Path(__file__).resolve().parents[2] / "frontend" / "dist" / ".vite" / "manifest.json"
# What a deliberately cut connection logs; nothing else may reach the console as an error.
NETWORK_CUT = re.compile(r"net::ERR_(INTERNET_DISCONNECTED|CONNECTION_RESET|FAILED|ABORTED)")


@pytest.fixture(scope="session")
def browser():
    if not MANIFEST.exists():
        pytest.fail("the frontend is not built: run `make frontend` (the test target does)")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run .ci/ensure-chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ConsoleWatch:
    """Console errors and uncaught exceptions of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.allow_network_cut = False
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def unexpected(self) -> list[str]:
        if self.allow_network_cut:
            return [e for e in self.errors if not NETWORK_CUT.search(e)]
        return list(self.errors)


class InFlight:
    """Wraps the live server's WSGI app to count the requests it is handling, so a test
    ends only once the server is quiet: a request still writing (a prefetch, a heartbeat,
    report recording after a submit) would otherwise deadlock with the tables' flush."""

    def __init__(self, app):
        self.app = app
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.count += 1
        try:
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.count -= 1

    def wait_until_quiet(self, quiet_for: float = 0.2, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if self.count:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_for:
                return
            time.sleep(0.02)
        raise AssertionError(f"the live server still handles {self.count} request(s) after {timeout:g} s")


def _in_flight(live_server) -> InFlight:
    server = live_server.thread.httpd
    if not isinstance(server.get_app(), InFlight):
        server.set_app(InFlight(server.get_app()))
    return server.get_app()


@pytest.fixture
def page(browser, live_server):
    in_flight = _in_flight(live_server)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.console = ConsoleWatch(page)
    yield page
    context.close()
    in_flight.wait_until_quiet()
    assert page.console.unexpected() == [], "console errors on the page"


def wait_for_js(page, expression: str, arg=None, timeout_s: float = 15.0) -> None:
    """Wait until `expression` (or the function it names, called with `arg`) is truthy in the
    page. Playwright's wait_for_function compiles its predicate inside the page, which the
    Content-Security-Policy refuses (no unsafe-eval); evaluate goes through the debugger."""
    import time

    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if page.evaluate(expression, arg):
                return
        except PlaywrightError as exc:  # a navigation replaced the page meanwhile: ask the new one
            if "context was destroyed" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:g} s for {expression!r}")
        page.wait_for_timeout(50)


def sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
