"""The rejects page (organisation-wide: admins and auditors), and retrying them (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from worker.ingest import rejects as rejects_mod
from worker.settings import Settings
from web.auth import Principal
from web.deps import csrf_protect, get_engine, get_settings, require_admin, require_staff
from web.pages.viewer import show
from web.views import rejects as rejects_view
from web.views.paging import clamp

router = APIRouter()


def _page(request: Request, principal: Principal, engine: Engine, source: str, include_resolved: bool,
          page: str = "1", retried: dict | None = None) -> HTMLResponse:
    number, size = clamp(page)
    with engine.connect() as conn:
        found = rejects_view.list_rejects(conn, source or None, include_resolved, number, size)
        by_source = rejects_view.open_by_source(conn)
    return show(request, principal, "rejects.html", found=found, by_source=by_source, source=source,
                include_resolved=include_resolved, retried=retried)


@router.get("/rejects", response_class=HTMLResponse)
def rejects_page(request: Request, source: str = "", all: str = "", page: str = "1",
                 principal: Principal = Depends(require_staff), engine: Engine = Depends(get_engine)) -> HTMLResponse:
    return _page(request, principal, engine, source, bool(all), page)


@router.post("/rejects/retry", response_class=HTMLResponse, dependencies=[Depends(csrf_protect)])
def retry(request: Request, source: str = Form(""), principal: Principal = Depends(require_admin),
          engine: Engine = Depends(get_engine), settings: Settings = Depends(get_settings)) -> HTMLResponse:
    stats = rejects_mod.retry(settings, engine, source or None)
    return _page(request, principal, engine, source, False, retried=stats)
