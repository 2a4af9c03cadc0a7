"""The alerts page, and acknowledging or resolving one (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from worker.alerts import state as alert_state
from worker.settings import Settings
from web.auth import Principal
from web.deps import csrf_protect, get_engine, get_settings, require_admin, require_reader
from web.pages.viewer import done, show, tenant_of
from web.views import alerts as alerts_view
from web.views.paging import clamp

router = APIRouter()


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, state: str = "active", page: str = "1",
                principal: Principal = Depends(require_reader), engine: Engine = Depends(get_engine),
                settings: Settings = Depends(get_settings)) -> HTMLResponse:
    number, size = clamp(page)
    with engine.connect() as conn:
        found = alerts_view.list_alerts(conn, settings, tenant_of(principal), state, number, size)
    return show(request, principal, "alerts.html", found=found, state=state)


@router.post("/alerts/{alert_id}/ack", dependencies=[Depends(csrf_protect)])
def acknowledge(alert_id: int, principal: Principal = Depends(require_admin),
                engine: Engine = Depends(get_engine)) -> Response:
    with engine.begin() as conn:
        changed = alert_state.acknowledge_alert(conn, alert_id)
    return done("/alerts", "acknowledged" if changed else "not-open")


@router.post("/alerts/{alert_id}/resolve", dependencies=[Depends(csrf_protect)])
def resolve(alert_id: int, principal: Principal = Depends(require_admin), engine: Engine = Depends(get_engine),
            settings: Settings = Depends(get_settings)) -> Response:
    with engine.begin() as conn:
        changed = alert_state.resolve_alert(conn, settings, alert_id)
    return done("/alerts", "resolved" if changed else "not-open")
