"""Who is asking: tokens (stored hashed), console sessions, CSRF tokens, one-time login links, report links.

A :class:`Principal` is what every route sees: a name, a scope (admin | auditor | app | tenant)
and, for a tenant token, its tenant. It comes from a bearer token (:func:`verify_token`) or a
console session cookie (:func:`verify_session`).

Invariants:
- a token's secret is shown once (:func:`create_token`); only its SHA-256 is stored, and a
  presented token is looked up by its hash and compared in constant time;
- a revoked or expired token signs nobody in, and ends every session it opened (a session is
  ``<token id>.<expires>.<mac>``, checked against the token row on every request); the API's
  bearer tokens go through :func:`cached_principal`: an expired one is refused at once, one
  revoked by another process within a second (:mod:`web.token_cache`);
- a CSRF token is a MAC of the session cookie: it is good for that session only;
- a one-time login link opens one session, once (a conditional UPDATE claims it);
- signing keys are derived per purpose from the installation's key (``reports.links``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from worker import clock
from worker.models import TOKEN_SCOPES, ApiToken, LoginLink
from web import token_cache
from reports.links import derive, report_link, sign_link, signing_key, verify_link

__all__ = ["Principal", "AuthError", "parse_scope", "create_token", "verify_token", "list_tokens", "revoke_token",
           "cached_principal", "issue_session", "verify_session", "csrf_for", "check_csrf", "create_login_link", "use_login_link",
           "has_tokens", "sign_link", "verify_link", "report_link", "signing_key", "hash_secret",
           "SESSION_COOKIE", "LOGIN_COOKIE"]

TOKEN_PREFIX = "tt_"
SESSION_COOKIE = "tt_session"
LOGIN_COOKIE = "tt_login"  # the sign-in form's own CSRF nonce (before there is a session)
LOGIN_LINK_TTL = timedelta(hours=24)
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token
_TENANT = re.compile(r"^[^\s\x00-\x1f]{1,200}$")


class AuthError(ValueError):
    """A token, scope or login link that cannot be used; the message says why."""


@dataclass(frozen=True)
class Principal:
    name: str
    scope: str  # admin | auditor | app | tenant
    tenant_id: str | None = None
    token_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    @property
    def reads(self) -> bool:
        """Whether the principal may read the books (admins, auditors and, for their tenant, tenants)."""
        return self.scope in ("admin", "auditor", "tenant")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def parse_scope(text: str) -> tuple[str, str | None]:
    """``admin``, ``auditor``, ``app`` or ``tenant:ID`` -> (scope, tenant)."""
    scope, sep, tenant = text.partition(":")
    if scope == "tenant" and sep and _TENANT.match(tenant):
        return "tenant", tenant
    if scope in TOKEN_SCOPES and scope != "tenant" and not sep:
        return scope, None
    raise AuthError(f"expected admin, auditor, app or tenant:ID, got {text!r}")


def create_token(engine: Engine, name: str, scope: str, tenant: str | None = None,
                 expires_in: timedelta | None = None) -> tuple[int, str]:
    """A new token: (its id, its secret). The secret is not stored and cannot be shown again."""
    if not name or len(name) > 200:
        raise AuthError("a token needs a name of 1 to 200 characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = clock.now()
    with engine.begin() as conn:
        token_id = conn.execute(insert(ApiToken).values(
            name=name, scope=scope, tenant=tenant, token_hash=hash_secret(secret), created_at=now,
            expires_at=now + expires_in if expires_in else None).returning(ApiToken.id)).scalar_one()
    return token_id, secret


def _principal(row: Any) -> Principal:
    return Principal(name=row.name, scope=row.scope, tenant_id=row.tenant, token_id=row.id)


def _usable(row: Any, now: datetime) -> bool:
    return row is not None and row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


def _touch(engine: Engine, row: Any, now: datetime) -> None:
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_EVERY:
        with engine.begin() as conn:
            conn.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))


def verify_token(engine: Engine, secret: str) -> Principal | None:
    """The principal of a presented bearer token, or None (unknown, revoked or expired)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    digest = hash_secret(secret)
    with engine.connect() as conn:
        row = conn.execute(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    now = clock.now()
    if not _usable(row, now) or not hmac.compare_digest(row.token_hash, digest):
        return None
    _touch(engine, row, now)
    principal = _principal(row)
    token_cache.put(engine, digest, principal, row.id, row.expires_at)
    return principal


def cached_principal(engine: Engine, secret: str) -> Principal | None:
    """:func:`verify_token` for the API's every request: the principal of a token verified less
    than a second ago in this process (:mod:`web.token_cache`), else a lookup (which refreshes it)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    return token_cache.get(engine, hash_secret(secret)) or verify_token(engine, secret)


def _token_row(engine: Engine, token_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(ApiToken).where(ApiToken.id == token_id)).first()


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    """Every token, newest first, without anything that would sign in."""
    with engine.connect() as conn:
        rows = conn.execute(select(ApiToken).order_by(ApiToken.id.desc())).all()
    now = clock.now()
    return [{"id": r.id, "name": r.name, "scope": r.scope + (f":{r.tenant}" if r.tenant else ""),
             "created_at": r.created_at, "expires_at": r.expires_at, "revoked_at": r.revoked_at,
             "last_used_at": r.last_used_at,
             "state": "revoked" if r.revoked_at else ("expired" if not _usable(r, now) else "active")}
            for r in rows]


def revoke_token(engine: Engine, token_id: int) -> bool:
    """Revoke a token (and so its sessions); False when there is no such active token."""
    with engine.begin() as conn:
        revoked = conn.execute(update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                               .values(revoked_at=clock.now())).rowcount == 1
    token_cache.forget(token_id)  # at once in this process; other processes within token_cache.TTL
    return revoked


def has_tokens(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(ApiToken.id).limit(1)).first() is not None


# --------------------------------------------------------------------------- sessions and CSRF


def _mac(key: bytes, purpose: str, message: str) -> str:
    return hmac.new(derive(key, purpose), message.encode(), hashlib.sha256).hexdigest()


def issue_session(key: bytes, token_id: int, ttl: timedelta, now: datetime | None = None) -> str:
    """The session cookie's value for a token: good until ``now + ttl`` while the token is."""
    expires = int(((now or clock.now()) + ttl).timestamp())
    return f"{token_id}.{expires}.{_mac(key, 'session', f'{token_id}.{expires}')}"


def verify_session(engine: Engine, key: bytes, value: str) -> Principal | None:
    """The principal of a session cookie, or None (forged, expired, or its token is no longer usable)."""
    parts = value.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(parts[0]) > 18:
        return None
    token_id, expires, mac = parts
    if not hmac.compare_digest(_mac(key, "session", f"{token_id}.{expires}").encode(), mac.encode()):
        return None
    now = clock.now()
    if datetime.fromtimestamp(int(expires), UTC) <= now:
        return None
    row = _token_row(engine, int(token_id))
    return _principal(row) if _usable(row, now) else None


def csrf_for(key: bytes, bound_to: str) -> str:
    """The CSRF token of a session (or of the sign-in form's nonce)."""
    return _mac(key, "csrf", bound_to)[:40]


def check_csrf(key: bytes, bound_to: str | None, presented: str | None) -> bool:
    if not bound_to or not presented:
        return False
    return hmac.compare_digest(csrf_for(key, bound_to).encode(), presented.encode("utf-8", "replace"))


# --------------------------------------------------------------------------- one-time login links


def create_login_link(engine: Engine, token_id: int, ttl: timedelta = LOGIN_LINK_TTL) -> str:
    """A one-time code that opens one console session for the token (``GET /login/<code>``)."""
    code = secrets.token_urlsafe(32)
    now = clock.now()
    with engine.begin() as conn:
        conn.execute(insert(LoginLink).values(code_hash=hash_secret(code), token_id=token_id, created_at=now,
                                              expires_at=now + ttl))
    return code


def use_login_link(engine: Engine, code: str) -> Principal | None:
    """Claim a one-time code: its token's principal the first time, None ever after (or once expired)."""
    if len(code) > 200:
        return None
    now = clock.now()
    digest = hash_secret(code)
    with engine.begin() as conn:
        claimed = conn.execute(update(LoginLink).where(LoginLink.code_hash == digest, LoginLink.used_at.is_(None),
                                                       LoginLink.expires_at > now).values(used_at=now)).rowcount
        token_id = conn.execute(select(LoginLink.token_id).where(LoginLink.code_hash == digest)).scalar()
    if claimed != 1 or token_id is None:
        return None
    row = _token_row(engine, token_id)
    return _principal(row) if _usable(row, now) else None

