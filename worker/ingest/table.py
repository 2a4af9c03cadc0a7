"""Polling an application's own usage table (kind = "table") by an increasing cursor.

The seeds' tables (``llm_usage_logs``, ``llm_generation_logs``,
``llm_model_usage``) already use the alias names, so rows go through the same
normaliser as file records. The cursor is stored in ``source_cursors`` in the
same transaction as the events it covers.

Integer cursors (serial ids) resume strictly after the last value. Timestamp and
text cursors resume *at* the last value minus ``cursor_overlap``: rows that share
the boundary value, or that committed late with an earlier timestamp, are read
again and counted as duplicates instead of being lost.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, MetaData, Table, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.types import Date, DateTime

from worker import clock
from worker.db import display_url, make_engine
from worker.ledger.writer import LedgerWriter
from worker.sql import upsert
from worker.models import SourceCursor
from worker.ingest.fields import parse_timestamp
from worker.ingest.normalise import Normaliser

if TYPE_CHECKING:
    from worker.ingest.ingestor import IngestStats, Ingestor
    from worker.settings import SourceSettings

logger = logging.getLogger(__name__)

_engines: dict[str, Any] = {}


def _engine(url: str):
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    return engine


class TableReader:
    def __init__(self, ingestor: Ingestor, source: SourceSettings):
        self.ingestor = ingestor
        self.source = source
        self.batch_size = source.batch_size or ingestor.batch_size

    def poll(self) -> IngestStats:
        from worker.ingest.ingestor import IngestError, IngestStats

        src = self.source
        stats = IngestStats()
        app = _engine(src.url)
        try:
            schema, _, name = src.table.rpartition(".")
            table = Table(name, MetaData(), schema=schema or None, autoload_with=app)
        except sa_exc.NoSuchTableError:
            raise IngestError(f"source {src.name}: table {src.table} not found in {display_url(src.url)}") from None
        except sa_exc.OperationalError as exc:
            raise IngestError(f"source {src.name}: cannot reach {display_url(src.url)}: {exc.orig}") from None
        if src.cursor_column not in table.c:
            raise IngestError(f"source {src.name}: table {src.table} has no column {src.cursor_column!r}")
        cursor_col = table.c[src.cursor_column]
        kind = _cursor_kind(cursor_col.type)

        with self.ingestor.engine.connect() as conn:
            saved = conn.execute(select(SourceCursor.cursor_value, SourceCursor.rows_read)
                                 .where(SourceCursor.source == src.name)).first()
        rows_read = saved.rows_read if saved else 0
        query = select(table).order_by(cursor_col)
        if saved is not None:
            start = _decode(saved.cursor_value, kind)
            if kind == "int":
                query = query.where(cursor_col > start - int(src.cursor_overlap or 0))
            else:
                if kind == "timestamp" and isinstance(src.cursor_overlap, timedelta):
                    start = start - src.cursor_overlap
                    if not getattr(cursor_col.type, "timezone", False):  # naive column: compare naive UTC
                        start = start.replace(tzinfo=None)
                query = query.where(cursor_col >= start)

        normaliser = Normaliser.for_source(src)
        writer = LedgerWriter(src.name, clock.now(), self.ingestor.dialect, self.ingestor.settings.tz)
        with app.connect() as app_conn:
            result = app_conn.execution_options(stream_results=True, yield_per=self.batch_size).execute(query)
            try:
                return self._read(result, writer, normaliser, stats, kind, rows_read)
            finally:
                result.close()

    def _read(self, result: Any, writer: LedgerWriter, normaliser: Normaliser, stats: IngestStats, kind: str,
              rows_read: int) -> IngestStats:
        src = self.source
        last_value = None
        for row in result.mappings():
            # Reflected column names are SQLAlchemy quoted_name objects: plain str keys for JSON.
            record = {str(k): v for k, v in row.items()}
            rows_read += 1
            last_value = record[src.cursor_column]
            self.ingestor._add(writer, normaliser, record, src.table, rows_read, None, "row")
            if len(writer) >= self.batch_size:
                self._commit(writer, stats, last_value, kind, rows_read)
                if self.ingestor.should_stop():
                    return stats
        self._commit(writer, stats, last_value, kind, rows_read)
        logger.info("table source polled", extra={"action": "table_polled", "source": src.name,
                                                  **stats.as_dict()})
        return stats

    def _commit(self, writer: LedgerWriter, stats: IngestStats, last_value: Any, kind: str, rows: int) -> None:
        if last_value is None:
            return
        with self.ingestor.engine.begin() as conn:
            stats.add(writer.flush(conn))
            values = {"cursor_value": _encode(last_value, kind), "cursor_type": kind, "rows_read": rows,
                      "updated_at": clock.now()}
            conn.execute(upsert(conn.dialect.name, SourceCursor, ["source"], {"source": self.source.name, **values}))


def _cursor_kind(col_type: Any) -> str:
    if isinstance(col_type, Integer):
        return "int"
    if isinstance(col_type, (DateTime, Date)):
        return "timestamp"
    return "text"


def _encode(value: Any, kind: str) -> str:
    if kind == "timestamp":
        if isinstance(value, datetime):
            return parse_timestamp(value).isoformat()
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC).isoformat()
    return str(value)


def _decode(text: str, kind: str) -> Any:
    if kind == "int":
        return int(text)
    if kind == "timestamp":
        return datetime.fromisoformat(text)
    return text

