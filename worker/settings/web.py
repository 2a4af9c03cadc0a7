"""``[web]``: the console and HTTP API (``tokentally run`` / ``tokentally web``), report links.

Checked at start like every section: a bad bind address, port, URL or duration names its key.
``secret`` signs session cookies, CSRF tokens and report links; it is read only from
TOKENTALLY_WEB_SECRET or TOKENTALLY_WEB_SECRET_FILE (else one is generated once and kept in
the database, so every process of one installation signs alike).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from worker.settings.reader import Reader, SettingsError, duration

MIN_SECRET_CHARS = 32
MAX_WORKERS = 64


@dataclass(frozen=True)
class WebSettings:
    """``[web]``."""

    enabled: bool = True  # `tokentally run` serves the console and API beside the daemon
    bind: str = "127.0.0.1"
    port: int = 8765
    public_url: str | None = None  # how people reach it (links in emails); https => Secure cookies
    link_ttl: timedelta = timedelta(days=30)  # a signed report link opens its report this long
    session_ttl: timedelta = timedelta(hours=12)  # a console sign-in lasts this long
    max_body_bytes: int = 10 * 1024 * 1024  # a larger request body is refused with 413
    metrics_public: bool = False  # /metrics without a token (else an admin or auditor token)
    workers: int = 1  # server processes on the one listening socket (web.workers); 1: uvicorn in a thread
    secret: str | None = field(default=None, repr=False)

    @property
    def loopback(self) -> bool:
        """Whether the bind address is reachable only from this machine."""
        if self.bind == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.bind).is_loopback
        except ValueError:
            return False

    @property
    def https(self) -> bool:
        return bool(self.public_url) and self.public_url.startswith("https://")

    @property
    def base_url(self) -> str:
        """Where links point: public_url, else the bind address and port."""
        if self.public_url:
            return self.public_url
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"http://{host}:{self.port}"


def parse_web(raw: dict[str, Any] | None, env: dict[str, str]) -> WebSettings:
    d = WebSettings()
    r = Reader(raw or {}, "web", env)
    enabled = r.take("enabled", bool, d.enabled)
    bind = r.take("bind", str, d.bind)
    if bind != "localhost":
        try:
            ipaddress.ip_address(bind)
        except ValueError:
            raise SettingsError(f"{r.key('bind')}: expected an IP address like 127.0.0.1 or 0.0.0.0, "
                                f"got {bind!r}") from None
    port = r.bounded_int("port", d.port, minimum=1, maximum=65535)
    public_url = r.take("public_url", str, None)
    if public_url is not None:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise SettingsError(f"{r.key('public_url')}: expected a URL like https://tokentally.example.org, "
                                f"got {public_url!r}")
        public_url = public_url.rstrip("/")
    link_ttl = duration(r, "link_ttl", d.link_ttl)
    session_ttl = duration(r, "session_ttl", d.session_ttl)
    for name, value in (("link_ttl", link_ttl), ("session_ttl", session_ttl)):
        if not timedelta(minutes=1) <= value <= timedelta(days=3660):
            raise SettingsError(f"{r.key(name)}: expected a duration from 1m to 3660d")
    max_body = r.positive_int("max_body_bytes", d.max_body_bytes, maximum=1024**3)
    metrics_public = r.take("metrics_public", bool, d.metrics_public)
    workers = r.bounded_int("workers", d.workers, minimum=1, maximum=MAX_WORKERS)
    secret = r.secret("secret")
    if secret is not None and len(secret) < MIN_SECRET_CHARS:
        raise SettingsError(f"{r.key('secret')}: at least {MIN_SECRET_CHARS} characters "
                            f"(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    r.done()
    return WebSettings(enabled=enabled, bind=bind, port=port, public_url=public_url, link_ttl=link_ttl,
                       session_ttl=session_ttl, max_body_bytes=max_body, metrics_public=metrics_public,
                       workers=workers, secret=secret)
