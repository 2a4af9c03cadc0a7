"""Writing the ledger in batches: the one place the dialect fast path is chosen.

PostgreSQL: each batch is ``COPY``'d straight into ``usage_events`` inside a
savepoint. New events (the normal case) cost exactly a plain COPY. If the batch
holds an event that is already in the ledger (a re-ingested file, a second
source, a replica racing us), the COPY fails on the unique key, the savepoint is
rolled back and the batch goes the slow, exact way: COPY into a temporary
staging table, then ``INSERT … SELECT … ON CONFLICT (event_id) DO NOTHING
RETURNING``. After a conflict the writer stays on the slow path until a batch
comes through with no duplicates.

SQLite: one ``SELECT … WHERE event_id IN (…)`` finds the events already present,
then ``executemany`` inserts the rest (``INSERT OR IGNORE`` for safety).

Either way the counts are exact: accepted, duplicates, and of the accepted how
many are unattributed and unpriced.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, func, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .models import IngestReject, SourceStatus, UsageEvent
from .models.base import money_to_units
from .normalise import Event
from .pricing import Priced
from .summaries import local_days_of_utc_hours, mark_dirty, utc_hour

logger = logging.getLogger(__name__)

# Column order of every row the writer produces (the table minus its surrogate key).
COLUMNS = tuple(c.name for c in UsageEvent.__table__.columns if c.name != "id")
_COLS_SQL = ", ".join(f'"{c}"' for c in COLUMNS)

# PostgreSQL: the fast path and the exact fallback.
# Binary COPY: the server parses no text, and the client's C dumpers write the values.
PG_COPY_DIRECT = f"COPY usage_events ({_COLS_SQL}) FROM STDIN (FORMAT BINARY)"
PG_STAGE_CREATE = (
    f"CREATE TEMP TABLE IF NOT EXISTS usage_events_stage AS "
    f"SELECT {_COLS_SQL} FROM usage_events WITH NO DATA"
)
PG_COPY_STAGE = f"COPY usage_events_stage ({_COLS_SQL}) FROM STDIN (FORMAT BINARY)"
# (An event twice in one batch never reaches here: LedgerWriter.add keeps the first.)
PG_MERGE_STAGE = (
    f"INSERT INTO usage_events ({_COLS_SQL}) "
    f"SELECT {_COLS_SQL} FROM usage_events_stage "
    f"ON CONFLICT (event_id) DO NOTHING RETURNING unattributed, cost_usd IS NULL"
)
PG_STAGE_CLEAR = "TRUNCATE usage_events_stage"

# SQLite.
SQLITE_EXISTING = "SELECT event_id FROM usage_events WHERE event_id IN ({marks})"
# Many rows per statement: one sqlite3_step (one release and re-take of the GIL) per
# SQLITE_ROWS_PER_INSERT rows rather than per row, so parsing on the other thread does
# not stall the writer at every row.
SQLITE_ROWS_PER_INSERT = 200
_SQLITE_ROW_MARKS = f"({', '.join('?' for _ in COLUMNS)})"
SQLITE_INSERT = f"INSERT OR IGNORE INTO usage_events ({_COLS_SQL}) VALUES "
SQLITE_MAX_VARS = 30000


@dataclass
class WriteStats:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    unattributed: int = 0
    unpriced: int = 0

    def add(self, other: WriteStats) -> None:
        for name in ("accepted", "duplicates", "rejected", "unattributed", "unpriced"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected,
                "unattributed": self.unattributed, "unpriced": self.unpriced}


@dataclass
class _Reject:
    source: str
    location: str
    position: int
    reason: str
    raw: bytes
    format: str
    header: bytes | None


@dataclass
class Batch:
    """What one transaction writes: taken from the writer, written (possibly on another thread)."""

    rows: list[tuple]
    rejects: list[_Reject]
    stats: WriteStats
    utc_hours: set[int]
    newest: datetime | None


@dataclass
class LedgerWriter:
    """Collects events and rejects; ``flush(conn)`` writes them in the caller's transaction."""

    source: str
    ingested_at: datetime
    dialect: str
    tz: ZoneInfo  # marks the local days a batch touched, for the summaries
    _rows: dict[str, tuple] = field(default_factory=dict)
    _hours: set[int] = field(default_factory=set)
    _newest: datetime | None = None
    _rejects: list[_Reject] = field(default_factory=list)
    _pending: WriteStats = field(default_factory=WriteStats)
    _slow_path: bool = False

    def __post_init__(self) -> None:
        if self.dialect == "sqlite":
            self._row, self._ingested = _sqlite_row, _sqlite_ts(self.ingested_at)
        else:
            self._row, self._ingested = _pg_row, self.ingested_at

    def __len__(self) -> int:
        return len(self._rows) + len(self._rejects)

    def add(self, ev: Event, priced: Priced, source: str | None = None) -> None:
        rows = self._rows
        if ev.event_id in rows:  # the same event twice in one batch
            self._pending.duplicates += 1
            return
        rows[ev.event_id] = self._row(ev, priced, source or self.source, self._ingested)
        occurred = ev.occurred_at
        self._hours.add(utc_hour(occurred))
        if self._newest is None or occurred > self._newest:
            self._newest = occurred

    def reject(self, location: str, position: int, raw: bytes, reason: str, *, format: str,
               header: bytes | None = None, source: str | None = None) -> None:
        self._rejects.append(_Reject(source or self.source, location, position, reason, raw, format, header))

    def take(self) -> Batch:
        """Hand over what was collected and start afresh."""
        batch = Batch(list(self._rows.values()), self._rejects, self._pending, self._hours, self._newest)
        self._rows, self._rejects, self._pending, self._hours, self._newest = {}, [], WriteStats(), set(), None
        return batch

    def write(self, conn: Connection, batch: Batch) -> WriteStats:
        """Write a batch in the caller's transaction; returns exact counts."""
        stats = batch.stats
        if batch.rows:
            accepted_before = stats.accepted
            if self.dialect == "sqlite":
                self._write_sqlite(conn, batch.rows, stats)
            else:
                self._write_pg(conn, batch.rows, stats)
            if stats.accepted > accepted_before:  # new events: their local days need new summaries
                mark_dirty(conn, local_days_of_utc_hours(batch.utc_hours, self.tz), self.ingested_at)
                self._source_status(conn, stats.accepted - accepted_before, batch.newest)
        if batch.rejects:
            self._write_rejects(conn, batch.rejects, stats)
        return stats

    def flush(self, conn: Connection) -> WriteStats:
        return self.write(conn, self.take())

    # ------------------------------------------------------------------ PostgreSQL
    def _write_pg(self, conn: Connection, rows: list[tuple], stats: WriteStats) -> None:
        raw = conn.connection.driver_connection
        if not self._slow_path:
            try:
                # A SAVEPOINT inside the caller's transaction (SQLAlchemy has begun it by then:
                # psycopg's own transaction() would BEGIN and COMMIT a separate one).
                with conn.begin_nested():
                    with raw.cursor() as cur, cur.copy(PG_COPY_DIRECT) as copy:
                        copy.set_types(PG_TYPES)
                        for row in rows:
                            copy.write_row(row)
            except _unique_violation():
                self._slow_path = True
            else:
                stats.accepted += len(rows)
                stats.unattributed += sum(1 for r in rows if r[_UNATTRIBUTED])
                stats.unpriced += sum(1 for r in rows if r[_COST] is None)
                return
        with raw.cursor() as cur:
            cur.execute(PG_STAGE_CREATE)
            with cur.copy(PG_COPY_STAGE) as copy:
                copy.set_types(PG_TYPES)
                for row in rows:
                    copy.write_row(row)
            cur.execute(PG_MERGE_STAGE)
            inserted = cur.fetchall()
            cur.execute(PG_STAGE_CLEAR)
        stats.accepted += len(inserted)
        stats.duplicates += len(rows) - len(inserted)
        stats.unattributed += sum(1 for unattributed, _ in inserted if unattributed)
        stats.unpriced += sum(1 for _, unpriced in inserted if unpriced)
        if len(inserted) == len(rows):
            self._slow_path = False

    # ------------------------------------------------------------------ SQLite
    def _write_sqlite(self, conn: Connection, rows: list[tuple], stats: WriteStats) -> None:
        ids = [r[0] for r in rows]
        existing: set[str] = set()
        for start in range(0, len(ids), SQLITE_MAX_VARS):
            chunk = ids[start:start + SQLITE_MAX_VARS]
            sql = SQLITE_EXISTING.format(marks=", ".join("?" for _ in chunk))
            existing.update(r[0] for r in conn.exec_driver_sql(sql, tuple(chunk)))
        if existing:
            rows = [r for r in rows if r[0] not in existing]
            stats.duplicates += len(existing)
        cursor = conn.connection.driver_connection.cursor()
        try:
            for start in range(0, len(rows), SQLITE_ROWS_PER_INSERT):
                chunk = rows[start:start + SQLITE_ROWS_PER_INSERT]
                cursor.execute(_sqlite_insert(len(chunk)), list(chain.from_iterable(chunk)))
        finally:
            cursor.close()
        stats.accepted += len(rows)
        stats.unattributed += sum(1 for r in rows if r[_UNATTRIBUTED])
        stats.unpriced += sum(1 for r in rows if r[_COST] is None)

    def _source_status(self, conn: Connection, accepted: int, newest: datetime) -> None:
        """Freshness: when this source last delivered, and its newest event."""
        table = SourceStatus.__table__
        pg = conn.dialect.name == "postgresql"
        stmt = (pg_insert if pg else sqlite_insert)(table).values(
            source=self.source, last_ingest_at=self.ingested_at, newest_event_at=newest, events=accepted)
        later = func.greatest if pg else func.max  # SQLite's two-argument max() is scalar
        conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_={
            "last_ingest_at": stmt.excluded.last_ingest_at,
            "newest_event_at": later(table.c.newest_event_at, stmt.excluded.newest_event_at),
            "events": table.c.events + stmt.excluded.events,
        }))

    # ------------------------------------------------------------------ rejects
    def _write_rejects(self, conn: Connection, rejects: list[_Reject], stats: WriteStats) -> None:
        values = [
            {"source": r.source, "location": r.location[-1000:], "position": r.position,
             "reason": r.reason, "raw": r.raw, "raw_sha256": hashlib.sha256(r.raw).hexdigest(),
             "format": r.format, "header": r.header, "received_at": self.ingested_at, "status": "open"}
            for r in rejects
        ]
        stats.rejected += len(values)
        conn.execute(insert_ignore(conn.dialect.name, IngestReject, ["source", "raw_sha256"]), values)


