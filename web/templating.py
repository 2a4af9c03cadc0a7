"""The console's Jinja environment: ``templates/web/``, autoescaped; every page gets the request,
the signed-in principal (or None) and its CSRF token. Text from the data stays data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from web.deps import csrf_token

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates" / "web"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    values = {"principal": getattr(request.state, "principal", None), "csrf_token": csrf_token(request),
              **(context or {})}
    return templates.TemplateResponse(request, name, values, status_code=status_code, headers=headers)
