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
import struct
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from itertools import chain
from typing import Any, Callable
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection

from worker.sql import bulk_path, greatest, insert_ignore, is_unique_violation, upsert
from worker.models import CallAttempt, IngestReject, SourceStatus, UsageEvent
from worker.models.base import money_to_units
from worker.ledger.event import Attempt, Event, attempt_row
from worker.ledger.pricing import Priced
from worker.summaries.recompute import local_days_of_utc_hours, mark_dirty, utc_hour

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
    attempts: int = 0  # call attempts recorded (worker.attempts), not usage

    def add(self, other: WriteStats) -> None:
        for name in ("accepted", "duplicates", "rejected", "unattributed", "unpriced", "attempts"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        counts = {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected,
                  "unattributed": self.unattributed, "unpriced": self.unpriced}
        if self.attempts:
            counts["attempts"] = self.attempts
        return counts


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

    rows: list[Any]  # PostgreSQL: binary COPY tuples (bytes); SQLite: parameter tuples
    rejects: list[_Reject]
    stats: WriteStats
    utc_hours: set[int]
    newest: datetime | None
    unattributed: int = 0  # of ``rows``
    unpriced: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)  # call_attempts rows


@dataclass
class LedgerWriter:
    """Collects events and rejects; ``flush(conn)`` writes them in the caller's transaction."""

    source: str
    ingested_at: datetime
    dialect: str
    tz: ZoneInfo  # marks the local days a batch touched, for the summaries
    _rows: dict[str, Any] = field(default_factory=dict)
    _hours: set[int] = field(default_factory=set)
    _newest: datetime | None = None
    _rejects: list[_Reject] = field(default_factory=list)
    _pending: WriteStats = field(default_factory=WriteStats)
    _slow_path: bool = False
    _unattributed: int = 0
    _unpriced: int = 0
    _attempts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The UTC hour of the last event added, as [start, end): consecutive events nearly
    # always share it, and two comparisons are cheaper than working the hour out.
    _hour_start: datetime | None = None
    _hour_end: datetime | None = None

    def __post_init__(self) -> None:
        self._copy = bulk_path(self.dialect) == "copy"
        if not self._copy:
            self._row, self._ingested = _sqlite_row, _sqlite_ts(self.ingested_at)
        else:
            self._row, self._ingested = PgRowEncoder(self.ingested_at).row, self.ingested_at

    def __len__(self) -> int:
        return len(self._rows) + len(self._rejects) + len(self._attempts)

    def add(self, ev: Event, priced: Priced, source: str | None = None) -> None:
        rows = self._rows
        if ev.event_id in rows:  # the same event twice in one batch
            self._pending.duplicates += 1
            return
        rows[ev.event_id] = self._row(ev, priced, source or self.source, self._ingested)
        if ev.unattributed:
            self._unattributed += 1
        if priced.cost_units is None:
            self._unpriced += 1
        occurred = ev.occurred_at
        start = self._hour_start
        if start is None or not start <= occurred < self._hour_end:  # type: ignore[operator]
            hour = utc_hour(occurred)
            self._hours.add(hour)
            if hour > 0:  # (before 1970 utc_hour truncates toward zero: no bucket there)
                try:
                    start = datetime.fromtimestamp(hour * 3600, UTC)
                    self._hour_start, self._hour_end = start, start + _HOUR
                except (OverflowError, ValueError):  # the last hour of year 9999
                    self._hour_start = None
        newest = self._newest
        if newest is None or occurred > newest:
            self._newest = occurred

    def attempt(self, attempt: Attempt, source: str | None = None) -> None:
        """A call attempt: written beside the batch's events."""
        if attempt.attempt_id in self._attempts:
            self._pending.duplicates += 1
            return
        self._attempts[attempt.attempt_id] = attempt_row(attempt, source or self.source, self.ingested_at)

    def reject(self, location: str, position: int, raw: bytes, reason: str, *, format: str,
               header: bytes | None = None, source: str | None = None) -> None:
        self._rejects.append(_Reject(source or self.source, location, position, reason, raw, format, header))

    def take(self) -> Batch:
        """Hand over what was collected and start afresh."""
        batch = Batch(list(self._rows.values()), self._rejects, self._pending, self._hours, self._newest,
                      self._unattributed, self._unpriced, list(self._attempts.values()))
        self._rows, self._rejects, self._pending, self._hours, self._newest = {}, [], WriteStats(), set(), None
        self._attempts = {}
        self._unattributed = self._unpriced = 0
        self._hour_start = self._hour_end = None
        return batch

    def write(self, conn: Connection, batch: Batch) -> WriteStats:
        """Write a batch in the caller's transaction; returns exact counts."""
        stats = batch.stats
        if batch.rows:
            accepted_before = stats.accepted
            if self._copy:
                self._write_pg(conn, batch, stats)
            else:
                self._write_sqlite(conn, batch.rows, stats)
            if stats.accepted > accepted_before:  # new events: their local days need new summaries
                mark_dirty(conn, local_days_of_utc_hours(batch.utc_hours, self.tz), self.ingested_at)
                self._source_status(conn, stats.accepted - accepted_before, batch.newest)
        if batch.rejects:
            self._write_rejects(conn, batch.rejects, stats)
        if batch.attempts:
            # An attempt seen before (a re-read file) is ignored: its state is the integrity job's.
            stmt = insert_ignore(conn.dialect.name, CallAttempt, ["attempt_id"])
            for start in range(0, len(batch.attempts), 1000):
                chunk = batch.attempts[start:start + 1000]
                added = len(conn.execute(stmt.values(chunk).returning(CallAttempt.id)).all())
                stats.attempts += added
                stats.duplicates += len(chunk) - added
        return stats

    def flush(self, conn: Connection) -> WriteStats:
        return self.write(conn, self.take())

    # ------------------------------------------------------------------ PostgreSQL
    def _write_pg(self, conn: Connection, batch: Batch, stats: WriteStats) -> None:
        raw = conn.connection.driver_connection
        if raw.info.encoding != "utf-8":  # the rows' text is UTF-8 (PgRowEncoder): say so, for this transaction
            conn.exec_driver_sql("SET LOCAL client_encoding TO 'UTF8'")
        rows = batch.rows
        if not self._slow_path:
            try:
                # A SAVEPOINT inside the caller's transaction (SQLAlchemy has begun it by then:
                # psycopg's own transaction() would BEGIN and COMMIT a separate one).
                with conn.begin_nested():
                    with raw.cursor() as cur, cur.copy(PG_COPY_DIRECT) as copy:
                        _copy_rows(copy, rows)
            except Exception as exc:
                if not is_unique_violation(exc):
                    raise
                self._slow_path = True
            else:
                stats.accepted += len(rows)
                stats.unattributed += batch.unattributed
                stats.unpriced += batch.unpriced
                return
        with raw.cursor() as cur:
            cur.execute(PG_STAGE_CREATE)
            with cur.copy(PG_COPY_STAGE) as copy:
                _copy_rows(copy, rows)
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
        table, dialect = SourceStatus.__table__, conn.dialect.name
        conn.execute(upsert(dialect, SourceStatus, ["source"], dict(
            source=self.source, last_ingest_at=self.ingested_at, newest_event_at=newest, events=accepted),
            set_=lambda excluded: {
                "last_ingest_at": excluded.last_ingest_at,
                "newest_event_at": greatest(dialect, table.c.newest_event_at, excluded.newest_event_at),
                "events": table.c.events + excluded.events}))

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
_UNATTRIBUTED = COLUMNS.index("unattributed")
_COST = COLUMNS.index("cost_usd")
_HOUR = timedelta(hours=1)


