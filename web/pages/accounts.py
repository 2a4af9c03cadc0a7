"""The accounts and budgets page: a page of accounts with their windows and the gate's decision, and
every scope budget (tenant, member, service, model, project, key) with its windows: used / limit
and when each resets. A tenant's viewer sees its tenant's and its members' budgets only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from worker import clock
from worker.limits.scopes import list_budgets
from worker.settings import Settings
from worker.settings.scopes import parse_scope
from web.auth import Principal
from web.deps import get_engine, get_settings, require_reader
from web.pages.viewer import show, tenant_of
from web.views import accounts as accounts_view
from web.views.paging import clamp

router = APIRouter()


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(request: Request, kind: str = "day", state: str = "", account: str = "", page: str = "1",
                  principal: Principal = Depends(require_reader), engine: Engine = Depends(get_engine),
                  settings: Settings = Depends(get_settings)) -> HTMLResponse:
    number, size = clamp(page)
    kind = kind if kind in accounts_view.KINDS else "day"
    state = state if state in accounts_view.STATES else ""
    tenant = tenant_of(principal)
    with engine.connect() as conn:
        found = accounts_view.list_accounts(conn, settings, tenant, kind=kind, state=state or None,
                                            account=account.strip() or None, page=number, size=size)
        budgets = [b for b in list_budgets(conn, settings, clock.now()) if _visible(b["scope"], tenant)]
    return show(request, principal, "accounts.html", found=found, kind=kind, state=state,
                account=account.strip(), kinds=accounts_view.KINDS, states=accounts_view.STATES, budgets=budgets)


def _visible(scope: str, tenant: str | None) -> bool:
    if tenant is None:
        return True
    s = parse_scope(scope)
    return (s.kind == "tenant" and s.value == tenant) or (s.kind == "member" and s.member[1] == tenant)