def insert_ignore(dialect: str, model: Any, keys: list[str]):
    if dialect == "postgresql":
        return pg_insert(model).on_conflict_do_nothing(index_elements=keys)
    if dialect == "sqlite":
        return sqlite_insert(model).on_conflict_do_nothing(index_elements=keys)
    return insert(model)


def _unique_violation():
    from psycopg.errors import UniqueViolation

    return UniqueViolation


@lru_cache(maxsize=4)
def _sqlite_insert(rows: int) -> str:
    return SQLITE_INSERT + ", ".join([_SQLITE_ROW_MARKS] * rows)


# _pg_row and _sqlite_row build rows in this order; fail at import if the model drifts.
assert COLUMNS == (
    "event_id", "source", "occurred_at", "ingested_at", "account_id", "tenant_id", "service", "provider",
    "model", "model_used", "status", "status_code", "prompt_tokens", "completion_tokens", "total_tokens",
    "cached_tokens", "reasoning_tokens", "latency_ms", "cost_usd", "cost_computed", "cost_reported",
    "cost_status", "price_source", "price_effective_from", "unattributed", "model_defaulted",
    "error_message", "metadata",
), COLUMNS
# The binary COPY type of each column; metadata goes as ready-made jsonb bytes.
PG_TYPES = (
    "text", "text", "timestamptz", "timestamptz", "text", "text", "text", "text",
    "text", "text", "text", "int4", "int8", "int8", "int8",
    "int8", "int8", "int4", "numeric", "numeric", "numeric",
    "text", "text", "date", "bool", "bool",
    "text", "bytea",
)
_UNATTRIBUTED = COLUMNS.index("unattributed")
_COST = COLUMNS.index("cost_usd")


