"""Engines, sessions and schema migration.

The dialect-specific choices live here: SQLite gets WAL, a busy timeout and
foreign keys; PostgreSQL goes through psycopg 3. Alembic is imported only to migrate:
the revision checks every command makes read the version table and the migration
files directly. SQLAlchemy Core only: ORM sessions are ``worker.sessions``, so a command
that reads through Core (``status``) never imports the ORM.
"""

from __future__ import annotations

import ast
import logging
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc as sa_exc, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from worker.redact import secret_params

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version"  # alembic's default; migrations/env.py keeps it


def normalise_url(url: str) -> str:
    """postgresql:// and postgres:// mean psycopg 3 here."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and for an in-memory database)."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


# Connections a pool keeps open once they were needed at once (opened lazily, so a CLI command
# holds one). Above it a connection is opened and closed per checkout: a PostgreSQL connect on
# every request under load. The console's threadpool (web.app.THREADS) plus the daemon's jobs fit.
POOL_SIZE = 20
# A PostgreSQL connection idle in the pool this long is pinged when checked out (one round trip;
# a dead one is replaced before anyone uses it, as pool_pre_ping does). One back in the pool more
# recently is not: under load that ping was half of each gate check's round trips. A connection
# the server dropped since is found by its first statement, which then fails; SQLAlchemy
# invalidates the pool, so the next checkouts connect afresh (worker.gate.Gate.check retries once).
PING_AFTER_IDLE = 1.0  # seconds


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30}, pool_size=POOL_SIZE)
        else:
            engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_size=POOL_SIZE)
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _ping_if_idle(engine))
    return engine


def _checked_in(_dbapi_conn: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(engine: Engine) -> Any:
    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return  # just connected, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure: the pool replaces the connection and retries
            raise sa_exc.DisconnectionError(f"pooled connection failed its ping: {exc}") from exc
    return checkout


PROBE_TIMEOUT_SECONDS = 10  # a health check waits this long for a connection


def probe_engine(url: str) -> Engine:
    """An engine that opens a fresh connection each time (no pool), for health checks: a pooled
    connection (a SQLite file still open after it was moved away) would hide an unreachable
    database. A SQLite file is opened read-write and never created, so a file that went away
    is an error here, not a new empty database."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        target = f"sqlite:///file:{path}?mode=rw&uri=true" if path is not None else url
        engine = create_engine(target, poolclass=NullPool, connect_args={"timeout": PROBE_TIMEOUT_SECONDS})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    args = {} if "connect_timeout" in parsed.query else {"connect_timeout": PROBE_TIMEOUT_SECONDS}
    return create_engine(url, poolclass=NullPool, connect_args=args)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")  # first: the journal mode pragma may have to wait for a lock
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def display_url(url: str) -> str:
    """The URL with any password masked, for logs and status output: the ``user:password@`` form
    and secret-looking query parameters (``?password=``, ``?sslpassword=``: ``worker.redact``)."""
    return secret_params(make_url(normalise_url(url)).render_as_string(hide_password=True))


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = normalise_url(url)
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the schema to ``revision``; the only way the schema changes."""
    from alembic import command

    engine = make_engine(url)
    try:
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (alembic's version table; None before the first migration).

    Read with one query rather than through alembic's MigrationContext, which imports alembic
    and every DDL dialect it has: every CLI command that opens the database asks."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(found) > 1:
        raise RuntimeError(f"the database is at several schema revisions at once: {', '.join(sorted(found))}")
    return found[0] if found else None


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The schema revision the code needs: the migration no other migration revises.

    Read from each ``migrations/versions`` file's ``revision`` and ``down_revision``
    assignments (parsed, not imported), as alembic's ScriptDirectory finds the head but
    without importing alembic and every migration. The migrations cannot change while a
    process runs."""
    revisions: dict[str, tuple[str, ...]] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found = _assignments(path, ("revision", "down_revision"))
        if "revision" in found:
            down = found.get("down_revision")
            revisions[found["revision"]] = tuple(down) if isinstance(down, (tuple, list)) else (
                (down,) if down else ())
    revised = {down for downs in revisions.values() for down in downs}
    heads = sorted(set(revisions) - revised)
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads: {', '.join(heads)}")
    return heads[0] if heads else None


_ASSIGNMENT = re.compile(r"^(\w+)[ \t]*(?::[^=\n]*)?=[ \t]*(.+?)[ \t]*(?:#.*)?$", re.MULTILINE)


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """The module-level ``name = <literal>`` assignments of a Python file.

    Each is read from its own line (alembic writes ``revision = '0020'`` so, annotated or not)
    and evaluated as a literal; a file where one is not a one-line literal is parsed whole, as
    :func:`ast.parse` would (parsing every migration took most of a CLI command's own time)."""
    source = path.read_text(encoding="utf-8")
    found: dict[str, Any] = {}
    try:
        for name, value in _ASSIGNMENT.findall(source):
            if name in names:
                found[name] = ast.literal_eval(value)
        return found
    except (SyntaxError, ValueError):
        found.clear()
    for node in ast.parse(source, str(path)).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names and node.value is not None:
                    found[target.id] = ast.literal_eval(node.value)
    return found
