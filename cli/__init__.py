"""The ``tokentally`` command line: the root ``app``, its options, and main() (the console script).

The root group is :class:`cli.commands.LazyGroup`: ``--help`` lists the commands from the
table in ``cli.commands`` and a command's module is imported only when it runs, so the
command line starts without importing what other commands need. The root options only
land on the click context here; ``cli.state.state(ctx)`` turns them into a State when a
command asks. Command modules import ``cli.state`` and ``cli.output``, never this package.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import typer

from worker.settings import SettingsError
from cli.commands import LazyGroup
from cli.output import print_error

__all__ = ["app", "main"]

app = typer.Typer(cls=LazyGroup, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="tokentally keeps the books on LLM usage: ingest, price, summarise, alert, report.")


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path = typer.Option(None, "--config", envvar="TOKENTALLY_CONFIG",
                                help="Settings file (default ./settings.toml). Env: TOKENTALLY_CONFIG"),
    database_url: str = typer.Option(None, "--database-url", envvar="TOKENTALLY_DATABASE_URL", show_default=False,
                                     help="Database URL, overrides database.url. Env: TOKENTALLY_DATABASE_URL"),
    log_level: str = typer.Option(None, "--log-level", envvar="TOKENTALLY_LOGGING_LEVEL", show_default=False,
                                  help="DEBUG, INFO, WARNING or ERROR, overrides logging.level. "
                                       "Env: TOKENTALLY_LOGGING_LEVEL"),
) -> None:
    """The options stay in ``ctx.params`` for ``cli.state.state``."""


def main() -> Any:
    logging.captureWarnings(True)
    try:
        return app(prog_name="tokentally")
    except SettingsError as exc:
        print_error(f"settings: {exc}")
        sys.exit(2)
