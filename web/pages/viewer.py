"""What every page handler needs: the viewer's tenant and a render call bound to the request."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from web.auth import Principal
from web.deps import csrf_token, get_settings
from web.pages.render import page


def tenant_of(principal: Principal) -> str | None:
    """The tenant whose rows the principal sees; None for the whole organisation."""
    return principal.tenant_id if principal.scope == "tenant" else None


def show(request: Request, principal: Principal, template: str, status_code: int = 200,
         **context: Any) -> HTMLResponse:
    return page(request, template, principal=principal, settings=get_settings(request),
                csrf_token=csrf_token(request), status_code=status_code, **context)


def done(path: str, what: str, **params: str) -> RedirectResponse:
    """After an action: back to the page (303, so a reload does not repeat the POST), saying what was done."""
    return RedirectResponse(f"{path}{'&' if '?' in path else '?'}" + "&".join(
        [f"done={what}", *(f"{k}={v}" for k, v in params.items())]), status_code=303)