def _metadata_json(meta: dict[str, Any] | None) -> str | None:
    if not meta:
        return None
    text = orjson.dumps(meta, default=str).decode()
    # PostgreSQL text and jsonb cannot hold NUL.
    return text.replace("\\u0000", "\\ufffd") if "\\u0000" in text else text


# ---------------------------------------------------------------------------- PostgreSQL binary COPY rows
#
# The rows are encoded here, straight to COPY's binary tuple format, rather than handed
# to psycopg's per-value dumpers: most columns repeat from one event to the next
# (source, account, tenant, service, model, status, price source...), so their encoded
# bytes are cached, and a row is one bytes.join. The encoding per column type is
# PostgreSQL's own *_recv format (the server checks every value as it reads it):
#   text      the UTF-8 bytes (the writer makes the session's client_encoding UTF8)
#   int4/int8 big-endian two's complement
#   bool      one byte
#   timestamptz  int8 microseconds since 2000-01-01 00:00 UTC
#   date      int4 days since 2000-01-01
#   numeric   int2 ndigits, int2 weight, int2 sign, int2 dscale, then ndigits base-10000 int2 digits
#   jsonb     version byte 1, then the JSON text
# each field preceded by its int4 length, -1 for NULL.

PG_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
PG_COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_FIELD_COUNT = struct.pack(">h", len(COLUMNS))
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_PG_EPOCH_DAY = date(2000, 1, 1).toordinal()
_MICROSECOND = timedelta(microseconds=1)
_pack_len = struct.Struct(">i").pack
_pack_jsonb_head = struct.Struct(">ib").pack  # length, jsonb version 1
_pack_int4 = struct.Struct(">ii").pack  # length 4, value
_pack_int8 = struct.Struct(">iq").pack  # length 8, value
_pack_tokens = struct.Struct(">iqiqiqiqiq").pack  # the five int8 token counts, with their lengths
_pack_tokens_latency = struct.Struct(">iqiqiqiqiqii").pack  # and latency_ms (int4)
_pack_two_int8 = struct.Struct(">iqiq").pack  # occurred_at, ingested_at
_BOOLS = {(a, b): struct.pack(">i?i?", 1, a, 1, b) for a in (False, True) for b in (False, True)}
MONEY_SCALE = 10  # NUMERIC(20,10): amounts are integers of 1e-10 USD
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
_pack_numeric4 = struct.Struct(">ihhhhhhhh").pack  # length, ndigits 4, weight, sign, dscale, 4 digits
_NUMERIC_STRUCTS: dict[int, Callable[..., bytes]] = {}
_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1
_CACHE_MAX = 50_000  # distinct cached values per writer before the caches start afresh


