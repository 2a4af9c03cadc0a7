"""Console sign-in: a token becomes a session cookie; the first start's one-time link; sign-out.

The session cookie is HttpOnly, SameSite=Strict and, when ``[web] public_url`` is https,
Secure. The sign-in form carries its own CSRF token, bound to a nonce cookie set with the
form (there is no session yet to bind it to). App tokens cannot sign in: the console is for
admins, auditors and tenants.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from web.auth import LOGIN_COOKIE, SESSION_COOKIE, Principal, check_csrf, csrf_for, issue_session, use_login_link, \
    verify_token
from web.deps import csrf_protect, get_engine, get_key, get_settings
from web.templating import render

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never //host or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _form(request: Request, next_path: str, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"login_csrf": csrf_for(get_key(request), nonce),
                                              "next": safe_next(next_path), "error": error}, status_code=status_code)
    response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", path="/login",
                        secure=get_settings(request).web.https)
    return response


def signed_in(request: Request, principal: Principal, target: str) -> Response:
    settings = get_settings(request).web
    response = RedirectResponse(safe_next(target), status_code=303)
    value = issue_session(get_key(request), principal.token_id, settings.session_ttl)
    response.set_cookie(SESSION_COOKIE, value, max_age=int(settings.session_ttl.total_seconds()), httponly=True,
                        samesite="strict", secure=settings.https, path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _form(request, next)


@router.post("/login")
def login(request: Request, token: str = Form(""), csrf_token: str = Form(""), next: str = Form("/")) -> Response:
    if not check_csrf(get_key(request), request.cookies.get(LOGIN_COOKIE), csrf_token):
        return _form(request, next, "The sign-in form expired: try again.", status_code=403)
    principal = verify_token(get_engine(request), token.strip())
    if principal is None:
        return _form(request, next, "That token is not valid (unknown, revoked or expired).", status_code=401)
    if principal.scope == "app":
        return _form(request, next, "App tokens are for the API; sign in with an admin, auditor or tenant token.",
                     status_code=403)
    return signed_in(request, principal, next)


@router.get("/login/{one_time}")
def login_link(request: Request, one_time: str) -> Response:
    principal = use_login_link(get_engine(request), one_time)
    if principal is None:
        return _form(request, "/", "That sign-in link was used already or has expired.", status_code=403)
    return signed_in(request, principal, "/")


@router.post("/logout", dependencies=[Depends(csrf_protect)])
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
