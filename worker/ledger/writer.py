"""Writing the ledger in batches, on the dialect's fast path (``worker.sql.bulk_path``).

An event id is booked once, through ``usage_event_ids`` (its primary key); ``usage_events``
itself is partitioned by month on PostgreSQL and can hold no unique key on the id alone.

PostgreSQL: each batch's ids are ``COPY``'d into ``usage_event_ids`` and its rows straight
into ``usage_events`` (the partitions a batch needs are made first: worker.ledger.partitions),
inside a savepoint. New events (the normal case) cost exactly two plain COPYs. If the
batch holds an event that is already in the ledger (a re-ingested file, a second source,
a replica racing us), the ids COPY fails on the primary key, the savepoint is rolled back
and the batch goes the slow, exact way: COPY into a temporary staging table, then one
statement that inserts the new ids (``ON CONFLICT DO NOTHING RETURNING``) and the rows of
exactly those. After a conflict the writer stays on the slow path until a batch comes
through with no duplicates.

SQLite: one ``SELECT … WHERE event_id IN (…)`` on ``usage_event_ids`` finds the events
already booked, then ``executemany`` inserts the rest, ids and rows.

Events before the retention horizon (``horizon``) are refused: their month is exported.
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

from worker.ledger import partitions
from worker.ledger.dirty_days import local_days_of_utc_hours, mark_dirty, utc_hour
from worker.limits.dirty import mark_accounts
from worker.limits.scope_marks import mark_scopes, scopes_of
from worker.limits.late import mark_pending
from worker.ledger.event import Attempt, Event, attempt_row
from worker.ledger.pricing import Priced
from worker.ledger.rows import (COST_AT, PG_COPY_DIRECT, PG_COPY_IDS, PG_COPY_STAGE, PG_MERGE_STAGE,
                                PG_STAGE_CLEAR, PG_STAGE_CREATE, SQLITE_EXISTING, SQLITE_INSERT_IDS, SQLITE_MAX_VARS,
                                SQLITE_TAKE_WRITE_LOCK,
                                SQLITE_ROWS_PER_INSERT, UNATTRIBUTED_AT, PgRowEncoder, copy_rows, sqlite_insert,
                                sqlite_row, sqlite_ts)
from worker.models import CallAttempt, IngestReject, SourceStatus
from worker.models.events import reject_line_key
from worker.sql import bulk_path, greatest, insert_ignore, is_unique_violation, upsert

logger = logging.getLogger(__name__)

_HOUR = timedelta(hours=1)
_FLOOR_HOUR = int(datetime.combine(partitions.FLOOR, datetime.min.time(), UTC).timestamp()) // 3600


class RetiredMonth(ValueError):
    """The event's month was exported and dropped by retention: the books no longer hold it."""

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
    sha256: str | None = None  # of the whole record, when raw is only its start (longer than the limit)


@dataclass
class Batch:
    """What one transaction writes: taken from the writer, written (possibly on another thread)."""

    rows: list[Any]  # PostgreSQL: binary COPY tuples (bytes); SQLite: parameter tuples
    ids: list[str]  # the rows' event ids, in the same order
    rejects: list[_Reject]
    stats: WriteStats
    utc_hours: set[int]
    newest: datetime | None
    unattributed: int = 0  # of ``rows``
    unpriced: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)  # call_attempts rows
    accounts: dict[int, set[str]] = field(default_factory=dict)  # UTC hour -> accounts with events in it
    scopes: dict[int, set[tuple[Any, ...]]] = field(default_factory=dict)  # UTC hour -> (tenant, service, ...)


