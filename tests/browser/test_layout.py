"""Every page at a desktop and a phone width: nothing wider than the screen, and a screenshot
of each in TOKENTALLY_SHOTS (default /tmp/shots) to look at."""

from __future__ import annotations

import pytest

from tests.browser import seed
from tests.browser.conftest import SHOTS, Console

PAGES = {"overview": "/", "usage": "/usage?by=model", "usage-day": "/usage", "accounts": "/accounts",
         "alerts": "/alerts", "reports": "/reports", "report": "/reports/1", "rejects": "/rejects",
         "jobs": "/jobs", "integrity": "/integrity"}


@pytest.mark.parametrize("width", [1280, 420])
def test_no_page_is_wider_than_the_screen(console: Console, width: int, db_url: str) -> None:
    seed.everything(console.settings, console.engine, console.tmp_path)
    SHOTS.mkdir(parents=True, exist_ok=True)
    dialect = db_url.split(":", 1)[0].split("+", 1)[0]
    login = console.browser.new_context(viewport={"width": width, "height": 700}).new_page()
    login.goto(f"{console.url}/login")
    login.screenshot(path=str(SHOTS / f"login-{width}-{dialect}.png"))
    assert login.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page = console.signed_in("admin", width=width)
    for name, path in PAGES.items():
        response = page.goto(f"{console.url}{path}")
        assert response.status == 200, name
        page.screenshot(path=str(SHOTS / f"{name}-{width}-{dialect}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} at {width} px is {overflow} px too wide"
