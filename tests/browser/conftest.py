"""Browser tests: Debian's Chromium driven by Playwright against a real uvicorn server on loopback.

Browsers cannot be downloaded here, so Playwright launches ``/usr/bin/chromium`` (or
``TOKENTALLY_CHROMIUM``). Without it the tests are skipped with a message, unless CI=true,
where they fail (``.ci/run`` installs it). Each test gets its own server over the test
database (both databases, through the ``db_url`` fixture; ``web.server.WebServer``, as
``tokentally web`` runs it, on a free loopback port) and a fresh browser context.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import Engine

from tests.conftest import IN_CI
from tests.helpers import PRICES, free_port
from web.auth import create_token
from web.server import WebServer
from worker.settings import Settings

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the browser fixture: skipped locally, failed in CI
    sync_playwright = None

CHROMIUM = os.environ.get("TOKENTALLY_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("TOKENTALLY_SHOTS", "/tmp/shots"))

SETTINGS = 'default_tier = "standard"\n' + PRICES + """
[tiers.standard]
daily_tokens = 100000
daily_cost_usd = "5"
monthly_cost_usd = "100"
action = "warn"

[tiers.strict]
daily_tokens = 2000
daily_cost_usd = "0.01"
action = "block"

[budgets]
system_warning_usd = "10"
system_critical_usd = "50"
system_emergency_usd = "200"
"""


def _missing(problem: str) -> None:
    if IN_CI:
        pytest.fail(f"browser tests need Chromium in CI: {problem}")
    pytest.skip(f"{problem}; browser tests skipped (apt-get install chromium, or set TOKENTALLY_CHROMIUM)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        _missing(f"no Chromium at {CHROMIUM}")
    if sync_playwright is None:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@dataclass
class Console:
    url: str
    settings: Settings
    engine: Engine
    tmp_path: Path
    browser: Any

    def token(self, scope: str, tenant: str | None = None, name: str | None = None) -> str:
        return create_token(self.engine, name or f"{scope}-user", scope, tenant)[1]

    def signed_in(self, scope: str, tenant: str | None = None, width: int = 1280) -> Any:
        """A new browser page signed in through the sign-in form with a new token of ``scope``."""
        context = self.browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.goto(f"{self.url}/login")
        page.fill("#token", self.token(scope, tenant))
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url(f"{self.url}/")
        return page

    def anonymous(self) -> Any:
        return self.browser.new_context().new_page()


@pytest.fixture
def console(browser: Any, make_settings: Callable[..., Settings], engine: Engine, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    archive = tmp_path / "reports"
    monkeypatch.chdir(tmp_path)
    settings = make_settings(SETTINGS + f'\n[reports]\narchive_dir = "{archive}"\n[web]\nport = {free_port()}\n')
    server = WebServer(settings, engine)
    server.start()
    try:
        yield Console(server.url, settings, engine, tmp_path, browser)
    finally:
        server.stop()