def _numeric_struct(ndigits: int) -> Callable[..., bytes]:
    pack = _NUMERIC_STRUCTS.get(ndigits)
    if pack is None:
        pack = _NUMERIC_STRUCTS[ndigits] = struct.Struct(f">ihhhh{ndigits}h").pack
    return pack


def pg_numeric_units(units: int | None) -> bytes:
    """A NUMERIC field holding ``units`` x 1e-10 (exactly, dscale 10)."""
    if units is None:
        return _NULL
    if 0 <= units < 10**14:  # below 10,000 USD (every real cost): four digits at weight 0, not normalised
        whole, fraction = divmod(units * 100, 1_000_000_000_000)  # numeric_recv strips zero digits
        first, rest = divmod(fraction, 100_000_000)
        second, third = divmod(rest, 10_000)
        return _pack_numeric4(16, 4, 0, 0, MONEY_SCALE, whole, first, second, third)
    sign = 0
    if units < 0:
        sign, units = 0x4000, -units
    n = units * 100  # the fraction padded to 12 digits: three whole base-10000 digits
    digits = []
    while n:
        n, digit = divmod(n, 10000)
        digits.append(digit)
    weight = len(digits) - 4  # of the most significant digit; three are after the point
    while not digits[0]:  # trailing zero digits are implied
        del digits[0]
    digits.reverse()
    ndigits = len(digits)
    return _numeric_struct(ndigits)(8 + 2 * ndigits, ndigits, weight, sign, MONEY_SCALE, *digits)


def pg_numeric_money(amount: Decimal | None) -> bytes:
    """A NUMERIC(20,10) field for a Decimal: rounded to 10 places half away from zero, as
    PostgreSQL rounds a value with more places into the column."""
    if amount is None:
        return _NULL
    return pg_numeric_units(int(amount.quantize(_QUANTUM, ROUND_HALF_UP).scaleb(MONEY_SCALE)))


