"""Shared fixtures: real SQLite and PostgreSQL through the same parametrised fixtures.

PostgreSQL is at TOKENTALLY_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test).
Each test session (each pytest-xdist worker) creates its own database there, migrates
it once and empties the tables between tests. SQLite is migrated once per session too,
into a template file that each test gets a fresh copy of. When the server is
unreachable the PostgreSQL cases are skipped with a message, unless CI=true, where
they fail.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from worker import db, logs
from worker.models import Base
from worker.settings import Settings, load

PG_ADMIN_URL = os.environ.get("TOKENTALLY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# A daemon a test starts (`tokentally run` in a subprocess or in-process) serves no console unless
# the test asks for one on a port of its own: never the default 8765, shared by everyone here.
os.environ.setdefault("TOKENTALLY_WEB_ENABLED", "false")
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


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move everything alive after collection (imported modules, the collected tests)
    into the permanent generation: it lives for the whole session anyway, and the
    collector then no longer walks it on every full collection during the tests."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _in_its_own_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own temporary directory: a setting left at its relative default
    (``var/reports``, ``var/outbox``, ``var/daemon-state.json``) lands there, never in the
    checkout the suite runs from (a daemon test's reports once did, and ``make run`` then
    archived its first report as v3)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI points the root logger at CliRunner's (then closed) stderr and sets the third-party
    loggers' levels; put them back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    libraries = {name: logging.getLogger(name).level for name in logs.LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lib_level in libraries.items():
        logging.getLogger(name).setLevel(lib_level)


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


def _empty_tables(engine: Engine) -> Callable[[], None]:
    """A function that empties every table and restarts the id sequences, in one round trip.

    Equivalent to ``TRUNCATE ... RESTART IDENTITY`` for these small test tables, but a
    TRUNCATE of 18 tables gives each table and index a new file (~0.1 s, every test);
    DELETE on tables of a few rows and ``setval`` cost a millisecond or two."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]  # children before parents
    with engine.connect() as conn:
        sequences = conn.execute(text("SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), "
                                      "start_value FROM pg_sequences")).all()
    statements = [f"DELETE FROM {name}" for name in tables]
    statements += [f"SELECT setval('{name}', {start}, false)" for name, start in sequences]
    sql = "; ".join(statements)

    def empty() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)

    return empty


@pytest.fixture(scope="session")
def pg_emptier(pg_migrated: str) -> Iterator[Callable[[], None]]:
    engine = db.make_engine(pg_migrated)
    yield _empty_tables(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "tokentally.db"
    db.migrate(f"sqlite:///{path}")
    # the migration's engine is disposed: the WAL was checkpointed into the file and removed
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: SQLite file or the session's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "tokentally.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_migrated")
        request.getfixturevalue("pg_emptier")()
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
    from cli import app

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
