"""The overview page, and the kill switch an admin turns on or off from it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from worker import clock
from worker.limits import killswitch
from worker.settings import Settings
from web.auth import Principal
from web.deps import csrf_protect, get_engine, get_settings, require_admin, require_reader
from web.pages.viewer import done, show, tenant_of
from web.views.overview import overview

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, principal: Principal = Depends(require_reader),
                  engine: Engine = Depends(get_engine), settings: Settings = Depends(get_settings)) -> HTMLResponse:
    with engine.connect() as conn:
        found = overview(conn, settings, tenant_of(principal), request.app.state.forecasts)
    return show(request, principal, "overview.html", overview=found)


@router.post("/killswitch", dependencies=[Depends(csrf_protect)])
def kill_switch(action: str = Form(...), reason: str = Form(""), principal: Principal = Depends(require_admin),
                engine: Engine = Depends(get_engine), settings: Settings = Depends(get_settings)) -> Response:
    now = clock.now()
    by = f"operator:{principal.name}"
    with engine.begin() as conn:
        if action == "clear":
            changed = killswitch.clear(conn, settings, now, by=by)
        elif action == "on":
            if not reason.strip():
                raise HTTPException(422, "turning the kill switch on needs a reason")
            changed = killswitch.trip(conn, now, period=now.astimezone(settings.tz).date().isoformat(), by=by,
                                      reason=reason.strip()[:500])
        else:
            raise HTTPException(422, "action must be on or clear")
    return done("/", ("killswitch-off" if action == "clear" else "killswitch-on") if changed
                else "killswitch-unchanged")
