"""What every command shares: the State built from the root options, fail().

A command asks ``state(ctx)`` for the State: made on first use from the root options
(``--config``, ``--database-url``, ``--log-level``, see ``cli``), kept on the root click context
and closed with it. Settings are loaded and the engine created
lazily, once per invocation, so ``--help`` and commands that need no database never touch one.
An engine handed to a command is checked to be at the code's schema revision (``tokentally
migrate`` is the only command that asks for one that is not). fail() prints the message as it is
and exits: code 2 for what the operator asked wrongly (settings, options), 1 otherwise.

Command modules import this module and ``cli.output``, never the ``cli`` package.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import typer
from sqlalchemy import Engine

from worker import db, logs
from worker.settings import Settings, SettingsError, load
from worker.settings.warnings import settings_warnings
from cli.output import print_error

logger = logging.getLogger(__name__)


@dataclass
class State:
    config: Path | None = None
    database_url: str | None = None
    log_level: str | None = None
    _settings: Settings | None = None
    _engine: Engine | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def settings(self) -> Settings:
        if self._settings is None:
            env = dict(self.env)
            if self.database_url:
                env["TOKENTALLY_DATABASE_URL"] = self.database_url
            if self.log_level:
                env["TOKENTALLY_LOGGING_LEVEL"] = self.log_level
            try:
                self._settings = load(self.config, env)
            except SettingsError as exc:
                fail(f"settings: {exc}", code=2)
            logs.setup(self._settings.log_level, self._settings.log_format, self._settings.log_libraries)
            for warning in settings_warnings(self._settings):  # at the start of every command and the daemon
                logger.warning(warning, extra={"action": "settings_warning"})
        return self._settings

    def engine(self, *, migrated: bool = True) -> Engine:
        if self._engine is None:
            url = self.settings().database_url
            missing = db.sqlite_file(url)
            if migrated and missing is not None and not missing.exists():
                # connecting would create an empty file and hide a wrong path or working directory
                fail(f"database file {missing} does not exist (schema revision none): run `tokentally migrate` "
                     f"to create it (or check database.url / TOKENTALLY_DATABASE_URL)", code=2)
            self._engine = db.make_engine(url)
            if migrated:
                check_migrated(self._engine)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def check_migrated(engine: Engine) -> None:
    try:
        current = db.current_revision(engine)
    except Exception as exc:  # unreachable database: say which, never the password
        fail(f"database {db.display_url(str(engine.url))} is unreachable: {exc}", code=2)
    head = db.head_revision()
    if current != head:
        fail(f"database {db.display_url(str(engine.url))} is at schema revision {current or 'none'}, "
             f"the code needs {head}: run `tokentally migrate`", code=2)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print the message as it is (no markup, no wrapping inside paths) and exit."""
    print_error(message)
    raise typer.Exit(code)


def state(ctx: typer.Context) -> State:
    """The invocation's State, made from the root options the first time a command asks."""
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        options = root.params
        root.obj = State(config=options.get("config"), database_url=options.get("database_url"),
                         log_level=options.get("log_level"))
        root.call_on_close(root.obj.close)
    return root.obj
