"""The reports page: every archived version; one version's figures, files and verification.

A version's files open through its signed link (``reports.links``, served by the archive
route), made for the viewer who may see that version, so "view" and "download" work the same
way an emailed link does. Verifying is for admins and auditors.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from reports.links import sign_link
from worker import clock
from worker.settings import Settings
from web.auth import Principal
from web.deps import csrf_protect, get_engine, get_key, get_settings, require_reader, require_staff
from web.pages.viewer import show, tenant_of
from web.views import reports as reports_view
from web.views.paging import clamp

router = APIRouter()


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, kind: str = "", page: str = "1", principal: Principal = Depends(require_reader),
                 engine: Engine = Depends(get_engine)) -> HTMLResponse:
    number, size = clamp(page)
    kind = kind if kind in reports_view.KINDS else ""
    with engine.connect() as conn:
        found = reports_view.list_reports(conn, tenant_of(principal), kind or None, number, size)
    return show(request, principal, "reports.html", found=found, kind=kind, kinds=reports_view.KINDS)


def _report(request: Request, principal: Principal, engine: Engine, report_id: int, verification: dict | None = None,
            status_code: int = 200) -> HTMLResponse:
    with engine.connect() as conn:
        row = reports_view.get_report(conn, tenant_of(principal), report_id)
    if row is None:
        raise HTTPException(404, f"no report {report_id}")
    settings = get_settings(request)
    base = sign_link(get_key(request), row.id, row.version, clock.now() + settings.web.link_ttl)
    return show(request, principal, "report.html", status_code=status_code, row=row,
                figures=reports_view.report_figures(row), altered=reports_view.files_state(row),
                files=reports_view.FILES, file_url=lambda name: base + name, verification=verification)


@router.get("/reports/{report_id}", response_class=HTMLResponse)
def report_page(request: Request, report_id: int, principal: Principal = Depends(require_reader),
                engine: Engine = Depends(get_engine)) -> HTMLResponse:
    return _report(request, principal, engine, report_id)


@router.post("/reports/{report_id}/verify", response_class=HTMLResponse, dependencies=[Depends(csrf_protect)])
def verify(request: Request, report_id: int, principal: Principal = Depends(require_staff),
           engine: Engine = Depends(get_engine), settings: Settings = Depends(get_settings)) -> HTMLResponse:
    with engine.connect() as conn:
        row = reports_view.get_report(conn, None, report_id)
    if row is None:
        raise HTTPException(404, f"no report {report_id}")
    return _report(request, principal, engine, report_id, reports_view.verify_report(engine, settings, row))
