"""Serving the console alone: ``tokentally web`` and ``reports serve`` (cli.ops and cli.reports),
and the start ``tokentally run`` shares (:func:`start_web`)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import typer
from rich.text import Text

from worker.settings import Settings
from web.server import WebServer, WebStartError, announce
from cli.output import err_console
from cli.state import fail, state


def _say(message: str) -> None:
    err_console.print(message, highlight=False, markup=False, soft_wrap=True)


def _warn(message: str) -> None:
    err_console.print(Text("warning: ", style="yellow") + Text(message), highlight=False, soft_wrap=True)


def start_web(settings: Settings, engine: Any) -> WebServer:
    server = WebServer(settings, engine)
    try:
        server.start()
    except WebStartError as exc:
        fail(str(exc), code=1)
    _say(f"console and API at {server.url}/ (OpenAPI: {server.url}/openapi.json)")
    announce(settings, engine, _say, _warn)
    return server


def serve_console(ctx: typer.Context, bind: str | None, port: int | None, page: str = "/",
                  workers: int | None = None) -> None:
    """``tokentally web`` (and ``reports serve``, which points at ``page``): the console and API
    until SIGTERM / Ctrl-C (exit 0), or until the server stops by itself (exit 1)."""
    st = state(ctx)
    for var, value in (("TOKENTALLY_WEB_BIND", bind), ("TOKENTALLY_WEB_PORT", port),
                       ("TOKENTALLY_WEB_WORKERS", workers)):
        if value is not None:
            st.env[var] = str(value)
    settings, engine = st.settings(), st.engine()
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            os._exit(1)  # a second Ctrl-C: at once
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = start_web(settings, engine)
    if page != "/":
        _say(f"open {server.url}{page} (sign in with a token: `tokentally tokens create`)")
    while not stop.wait(0.5) and server.running:
        pass
    server.stop()
    if not stop.is_set():
        fail("web: the server stopped by itself (see the log above)", code=1)
