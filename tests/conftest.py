"""Shared fixtures: real SQLite and PostgreSQL through the same parametrised fixtures.

PostgreSQL is at TOKENTALLY_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test).
Each test session creates its own database there, migrates it once and empties the
tables between tests. When the server is unreachable the PostgreSQL cases are
skipped with a message, unless CI=true, where they fail.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from worker import db
from worker.models import Base
from worker.settings import Settings, load

PG_ADMIN_URL = os.environ.get("TOKENTALLY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_reachable() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[0]


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI points the root logger at CliRunner's (then closed) stderr; put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at the end)."""
    problem = _pg_reachable()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL required in CI but unreachable at {PG_ADMIN_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL} ({problem}); PostgreSQL tests skipped")
    name = f"tokentally_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(PG_ADMIN_URL, name)
    yield db.normalise_url(url)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_migrated(pg_server_url: str) -> str:
    db.migrate(pg_server_url)
    return pg_server_url


def _truncate(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: SQLite file or the session's PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tokentally.db'}"
        db.migrate(url)
        yield url
    else:
        url = request.getfixturevalue("pg_migrated")
        engine = db.make_engine(url)
        _truncate(engine)
        engine.dispose()
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = db.make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def make_settings(db_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings from TOML text (plus the test database), as a user would write them."""

    def factory(toml: str = "", **fields: Any) -> Settings:
        path = tmp_path / f"settings-{uuid.uuid4().hex[:6]}.toml"
        path.write_text(toml, encoding="utf-8")
        settings = load(path, env={"TOKENTALLY_DATABASE_URL": db_url})
        return replace(settings, **fields) if fields else settings

    return factory


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run the CLI in-process: cli("ingest", path, "--format", "json", config=...)."""
    from worker.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, config: Path | None = None, env: dict[str, str] | None = None):
        cfg = config
        if cfg is None:
            cfg = tmp_path / "cli-settings.toml"
            if not cfg.exists():
                cfg.write_text("", encoding="utf-8")
        full_env = {"TOKENTALLY_DATABASE_URL": db_url, "TOKENTALLY_CONFIG": str(cfg), **(env or {})}
        return runner.invoke(app, [str(a) for a in args], env=full_env, catch_exceptions=False)

    return invoke
