"""migrate, run."""

from __future__ import annotations

import typer

from reports.direct import DirectAlarm
from worker import db
from worker.scheduler import Daemon
from worker.settings import SettingsError
from cli.output import console
from cli.state import app, check_migrated, fail, state


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


@app.command()
def run(ctx: typer.Context) -> None:
    """Run the worker daemon in the foreground (Ctrl-C / SIGTERM stops it cleanly). A PostgreSQL
    database that does not answer at start is waited for (system.database_unreachable is sent)."""
    st = state(ctx)
    settings = st.settings()
    waits = db.sqlite_file(settings.database_url) is None  # a SQLite file is checked at once, as every command does
    engine = st.engine(migrated=not waits)
    try:
        daemon = Daemon(settings, engine, alarm=DirectAlarm(settings))
        if waits:
            if not daemon.wait_for_database():
                return
            check_migrated(engine)
        daemon.run()
    except SettingsError as exc:
        fail(f"settings: {exc}", code=2)
