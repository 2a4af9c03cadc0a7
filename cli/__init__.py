"""The ``tokentally`` command line: the root ``app`` (from cli.state) with every command module on it.

main() is the console script. Each command module adds its commands to ``app`` when imported;
they are imported here, and only here, so ``import cli`` gives the whole command line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from rich.text import Text

from worker.settings import SettingsError
from cli.output import err_console
from cli.state import app
# Imported in the order their commands are listed in --help (typer keeps the order of creation).
from cli import (  # noqa: F401,E402  (each registers its commands on app)
    accounts, alerts, bench, integrity, jobs, ingest, usage, forecast, limits, notify, ops, rejects, reports,
    summaries,
)

__all__ = ["app", "main"]


def main() -> Any:
    logging.captureWarnings(True)
    try:
        return app(prog_name="tokentally")
    except SettingsError as exc:
        err_console.print(Text("error: ", style="red") + Text(f"settings: {exc}"), highlight=False,
                          soft_wrap=True)
        sys.exit(2)
