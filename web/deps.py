"""FastAPI dependencies: the engine and settings, who is asking, what they may do, CSRF.

``current_principal`` reads ``Authorization: Bearer <token>`` or, without that header, the
console's session cookie; nothing usable is 401. The ``require_*`` dependencies say who may use
a route (403 for a principal of another scope). ``csrf_protect`` guards every form POST: the form
field ``csrf_token`` must be the session's (``csrf_token(request)`` gives it to templates).
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from worker.settings import Settings
from web import token_cache
from web.auth import (SESSION_COOKIE, Principal, cached_principal, check_csrf, csrf_for, hash_secret,
                      verify_session)

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_key(request: Request) -> bytes:
    """The installation's signing key (sessions, CSRF, report links)."""
    return request.app.state.key


def _bearer(request: Request) -> str | None:
    """The bearer token presented ("" for another scheme), None without an Authorization header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def optional_principal(request: Request) -> Principal | None:
    """The principal of the bearer token or session cookie, None when there is none or it is not valid.
    Blocking (it may look the token up): the async dependencies below call it in the threadpool."""
    engine = get_engine(request)
    token = _bearer(request)
    if token is not None:
        return cached_principal(engine, token)
    cookie = request.cookies.get(SESSION_COOKIE)
    return verify_session(engine, get_key(request), cookie) if cookie else None


async def current_principal(request: Request) -> Principal:
    """Async, so a request whose token verified less than a second ago (:mod:`web.token_cache`)
    costs no thread hop before its route; otherwise the lookup runs in the threadpool."""
    token = _bearer(request)
    principal = token_cache.get(get_engine(request), hash_secret(token)) if token else None
    if principal is None:
        principal = await run_in_threadpool(optional_principal, request)
    if principal is None:
        raise HTTPException(401, "a valid token is needed (Authorization: Bearer <token>, or sign in at /login)",
                            headers=UNAUTHORIZED)
    request.state.principal = principal
    return principal


async def require_reader(principal: Principal = Depends(current_principal)) -> Principal:
    """Admins, auditors and tenants (the latter only ever see their tenant's data)."""
    if not principal.reads:
        raise HTTPException(403, f"a {principal.scope} token cannot read the books")
    return principal


async def require_staff(principal: Principal = Depends(current_principal)) -> Principal:
    """Admins and auditors: what is about the whole installation (metrics, jobs, integrity)."""
    if principal.scope not in ("admin", "auditor"):
        raise HTTPException(403, f"a {principal.scope} token cannot see this")
    return principal


async def require_admin(principal: Principal = Depends(current_principal)) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, "only an admin may do this")
    return principal


async def require_app(principal: Principal = Depends(current_principal)) -> Principal:
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
