"""The integrity page (admins and auditors): open findings, unlogged calls, reconciliations."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from worker.settings import Settings
from web.auth import Principal
from web.deps import get_engine, get_settings, require_staff
from web.pages.viewer import show
from web.views import integrity as integrity_view

router = APIRouter()


@router.get("/integrity", response_class=HTMLResponse)
def integrity_page(request: Request, principal: Principal = Depends(require_staff),
                   engine: Engine = Depends(get_engine), settings: Settings = Depends(get_settings)) -> HTMLResponse:
    with engine.connect() as conn:
        findings = integrity_view.findings(conn, settings)
        attempts = integrity_view.unlogged_calls(conn)
        reconciliations = integrity_view.reconciliations(conn)
    return show(request, principal, "integrity.html", findings=findings, attempts=attempts,
                reconciliations=reconciliations)