def pg_text(value: str | None) -> bytes:
    if value is None:
        return _NULL
    data = value.encode()
    return _pack_len(len(data)) + data


def pg_jsonb(meta: dict[str, Any] | None) -> bytes:
    """jsonb's binary form (version 1, then the JSON text); NUL escapes replaced, as jsonb cannot hold NUL."""
    if not meta:
        return _NULL
    data = orjson.dumps(meta, default=str)
    if b"\\" in data and b"\\u0000" in data:  # (one byte is found much faster than six)
        data = data.replace(b"\\u0000", b"\\ufffd")
    return _pack_jsonb_head(len(data) + 1, 1) + data


def pg_timestamptz(moment: datetime) -> bytes:
    return _pack_int8(8, (moment - _PG_EPOCH) // _MICROSECOND)


def pg_date(day: date | None) -> bytes:
    return _NULL if day is None else _pack_int4(4, day.toordinal() - _PG_EPOCH_DAY)


class PgRowEncoder:
    """Events as binary COPY tuples for ``usage_events`` (COLUMNS order)."""

    def __init__(self, ingested_at: datetime):
        self._ingested_us = (ingested_at - _PG_EPOCH) // _MICROSECOND
        self._texts: dict[str | None, bytes] = {None: _NULL}
        self._dates: dict[date | None, bytes] = {None: _NULL}

    def _text(self, value: str | None) -> bytes:
        texts = self._texts
        if len(texts) > _CACHE_MAX:
            texts.clear()
            texts[None] = _NULL
        encoded = texts[value] = pg_text(value)
        return encoded

    def _date(self, day: date | None) -> bytes:
        if len(self._dates) > _CACHE_MAX:
            self._dates.clear()
            self._dates[None] = _NULL
        encoded = self._dates[day] = pg_date(day)
        return encoded

    def row(self, ev: Event, p: Priced, source: str, _ingested_at: Any = None) -> bytes:
        cached, text = self._texts.get, self._text
        code, latency = ev.status_code, ev.latency_ms
        cost, computed = p.cost_units, p.computed_units
        cost_field = pg_numeric_units(cost)
        effective = p.price_effective_from
        return b"".join((
            _FIELD_COUNT,
            pg_text(ev.event_id),
            cached(source) or text(source),
            _pack_two_int8(8, (ev.occurred_at - _PG_EPOCH) // _MICROSECOND, 8, self._ingested_us),
            cached(ev.account_id) or text(ev.account_id),
            cached(ev.tenant_id) or text(ev.tenant_id),
            cached(ev.service) or text(ev.service),
            cached(p.provider) or text(p.provider),
            cached(ev.model) or text(ev.model),
            cached(ev.model_used) or text(ev.model_used),
            cached(ev.status) or text(ev.status),
            _NULL if code is None else _pack_int4(4, code),
            _pack_tokens_latency(8, ev.prompt_tokens, 8, ev.completion_tokens, 8, ev.total_tokens,
                                 8, ev.cached_tokens, 8, ev.reasoning_tokens, 4, latency)
            if latency is not None else
            _pack_tokens(8, ev.prompt_tokens, 8, ev.completion_tokens, 8, ev.total_tokens,
                         8, ev.cached_tokens, 8, ev.reasoning_tokens) + _NULL,
            cost_field,
            cost_field if computed == cost else pg_numeric_units(computed),
            pg_numeric_money(ev.cost_reported),
            cached(p.cost_status) or text(p.cost_status),
            cached(p.price_source) or text(p.price_source),
            self._dates.get(effective) or self._date(effective),
            _BOOLS[ev.unattributed, ev.model_defaulted],
            pg_text(ev.error_message),
            pg_jsonb(ev.metadata),
        ))


def _copy_rows(copy: Any, rows: list[bytes]) -> None:
    """A batch of encoded rows as one binary COPY stream, sent in a few large writes."""
    copy.write(PG_COPY_SIGNATURE)
    for start in range(0, len(rows), 2000):
        copy.write(b"".join(rows[start:start + 2000]))
    copy.write(PG_COPY_TRAILER)


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
