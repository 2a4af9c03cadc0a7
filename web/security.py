"""Headers every response carries (pure ASGI middleware: no per-request task).

Every response gets ``X-Content-Type-Options: nosniff``, a Content-Security-Policy (only this
origin; no inline script, no framing), ``X-Frame-Options: DENY``, a ``Referrer-Policy`` and a
charset on text types; a ``server`` header is dropped (uvicorn runs with ``server_header=False``
too). A route that sets its own CSP (the archived report HTML, which has inline styles and no
script at all) keeps it.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# an archived report: the email-style HTML's inline styles, its chart; never a script
ARCHIVE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'; sandbox")
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, https: bool = False):
        self.app = app
        self.extra = [(b"strict-transport-security", b"max-age=31536000")] if https else []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = secure_headers(message.get("headers") or [], self.extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secure_headers(headers: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out = []
    has_csp = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"server" or lower in {h for h, _ in HEADERS}:
            continue
        if lower == b"content-type" and (value.startswith(b"text/") or value.startswith(b"application/json")) \
                and b"charset" not in value:
            value += b"; charset=utf-8"
        has_csp |= lower == b"content-security-policy"
        out.append((name, value))
    if not has_csp:
        out.append((b"content-security-policy", CSP.encode()))
    return out + HEADERS + extra
