"""migrate, run, web."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Optional

import typer
from rich.text import Text

from worker import db
from worker.scheduler import Daemon, validate_schedule
from worker.settings import Settings, SettingsError
from web.server import WebServer, WebStartError, announce
from cli.output import console, err_console
from cli.state import app, fail, state


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Upgrade the database schema to the current revision (Alembic)."""
    st = state(ctx)
    url = st.settings().database_url
    try:
        db.migrate(url)
    except Exception as exc:
        fail(f"migration of {db.display_url(url)} failed: {exc}", code=1)
    console.print(f"database {db.display_url(url)} is at revision {db.head_revision()}", highlight=False,
                  markup=False, soft_wrap=True)


def _say(message: str) -> None:
    err_console.print(message, highlight=False, markup=False, soft_wrap=True)


def _warn(message: str) -> None:
    err_console.print(Text("warning: ", style="yellow") + Text(message), highlight=False, soft_wrap=True)


def _start_web(settings: Settings, engine: Any) -> WebServer:
    server = WebServer(settings, engine)
    try:
        server.start()
    except WebStartError as exc:
        fail(str(exc), code=1)
    _say(f"console and API at {server.url}/ (OpenAPI: {server.url}/openapi.json)")
    announce(settings, engine, _say, _warn)
    return server


@app.command()
def run(ctx: typer.Context) -> None:
    """Run the worker daemon in the foreground, with the console and API when [web] enabled
    (Ctrl-C / SIGTERM stops both cleanly)."""
    st = state(ctx)
    settings, engine = st.settings(), st.engine()
    try:
        validate_schedule(settings)  # before the console listens: a bad schedule starts nothing
    except SettingsError as exc:
        fail(f"settings: {exc}", code=2)
    daemon = Daemon(settings, engine)
    daemon.install_signals()  # a SIGTERM while the console starts stops the daemon before its loop
    server = _start_web(settings, engine) if settings.web.enabled else None
    try:
        daemon.run()
    except SettingsError as exc:
        fail(f"settings: {exc}", code=2)
    finally:
        if server is not None:
            server.stop()


@app.command()
def web(
    ctx: typer.Context,
    bind: Optional[str] = typer.Option(None, "--bind", help="Address to listen on, overrides [web] bind. "
                                                           "Env: TOKENTALLY_WEB_BIND"),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535,
                                       help="Port, overrides [web] port. Env: TOKENTALLY_WEB_PORT"),
) -> None:
    """Serve the console and API alone, without the daemon (one more process, or several).
    SIGTERM / Ctrl-C stop it after the requests in hand."""
    st = state(ctx)
    if bind is not None:
        st.env["TOKENTALLY_WEB_BIND"] = bind
    if port is not None:
        st.env["TOKENTALLY_WEB_PORT"] = str(port)
    settings, engine = st.settings(), st.engine()
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            os._exit(1)  # a second Ctrl-C: at once
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = _start_web(settings, engine)
    while not stop.wait(0.5):
        pass
    server.stop()
