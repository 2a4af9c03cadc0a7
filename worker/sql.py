"""Every dialect choice in one place: tokentally runs the same statements on PostgreSQL and SQLite.

Callers build their statements from these pieces and never look at the dialect
themselves:

- :func:`insert_ignore` and :func:`upsert`: ``INSERT … ON CONFLICT DO NOTHING / DO UPDATE``
  (both databases speak it; SQLAlchemy needs the dialect's own ``insert``);
- :func:`greatest`: the larger of two values (SQLite's two-argument ``max()``);
- :func:`locked` and :func:`skip_locked`: row locks on PostgreSQL, where replicas
  race; SQLite serialises writers and has none;
- :func:`local_bucket` and :func:`utc_hour_bucket`: a UTC timestamp's local day or
  month, and its UTC hour, in SQL (PostgreSQL's ``timezone()``; SQLite stores UTC
  text and shifts it by the zone's offset, segment by segment across DST changes);
- :func:`bulk_path`: how the ledger writer loads a batch, ``"copy"`` (PostgreSQL's
  binary COPY, see ``worker.ledger.rows``) or ``"executemany"`` (SQLite);
- :func:`analyze`: refresh the planner's statistics after a bulk load;
- :func:`insert_rows_ignore`: many rows at once, those already there skipped
  (``INSERT … SELECT FROM jsonb_to_recordset(one document)`` on PostgreSQL, executemany on SQLite);
- :func:`one_of`: ``IN (…)``, or ``= ANY(array)`` on PostgreSQL (one parameter for a thousand ids);
- :func:`update_from_values` and :func:`unnest_rows`: how many rows are updated at once
  (``UPDATE … FROM unnest(arrays)`` on PostgreSQL, executemany on SQLite);
- :func:`plan_each_time`: PostgreSQL plans each statement with its values (no generic plan);
- :func:`partial_index_scan`: a read that must go through a partial index the planner cannot cost;
- :func:`is_unique_violation`: whether a driver error is a unique-key conflict;
- :func:`single_statements`: an engine for work made of statements that each stand alone
  (reads of one statement, the gate's increments), without BEGIN/COMMIT round trips
  (autocommit on PostgreSQL);
- :func:`flush_not_awaited`: a PostgreSQL UPDATE whose own commit does not wait for the WAL
  flush (the gate's counters, each increment a transaction of its own);
- :func:`is_unreachable`: whether an error means the database cannot be reached (a
  connection refused, cut or closed by the server; a SQLite file that cannot be opened),
  as opposed to a statement the database refused.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (ARRAY, Connection, Engine, Select, any_, bindparam, case, column, func, insert,
                        literal_column, select, text)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import ColumnElement

POSTGRESQL = "postgresql"
SQLITE = "sqlite"


def _insert(dialect: str, model: Any) -> Any:
    if dialect == POSTGRESQL:
        return pg_insert(model)
    if dialect == SQLITE:
        return sqlite_insert(model)
    raise ValueError(f"unsupported database dialect {dialect!r} (tokentally runs on postgresql and sqlite)")


def insert_ignore(dialect: str, model: Any, keys: list[str]) -> Any:
    """``INSERT … ON CONFLICT (keys) DO NOTHING``: a row whose key is there already is left alone."""
    if dialect not in (POSTGRESQL, SQLITE):
        return insert(model)
    return _insert(dialect, model).on_conflict_do_nothing(index_elements=keys)


def upsert(dialect: str, model: Any, keys: list[str], values: Any = None,
           set_: Callable[[Any], dict[str, Any]] | None = None) -> Any:
    """``INSERT … ON CONFLICT (keys) DO UPDATE SET …``. ``set_(excluded)`` gives the updates
    (default: every column but the keys, from the row that was refused)."""
    stmt = _insert(dialect, model)
    if values is not None:
        stmt = stmt.values(values)
    excluded = stmt.excluded
    updates = set_(excluded) if set_ else {c.name: excluded[c.name] for c in model.__table__.columns
                                           if c.name not in keys and not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=keys, set_=updates)


@lru_cache(maxsize=None)
def cached_upsert(dialect: str, model: Any, keys: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    """An upsert that sets ``columns`` from the refused row, built once per dialect (hot paths)."""
    return upsert(dialect, model, list(keys), set_=lambda excluded: {c: excluded[c] for c in columns})


def greatest(dialect: str, a: Any, b: Any) -> ColumnElement:
    """The larger of two values (SQLite's two-argument ``max()`` is scalar)."""
    return func.greatest(a, b) if dialect == POSTGRESQL else func.max(a, b)


def locked(query: Select, dialect: str) -> Select:
    """``FOR UPDATE`` on PostgreSQL (replicas touching the same row take turns)."""
    return query.with_for_update() if dialect == POSTGRESQL else query


def skip_locked(query: Select, dialect: str) -> Select:
    """``FOR UPDATE SKIP LOCKED`` on PostgreSQL: replicas claim different rows."""
    return query.with_for_update(skip_locked=True) if dialect == POSTGRESQL else query


def bulk_path(dialect: str) -> str:
    """How a batch of ledger rows is loaded: ``"copy"`` (PostgreSQL) or ``"executemany"`` (SQLite)."""
    if dialect == POSTGRESQL:
        return "copy"
    if dialect == SQLITE:
        return "executemany"
    raise ValueError(f"unsupported database dialect {dialect!r}")


def analyze(conn: Connection, table: str) -> None:
    """Refresh the planner's statistics of ``table`` (after a bulk load)."""
    conn.exec_driver_sql(f"ANALYZE {table}")


def one_of(column: Any, values: list[Any], dialect: str) -> ColumnElement:
    """``column IN (values)``; on PostgreSQL ``column = ANY(%(array)s)``: one parameter, so a
    thousand ids cost neither SQLAlchemy's compiler nor psycopg's query parser anything."""
    if dialect == POSTGRESQL:
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


ROWS_PER_DOCUMENT = 5000  # insert_rows_ignore: PostgreSQL's JSONB parse slows down past a few megabytes


def insert_rows_ignore(conn: Connection, model: Any, keys: list[str], rows: list[dict[str, Any]],
                       returning: tuple[Any, ...]) -> list[Any]:
    """Insert many rows, skipping those whose ``keys`` are there already; the rows inserted
    (``returning`` columns). PostgreSQL: ``INSERT … SELECT FROM jsonb_to_recordset(%(rows)s)
    ON CONFLICT DO NOTHING``: the rows go as one JSON document (orjson, in C) per
    ``ROWS_PER_DOCUMENT`` rows, so ninety thousand rows are eighteen statements (one document
    of them all takes three times as long: building a large JSONB value does not scale
    linearly); SQLite: executemany (SQLAlchemy's multi-row INSERTs)."""
    if not rows:
        return []
    if conn.dialect.name != POSTGRESQL:
        return conn.execute(insert_ignore(conn.dialect.name, model, keys).returning(*returning), rows).all()
    table = model.__table__
    names = list(rows[0])
    types = ", ".join(f'"{n}" {table.c[n].type.dialect_impl(conn.dialect).compile(dialect=conn.dialect)}'
                      for n in names)
    source = text(f"jsonb_to_recordset(CAST(:rows AS JSONB)) AS incoming({types})")
    incoming = select(*(column(n) for n in names)).select_from(source)
    stmt = (pg_insert(model).from_select(names, incoming)
            .on_conflict_do_nothing(index_elements=keys).returning(*returning))
    inserted: list[Any] = []
    for start in range(0, len(rows), ROWS_PER_DOCUMENT):
        document = orjson.dumps(rows[start:start + ROWS_PER_DOCUMENT], default=str).decode()
        inserted += conn.execute(stmt, {"rows": document}).all()
    return inserted


def update_from_values(dialect: str) -> bool:
    """Whether many rows are updated with one ``UPDATE … FROM unnest(arrays) AS v(cols)``
    (PostgreSQL: one parameter per column) or with ``executemany`` of one UPDATE per row
    (SQLite: statements in process cost next to nothing)."""
    return dialect == POSTGRESQL


def unnest_rows(columns: list[tuple[str, Any]], rows: list[tuple[Any, ...]], name: str) -> Any:
    """PostgreSQL: ``unnest(array, array, …) AS name(col, …)``, one array parameter per column
    (``columns``: (name, type)), for ``UPDATE … FROM`` many rows at once."""
    arrays = [bindparam(None, [row[i] for row in rows], type_=ARRAY(type_))
              for i, (_, type_) in enumerate(columns)]
    return func.unnest(*arrays).table_valued(*(column(n, t) for n, t in columns)).render_derived(name=name)


def plan_each_time(conn: Connection) -> None:
    """For the rest of this transaction, PostgreSQL plans each statement with its own values.

    psycopg prepares a statement it has run five times; PostgreSQL may then switch it to a
    generic plan, one that ignores the values. For a statement with a thousand account ids
    in it (the limits job's reads) the generic plan can be a hundred times slower than the
    one for the values at hand. Planning each time costs a few milliseconds."""
    if conn.dialect.name == POSTGRESQL:
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


@contextmanager
def partial_index_scan(conn: Connection) -> Iterator[None]:
    """Within: PostgreSQL plans without sequential scans, for a read through a partial index whose
    predicate compares two columns (``revision <> evaluated_revision``). The planner cannot
    estimate such a predicate (it takes it to hold for nearly every row), so it would read the
    whole table to find the few rows the index holds."""
    if conn.dialect.name != POSTGRESQL:
        yield
        return
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    try:
        yield
    finally:
        conn.exec_driver_sql("RESET enable_seqscan")


def flush_not_awaited(stmt: Any) -> Any:
    """The UPDATE with one more condition, a scalar subquery that sets ``synchronous_commit`` off
    for the transaction it runs in (``set_config(..., true)`` is ``SET LOCAL``; uncorrelated, the
    subquery runs once, before any row is matched): run alone on an autocommit connection, its
    commit does not wait for the WAL flush, and it takes no round trip more for that. PostgreSQL
    only. Safe for counters that something durable refreshes (the gate's, from the ledger); a
    crash may lose the last few hundred milliseconds of them."""
    relax = select(literal_column("set_config('synchronous_commit', 'off', true)")).scalar_subquery()
    return stmt.where(relax.is_not(None))


def single_statements(engine: Engine) -> Engine:
    """The engine for statements that each stand alone: a read of one statement (it sees one
    snapshot anyway), an increment atomic in its row (the gate's, :func:`flush_not_awaited`).

    PostgreSQL: autocommit, so no BEGIN and COMMIT/ROLLBACK round trips around them. SQLite:
    the engine itself; its driver opens no transaction for a SELECT, and switching the
    isolation level would cost a PRAGMA each time the connection goes back to the pool (so a
    write there still needs a transaction: ``engine.begin()``)."""
    if engine.dialect.name == POSTGRESQL:
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def is_unique_violation(exc: BaseException) -> bool:
    from psycopg.errors import UniqueViolation  # psycopg is the PostgreSQL driver; only asked after a failure

    return isinstance(exc, UniqueViolation)


# PostgreSQL: class 08 (connection exception) and 57P (operator intervention: shutdown, crash)
_PG_UNREACHABLE = ("08", "57P")
# SQLite: the file cannot be opened, read or written (moved away, its disk gone or read-only)
_SQLITE_UNREACHABLE = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_NOTADB")


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` (a SQLAlchemy error) says the database is out of reach, not a bad statement."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if (name := getattr(orig, "sqlite_errorname", None)) is not None:
        return name.startswith(_SQLITE_UNREACHABLE)
    state = getattr(orig, "sqlstate", None)
    return state is None or state.startswith(_PG_UNREACHABLE)  # no SQLSTATE: the client never got an answer


# --------------------------------------------------------------------------- time buckets


def offset_segments(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, int]]:
    """[(segment start UTC, UTC offset in seconds)] covering [start, end)."""
    def offset(at: datetime) -> int:
        return int(at.astimezone(tz).utcoffset().total_seconds())

    segments = [(start, offset(start))]
    probe = start
    step = timedelta(hours=6)
    while probe < end:
        nxt = min(probe + step, end)
        if offset(nxt) != segments[-1][1]:
            lo, hi = probe, nxt  # find the transition to the second
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if offset(mid) == segments[-1][1]:
                    lo = mid
                else:
                    hi = mid
            segments.append((hi.replace(microsecond=0), offset(hi)))
        probe = nxt
    return segments


def local_bucket(dialect: str, tz: ZoneInfo, start: datetime, end: datetime, by: str, col: Any) -> ColumnElement:
    """SQL for the local day ('YYYY-MM-DD') or month ('YYYY-MM') of ``col`` (a UTC timestamp
    column with values in [start, end))."""
    if dialect == POSTGRESQL:
        local = func.timezone(tz.key, col)
        return func.to_char(local, "YYYY-MM-DD" if by == "day" else "YYYY-MM")
    fmt = "%Y-%m-%d" if by == "day" else "%Y-%m"
    segments = offset_segments(start, end, tz)

    def shifted(seconds: int) -> ColumnElement:
        return func.strftime(fmt, col, f"{seconds:+d} seconds")

    if len(segments) == 1:
        return shifted(segments[0][1])
    whens = [(col < seg_start, shifted(prev_off))
             for (seg_start, _), (_, prev_off) in zip(segments[1:], segments[:-1])]
    return case(*whens, else_=shifted(segments[-1][1]))


def utc_hour_bucket(dialect: str, col: Any) -> ColumnElement:
    """SQL for the UTC hour of ``col``: a timestamp (PostgreSQL) or 'YYYY-MM-DD HH' text (SQLite,
    where timestamps are stored as UTC text); :func:`hour_value` reads either back."""
    if dialect == POSTGRESQL:
        return func.date_trunc("hour", func.timezone("UTC", col))
    return func.substr(col, 1, 13)


def hour_value(value: Any) -> datetime:
    """A :func:`utc_hour_bucket` value as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.strptime(value, "%Y-%m-%d %H")
    return value.replace(tzinfo=UTC)
