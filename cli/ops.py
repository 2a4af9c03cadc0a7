"""migrate, run."""

from __future__ import annotations

import typer

from worker import db
from worker.scheduler import Daemon
from worker.settings import SettingsError
from cli.output import console
from cli.state import fail, state

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
    """Run the worker daemon in the foreground (Ctrl-C / SIGTERM stops it cleanly)."""
    st = state(ctx)
    daemon = Daemon(st.settings(), st.engine())
    try:
        daemon.run()
    except SettingsError as exc:
        fail(f"settings: {exc}", code=2)
