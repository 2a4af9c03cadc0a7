"""Headers every response carries, and the request body limit (pure ASGI middleware, no per-request task).

Every response gets ``X-Content-Type-Options: nosniff``, a Content-Security-Policy (only this
origin; no inline script, no framing), ``X-Frame-Options: DENY``, a ``Referrer-Policy`` and a
charset on text types; a ``server`` header is dropped (uvicorn runs with ``server_header=False``
too). A route that sets its own CSP (the archived report HTML, which has inline styles and no
script at all) keeps it.

:class:`BodyLimit` refuses a body over ``[web] max_body_bytes`` with 413: at once when
Content-Length says so, else as soon as the streamed bytes pass it (the app then sees a
disconnect, and whatever it answers is replaced by the 413).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import orjson

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


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await too_large(send, self.max_bytes)
                    return
        seen = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to the cut body is replaced by the 413
            started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await too_large(send, self.max_bytes)


async def too_large(send: Any, limit: int) -> None:
    body = orjson.dumps({"detail": f"the request body is larger than the limit of {limit:,} bytes "
                                   f"([web] max_body_bytes): send smaller batches"})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