def _metadata_json(meta: dict[str, Any] | None) -> str | None:
    if not meta:
        return None
    text = orjson.dumps(meta, default=str).decode()
    # PostgreSQL text and jsonb cannot hold NUL.
    return text.replace("\\u0000", "\\ufffd") if "\\u0000" in text else text


def _units_decimal(units: int | None) -> Decimal | None:
    """1e-10 USD units as the exact Decimal (10 places) binary COPY writes as NUMERIC."""
    return None if units is None else Decimal(units).scaleb(-10)


def _jsonb(meta: dict[str, Any] | None) -> bytes | None:
    """jsonb's binary form: version 1, then the JSON text."""
    text = _metadata_json(meta)
    return None if text is None else b"\x01" + text.encode()


def _pg_row(ev: Event, p: Priced, source: str, ingested_at: datetime) -> tuple:
    return (
        ev.event_id, source, ev.occurred_at, ingested_at, ev.account_id, ev.tenant_id, ev.service,
        p.provider, ev.model, ev.model_used, ev.status, ev.status_code, ev.prompt_tokens,
        ev.completion_tokens, ev.total_tokens, ev.cached_tokens, ev.reasoning_tokens, ev.latency_ms,
        _units_decimal(p.cost_units), _units_decimal(p.computed_units), ev.cost_reported, p.cost_status,
        p.price_source, p.price_effective_from, ev.unattributed, ev.model_defaulted, ev.error_message,
        _jsonb(ev.metadata),
    )


def _sqlite_ts(moment: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime writes (models.base.SQLITE_TS_FORMAT), faster."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_row(ev: Event, p: Priced, source: str, ingested_at: str) -> tuple:
    return (
        ev.event_id, source, _sqlite_ts(ev.occurred_at), ingested_at, ev.account_id, ev.tenant_id, ev.service, p.provider,
        ev.model, ev.model_used, ev.status, ev.status_code, ev.prompt_tokens, ev.completion_tokens,
        ev.total_tokens, ev.cached_tokens, ev.reasoning_tokens, ev.latency_ms,
        p.cost_units, p.computed_units,
        None if ev.cost_reported is None else money_to_units(ev.cost_reported),
        p.cost_status, p.price_source,
        None if p.price_effective_from is None else p.price_effective_from.isoformat(),
        int(ev.unattributed), int(ev.model_defaulted), ev.error_message, _metadata_json(ev.metadata),
    )
