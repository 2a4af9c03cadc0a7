"""The FastAPI application: the console's pages, sign-in, the /v1 API, health, metrics, report links.

:func:`create_app` is the only constructor (``tokentally run``/``web`` and the tests use it):
settings and engine go on ``app.state``, with the installation's signing key. Every response
(errors too) passes :class:`~web.security.SecurityHeaders`; a request body over ``[web] max_body_bytes``
is refused with 413 (FastAPI's ``max_body_size``). Its lifespan bounds the threadpool (:data:`THREADS`).
An error a browser asks for (Accept: text/html, outside /v1) is a small page; otherwise JSON.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from worker.settings import Settings
from web import api, health, login, metrics, pages, shared
from web.auth import signing_key
from web.security import SecurityHeaders
from web.templating import render


# Requests served at once by the threadpool (sync routes: each holds a database connection while
# it runs). Fewer than worker.db.POOL_SIZE, so the pool never opens and closes a connection per
# request under load; more would only queue on the 2 cores (anyio's default is 40).
THREADS = 16


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    to_thread.current_default_thread_limiter().total_tokens = THREADS
    yield


class App(FastAPI):
    """FastAPI whose every response, a 500 or a 413 from the outermost layers included, passes
    :class:`~web.security.SecurityHeaders` (it wraps the whole middleware stack)."""

    def build_middleware_stack(self):  # noqa: ANN201 - Starlette's ASGI app type
        return SecurityHeaders(super().build_middleware_stack(), https=self.state.settings.web.https)


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    app = App(title="tokentally", version="1", summary="The books on LLM usage: gate, ingest, usage, alerts.",
              openapi_url="/openapi.json", docs_url=None, redoc_url=None, max_body_size=settings.web.max_body_bytes,
              lifespan=_lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.key = signing_key(settings, engine)
    app.state.forecasts = {}  # the overview's, reused for a while (web.views.overview.FORECAST_TTL)
    app.include_router(health.router)
    app.include_router(login.router)
    app.include_router(api.router)
    app.include_router(shared.router)
    app.include_router(metrics.router)
    app.include_router(pages.router)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    wants_page = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/v1/")
    if wants_page and exc.status_code in (401, 403, 404, 405):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return render(request, "error.html", {"status_code": exc.status_code, "detail": exc.detail, "next": target},
                      status_code=exc.status_code, headers=getattr(exc, "headers", None))
    return await http_exception_handler(request, exc)
