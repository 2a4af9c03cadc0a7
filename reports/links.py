"""Signed report links: one report version, opened without a login until the link expires.

A link is ``<public_url>/shared/reports/<id>/v<version>/<expires>/<signature>/report.html``:
the signature is an HMAC-SHA256 over the report id, its version and the expiry (a Unix time),
with a key derived from the installation's signing key. Altering any of them, or the signature,
fails :func:`verify_link`; so does a link past its expiry. The signature sits in the path, so
the report's relative references (chart.png) stay inside the same signed version.

The signing key (:func:`signing_key`) is ``[web] secret`` (TOKENTALLY_WEB_SECRET or its _FILE)
or, without it, a key generated once and kept in ``web_keys``; every process reads the same row
(the first to insert it wins). :func:`derive` gives each use (links, sessions, CSRF) its own key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from worker import clock, sql
from worker.models import WebKey
from worker.settings import Settings

LINK_PREFIX = "/shared/reports"
KEY_NAME = "signing"


def signing_key(settings: Settings, engine: Engine) -> bytes:
    """The installation's signing key: ``[web] secret``, else the one generated once in the database."""
    if settings.web.secret:
        return settings.web.secret.encode()
    with engine.connect() as conn:
        stored = conn.execute(select(WebKey.secret).where(WebKey.name == KEY_NAME)).scalar()
    if stored is None:
        with engine.begin() as conn:
            conn.execute(sql.insert_ignore(engine.dialect.name, WebKey, ["name"]).values(
                name=KEY_NAME, secret=secrets.token_urlsafe(48), created_at=clock.now()))
            stored = conn.execute(select(WebKey.secret).where(WebKey.name == KEY_NAME)).scalar_one()
    return stored.encode()


def derive(key: bytes, purpose: str) -> bytes:
    """A key for one purpose ("link", "session", "csrf"): one leaked MAC never forges another kind."""
    return hmac.new(key, f"tokentally:{purpose}".encode(), hashlib.sha256).digest()


def _mac(key: bytes, report_id: int, version: int, expires: int) -> str:
    message = f"report:{report_id}:v{version}:{expires}".encode()
    return hmac.new(derive(key, "link"), message, hashlib.sha256).hexdigest()


def sign_link(key: bytes, report_id: int, version: int, expires_at: datetime) -> str:
    """The path of a signed link to one report version's directory (append a file name)."""
    expires = int(expires_at.timestamp())
    return f"{LINK_PREFIX}/{report_id}/v{version}/{expires}/{_mac(key, report_id, version, expires)}/"


def verify_link(key: bytes, report_id: int, version: int, expires: int, signature: str,
                now: datetime | None = None) -> bool:
    """Whether the link's parts were signed together and the link has not expired."""
    expected = _mac(key, report_id, version, expires)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return False
    return (now or clock.now()) < datetime.fromtimestamp(expires, UTC)


def report_link(settings: Settings, key: bytes, report_id: int, version: int,
                now: datetime | None = None) -> str | None:
    """The full signed URL of a report version's report.html, when ``[web] public_url`` is set."""
    if not settings.web.public_url:
        return None
    expires_at = (now or clock.now()) + settings.web.link_ttl
    return f"{settings.web.public_url}{sign_link(key, report_id, version, expires_at)}report.html"
