"""migrate, run, web."""

from __future__ import annotations

from typing import Optional

import typer

from reports.direct import DirectAlarm
from worker import db
from worker.scheduler import Daemon, validate_schedule
from worker.settings import SettingsError
from cli.console import serve_console, start_web
from cli.output import console
from cli.state import check_migrated, fail, state

commands = typer.Typer()  # its top-level commands (cli.commands lists them)


@commands.command()
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


@commands.command()
def run(ctx: typer.Context) -> None:
    """Run the worker daemon in the foreground, with the console and API when [web] enabled.

    Ctrl-C / SIGTERM stops both cleanly. A PostgreSQL database that does not answer at start
    is waited for (system.database_unreachable is sent)."""
    st = state(ctx)
    settings = st.settings()
    waits = db.sqlite_file(settings.database_url) is None  # a SQLite file is checked at once, as every command does
    engine = st.engine(migrated=not waits)
    try:
        validate_schedule(settings)  # before the console listens: a bad schedule starts nothing
        daemon = Daemon(settings, engine, alarm=DirectAlarm(settings))
    except SettingsError as exc:
        fail(f"settings: {exc}", code=2)
    daemon.install_signals()  # a SIGTERM while the console starts stops the daemon before its loop
    if waits:
        if not daemon.wait_for_database():
            return
        check_migrated(engine)
    server = start_web(settings, engine) if settings.web.enabled else None
    try:
        daemon.run()
    except SettingsError as exc:
        fail(f"settings: {exc}", code=2)
    finally:
        if server is not None:
            server.stop()


@commands.command()
def web(
    ctx: typer.Context,
    bind: Optional[str] = typer.Option(None, "--bind", help="Address to listen on, overrides [web] bind. "
                                                           "Env: TOKENTALLY_WEB_BIND"),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535,
                                       help="Port, overrides [web] port. Env: TOKENTALLY_WEB_PORT"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=64,
                                          help="Server processes on the one socket, overrides [web] workers. "
                                               "Env: TOKENTALLY_WEB_WORKERS"),
) -> None:
    """Serve the console and API alone, without the daemon (one more process, or several).

    SIGTERM / Ctrl-C stop it after the requests in hand."""
    serve_console(ctx, bind, port, workers=workers)
