"""Rendering console pages: one Jinja environment over ``templates/web/``, autoescaped, strict.

Every page extends ``templates/web/base.html`` and is rendered by :func:`page`, which adds
what the layout needs: the viewer (its name and scope, what it may do), the navigation it
may follow, the CSRF token each form carries, the time zone and "now". Templates hold
every word and every tag; no page builds HTML in Python. Undefined variables are errors
(StrictUndefined), and autoescaping is on for every template here, so text from the data
(a reject's raw line, an account id, an alert's sentence) is shown as text.

Filters: ``usd`` (``$12.3400``, ``usd(2)`` cents, from ``reports.messages``), ``when`` (an
aware time in the configured zone, ``2026-11-23 14:05 CET``), ``ago`` ("4 min ago", "in 2 h"),
``num`` (thousands separators), ``pct`` (a fraction as ``80%``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from reports.messages import usd
from worker import clock
from worker.settings import Settings

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "web"

# (path, label, org-wide only)
NAV = (("/", "Overview", False), ("/usage", "Usage", False), ("/accounts", "Accounts", False),
       ("/alerts", "Alerts", False), ("/reports", "Reports", False), ("/rejects", "Rejects", True),
       ("/jobs", "Jobs", True), ("/integrity", "Integrity", True))


def when(value: datetime | None, zone: str, seconds: bool = False) -> str:
    """An aware time in ``zone`` with the zone's abbreviation; "never" for None."""
    if value is None:
        return "never"
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def ago(value: datetime | None, now: datetime) -> str:
    """How long ago (or, for a time ahead, how soon) in the largest whole unit."""
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            amount = f"{int(seconds // size)} {unit}"
            break
    else:
        amount = f"{int(seconds)} s"
    return f"in {amount}" if ahead else f"{amount} ago"


def num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, Decimal):
        return f"{value:,f}"
    return f"{int(value):,}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def query(params: dict[str, Any], **changes: Any) -> str:
    """``?a=1&b=2`` from the current parameters with some changed (None drops one)."""
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "")}
    return "?" + urlencode(merged) if merged else "?"


def url(path: str, params: dict[str, Any] | None = None) -> str:
    """``path?a=1&b=2`` (empty values dropped)."""
    found = query(params or {})
    return path + (found if found != "?" else "")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(usd=usd, when=when, ago=ago, num=num, pct=pct)
    env.globals.update(query=query, url=url)
    return env


ENV = _environment()


def page(request: Request, template: str, *, principal: Any, settings: Settings, csrf_token: str,
         status_code: int = 200, **context: Any) -> HTMLResponse:
    """``templates/web/<template>`` rendered for ``principal`` as an HTML response."""
    org = principal.scope in ("admin", "auditor")
    nav = [(path, label) for path, label, org_only in NAV if org or not org_only]
    html = ENV.get_template(template).render(
        request_path=request.url.path, params=dict(request.query_params), principal=principal,
        is_admin=principal.scope == "admin", org=org, nav=nav, csrf_token=csrf_token, timezone=settings.timezone,
        now=clock.now(), notice=request.query_params.get("done"), **context)
    return HTMLResponse(html, status_code=status_code)