@dataclass
class LedgerWriter:
    """Collects events and rejects; ``flush(conn)`` writes them in the caller's transaction."""

    source: str
    ingested_at: datetime
    dialect: str
    tz: ZoneInfo  # marks the local days a batch touched, for the summaries
    # Events before this were in a month retention exported (worker.ledger.retention.horizon):
    # refused, since the ledger no longer holds that month and its summaries are final.
    horizon: datetime | None = None
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
    # UTC hour -> the accounts with events in it (the limits job refreshes only those),
    # and the set of the hour of the last event added.
    _accounts: dict[int, set[str]] = field(default_factory=dict)
    _hour_accounts: set[str] = field(default_factory=set)
    # the same for the (tenant, service, model, project, key) of the events: the scopes' marks
    _scopes: dict[int, set[tuple[Any, ...]]] = field(default_factory=dict)
    _hour_scopes: set[tuple[Any, ...]] = field(default_factory=set)

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
        if self.horizon is not None and ev.occurred_at < self.horizon:
            raise RetiredMonth(f"it happened before {self.horizon.isoformat()}, in a month retention has "
                               f"exported from the ledger (tokentally retention status)")
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
            self._hour_accounts = self._accounts.setdefault(hour, set())
            self._hour_scopes = self._scopes.setdefault(hour, set())
            if hour > 0:  # (before 1970 utc_hour truncates toward zero: no bucket there)
                try:
                    start = datetime.fromtimestamp(hour * 3600, UTC)
                    self._hour_start, self._hour_end = start, start + _HOUR
                except (OverflowError, ValueError):  # the last hour of year 9999
                    self._hour_start = None
        rows[ev.event_id] = row
        self._hour_accounts.add(ev.account_id)
        self._hour_scopes.add((ev.tenant_id, ev.service, ev.model, ev.project_id, ev.api_key))
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
               header: bytes | None = None, source: str | None = None, sha256: str | None = None) -> None:
        """Quarantine a record: ``raw`` is its bytes, or only their start with ``sha256`` of them all."""
        self._rejects.append(_Reject(source or self.source, location, position, reason, raw, format, header, sha256))

    def take(self) -> Batch:
        """Hand over what was collected and start afresh."""
        batch = Batch(list(self._rows.values()), list(self._rows), self._rejects, self._pending, self._hours, self._newest,
                      self._unattributed, self._unpriced, list(self._attempts.values()),
                      self._accounts, self._scopes)
        self._rows, self._rejects, self._pending, self._hours, self._newest = {}, [], WriteStats(), set(), None
        self._accounts, self._hour_accounts = {}, set()
        self._scopes, self._hour_scopes = {}, set()
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
                partitions.ensure(conn, {partitions.month_of_hour(h) for h in batch.utc_hours if h >= _FLOOR_HOUR})
                self._write_pg(conn, batch, stats)
            else:
                self._write_sqlite(conn, batch.rows, batch.ids, stats)
            duplicates = stats.duplicates - duplicates_before
            if stats.accepted > accepted_before:  # new events: their local days need new summaries
                days = local_days_of_utc_hours(batch.utc_hours, self.tz)
                mark_dirty(conn, days, self.ingested_at)
                mark_pending(conn, days, self.ingested_at, self.tz)  # closed days: budgets judge them late
                mark_accounts(conn, ((account, day) for hour, accounts in batch.accounts.items()
                                     for day in local_days_of_utc_hours((hour,), self.tz)
                                     for account in accounts), self.ingested_at)  # the limits job's marks
                mark_scopes(conn, ((scope, day) for hour, values in batch.scopes.items()
                                   for day in local_days_of_utc_hours((hour,), self.tz)
                                   for scope in scopes_of(values)), self.ingested_at)
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
                    with raw.cursor() as cur:
                        with cur.copy(PG_COPY_IDS) as copy:  # fails on an id booked before
                            write_row = copy.write_row
                            for event_id in batch.ids:
                                write_row((event_id,))
                        with cur.copy(PG_COPY_DIRECT) as copy:
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
    def _write_sqlite(self, conn: Connection, rows: list[tuple], ids: list[str], stats: WriteStats) -> None:
        # A write first: it begins the transaction with the database's write lock, so no other
        # writer can book one of these ids between the look-up below and the insert.
        conn.exec_driver_sql(SQLITE_TAKE_WRITE_LOCK)
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
            cursor.executemany(SQLITE_INSERT_IDS, [(r[0],) for r in rows])
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
            location, sha = r.location[-1000:], r.sha256 or hashlib.sha256(r.raw).hexdigest()
            values.append({"source": r.source, "location": location, "position": r.position, "reason": r.reason,
                           "raw": r.raw, "raw_sha256": sha, "line_key": reject_line_key(location, r.position, sha),
                           "format": r.format, "header": r.header, "received_at": self.ingested_at,
                           "status": "open"})
        stats.rejected += len(values)
        # A line read again (a file re-ingested, truncated in place) keeps its one row.
        conn.execute(insert_ignore(conn.dialect.name, IngestReject, ["source", "line_key"]), values)
