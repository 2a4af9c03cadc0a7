"""FastAPI dependencies: the engine and settings, who is asking, what they may do, CSRF.

``current_principal`` reads ``Authorization: Bearer <token>`` or, without that header, the
console's session cookie; nothing usable is 401. The ``require_*`` dependencies say who may use
a route (403 for a principal of another scope). ``csrf_protect`` guards every form POST: the form
field ``csrf_token`` must be the session's (``csrf_token(request)`` gives it to templates).
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine

from worker.settings import Settings
from web.auth import SESSION_COOKIE, Principal, check_csrf, csrf_for, verify_session, verify_token

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_key(request: Request) -> bytes:
    """The installation's signing key (sessions, CSRF, report links)."""
    return request.app.state.key


def optional_principal(request: Request) -> Principal | None:
    """The principal of the bearer token or session cookie, None when there is none or it is not valid."""
    header = request.headers.get("authorization")
    engine = get_engine(request)
    if header is not None:
        scheme, _, token = header.partition(" ")
        return verify_token(engine, token.strip()) if scheme.lower() == "bearer" else None
    cookie = request.cookies.get(SESSION_COOKIE)
    return verify_session(engine, get_key(request), cookie) if cookie else None


def current_principal(request: Request) -> Principal:
    principal = optional_principal(request)
    if principal is None:
        raise HTTPException(401, "a valid token is needed (Authorization: Bearer <token>, or sign in at /login)",
                            headers=UNAUTHORIZED)
    request.state.principal = principal
    return principal


def require_reader(principal: Principal = Depends(current_principal)) -> Principal:
    """Admins, auditors and tenants (the latter only ever see their tenant's data)."""
    if not principal.reads:
        raise HTTPException(403, f"a {principal.scope} token cannot read the books")
    return principal


def require_staff(principal: Principal = Depends(current_principal)) -> Principal:
    """Admins and auditors: what is about the whole installation (metrics, jobs, integrity)."""
    if principal.scope not in ("admin", "auditor"):
        raise HTTPException(403, f"a {principal.scope} token cannot see this")
    return principal


def require_admin(principal: Principal = Depends(current_principal)) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "only an admin may do this")
    return principal


def require_app(principal: Principal = Depends(current_principal)) -> Principal:
    """Apps (and admins): the gate and the ingest endpoints."""
    if principal.scope not in ("app", "admin"):
        raise HTTPException(403, f"a {principal.scope} token cannot use the gate or send records")
    return principal


def csrf_token(request: Request) -> str:
    """The CSRF token of the request's session ("" without one), for forms in templates."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return csrf_for(get_key(request), cookie) if cookie else ""


async def csrf_protect(request: Request) -> None:
    """Refuse (403) a form POST whose ``csrf_token`` field is missing or not the session's."""
    form = await request.form()
    presented = form.get("csrf_token")
    if not check_csrf(get_key(request), request.cookies.get(SESSION_COOKIE),
                      presented if isinstance(presented, str) else None):
        raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page and try again")
