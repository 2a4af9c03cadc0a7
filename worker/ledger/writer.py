"""Writing the ledger in batches, on the dialect's fast path (``worker.sql.bulk_path``).

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
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, update

from worker.ledger.dirty_days import local_days_of_utc_hours, mark_dirty, utc_hour
from worker.limits.late import mark_pending
from worker.ledger.event import Attempt, Event, attempt_row
from worker.ledger.pricing import Priced
from worker.ledger.rows import (COST_AT, PG_COPY_DIRECT, PG_COPY_STAGE, PG_MERGE_STAGE, PG_STAGE_CLEAR,
                                PG_STAGE_CREATE, SQLITE_EXISTING, SQLITE_MAX_VARS, SQLITE_ROWS_PER_INSERT,
                                UNATTRIBUTED_AT, PgRowEncoder, copy_rows, sqlite_insert, sqlite_row, sqlite_ts)
from worker.models import CallAttempt, IngestReject, SourceStatus
from worker.models.events import reject_line_key
from worker.sql import bulk_path, greatest, insert_ignore, is_unique_violation, upsert

logger = logging.getLogger(__name__)

_HOUR = timedelta(hours=1)

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
            self._row, self._ingested = sqlite_row, sqlite_ts(self.ingested_at)
        else:
            self._row, self._ingested = PgRowEncoder(self.ingested_at).row, self.ingested_at

    def __len__(self) -> int:
        return len(self._rows) + len(self._rejects) + len(self._attempts)

    def add(self, ev: Event, priced: Priced, source: str | None = None) -> None:
        """Collect one event. Raises (and collects nothing) when its row cannot be encoded or its
        local day cannot be worked out in ``tz`` (year 9999 east of UTC): the caller quarantines it."""
        rows = self._rows
        if ev.event_id in rows:  # the same event twice in one batch
            self._pending.duplicates += 1
            return
        row = self._row(ev, priced, source or self.source, self._ingested)
        occurred = ev.occurred_at
        start = self._hour_start
        if start is None or not start <= occurred < self._hour_end:  # type: ignore[operator]
            hour = utc_hour(occurred)
            if hour not in self._hours:
                local_days_of_utc_hours((hour,), self.tz)  # raises here, not when the batch commits
                self._hours.add(hour)
            if hour > 0:  # (before 1970 utc_hour truncates toward zero: no bucket there)
                try:
                    start = datetime.fromtimestamp(hour * 3600, UTC)
                    self._hour_start, self._hour_end = start, start + _HOUR
                except (OverflowError, ValueError):  # the last hour of year 9999
                    self._hour_start = None
        rows[ev.event_id] = row
        if ev.unattributed:
            self._unattributed += 1
        if priced.cost_units is None:
            self._unpriced += 1
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
            accepted_before, duplicates_before = stats.accepted, stats.duplicates
            if self._copy:
                self._write_pg(conn, batch, stats)
            else:
                self._write_sqlite(conn, batch.rows, stats)
            duplicates = stats.duplicates - duplicates_before
            if stats.accepted > accepted_before:  # new events: their local days need new summaries
                days = local_days_of_utc_hours(batch.utc_hours, self.tz)
                mark_dirty(conn, days, self.ingested_at)
                mark_pending(conn, days, self.ingested_at, self.tz)  # closed days: budgets judge them late
                self._source_status(conn, stats.accepted - accepted_before, batch.newest, duplicates)
            elif duplicates:  # nothing new: only the count (the source's freshness is unchanged)
                conn.execute(update(SourceStatus).where(SourceStatus.source == self.source)
                             .values(duplicates=SourceStatus.duplicates + duplicates))
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
                        copy_rows(copy, rows)
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
                copy_rows(copy, rows)
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
                cursor.execute(sqlite_insert(len(chunk)), list(chain.from_iterable(chunk)))
        finally:
            cursor.close()
        stats.accepted += len(rows)
        stats.unattributed += sum(1 for r in rows if r[UNATTRIBUTED_AT])
        stats.unpriced += sum(1 for r in rows if r[COST_AT] is None)

    def _source_status(self, conn: Connection, accepted: int, newest: datetime, duplicates: int) -> None:
        """Freshness: when this source last delivered, and its newest event; its event and duplicate counts."""
        table, dialect = SourceStatus.__table__, conn.dialect.name
        conn.execute(upsert(dialect, SourceStatus, ["source"], dict(
            source=self.source, last_ingest_at=self.ingested_at, newest_event_at=newest, events=accepted,
            duplicates=duplicates),
            set_=lambda excluded: {
                "last_ingest_at": excluded.last_ingest_at,
                "newest_event_at": greatest(dialect, table.c.newest_event_at, excluded.newest_event_at),
                "events": table.c.events + excluded.events,
                "duplicates": table.c.duplicates + excluded.duplicates}))

    # ------------------------------------------------------------------ rejects
    def _write_rejects(self, conn: Connection, rejects: list[_Reject], stats: WriteStats) -> None:
        values = []
        for r in rejects:
            location, sha = r.location[-1000:], hashlib.sha256(r.raw).hexdigest()
            values.append({"source": r.source, "location": location, "position": r.position, "reason": r.reason,
                           "raw": r.raw, "raw_sha256": sha, "line_key": reject_line_key(location, r.position, sha),
                           "format": r.format, "header": r.header, "received_at": self.ingested_at,
                           "status": "open"})
        stats.rejected += len(values)
        # A line read again (a file re-ingested, truncated in place) keeps its one row.
        conn.execute(insert_ignore(conn.dialect.name, IngestReject, ["source", "line_key"]), values)
