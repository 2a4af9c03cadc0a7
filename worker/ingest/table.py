"""Reading an application's own usage table (kind = "table") by an increasing cursor.

The seeds' tables (``llm_usage_logs``, ``llm_generation_logs``,
``llm_model_usage``) already use the alias names, so rows go through the same
normaliser as file records, through the same ingest loop. The loop stores the
cursor in ``source_cursors`` in the same transaction as the events it covers.

Integer cursors (serial ids) resume strictly after the last value. Timestamp and
text cursors resume *at* the last value minus ``cursor_overlap``: rows that share
the boundary value, or that committed late with an earlier timestamp, are read
again and counted as duplicates instead of being lost.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any, Iterator

from sqlalchemy import Integer, MetaData, Table, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.types import Date, DateTime

from worker.db import display_url, make_engine
from worker.ingest.fields import IngestError, parse_timestamp
from worker.ingest.files import RawItem
from worker.settings import SourceSettings

logger = logging.getLogger(__name__)

_engines: dict[str, Any] = {}


def _engine(url: str):
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    return engine


class TableSource:
    """Reads an application's usage table in cursor order, from a stored cursor on.

    A reader only: :meth:`rows` yields each row as a :class:`RawItem` (its record
    keyed by column name, its position the running row count) and remembers the
    last row's cursor value; the ingest loop normalises, writes and stores the
    cursor (:meth:`cursor_text`) with each batch."""

    def __init__(self, source: SourceSettings):
        self.source = source
        self.kind = "text"  # of the cursor column: int | timestamp | text (known once the table is read)
        self.last_value: Any = None

    def rows(self, saved_cursor: str | None, rows_read: int, batch_size: int) -> Iterator[RawItem]:
        src = self.source
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
        self.kind = kind = _cursor_kind(cursor_col.type)
        query = select(table).order_by(cursor_col)
        if saved_cursor is not None:
            start = _decode(saved_cursor, kind)
            if kind == "int":
                query = query.where(cursor_col > start - int(src.cursor_overlap or 0))
            else:
                if kind == "timestamp" and isinstance(src.cursor_overlap, timedelta):
                    start = start - src.cursor_overlap
                    if not getattr(cursor_col.type, "timezone", False):  # naive column: compare naive UTC
                        start = start.replace(tzinfo=None)
                query = query.where(cursor_col >= start)
        with app.connect() as app_conn:
            result = app_conn.execution_options(stream_results=True, yield_per=batch_size).execute(query)
            try:
                for row in result.mappings():
                    # Reflected column names are SQLAlchemy quoted_name objects: plain str keys for JSON.
                    record = {str(k): v for k, v in row.items()}
                    rows_read += 1
                    self.last_value = record[src.cursor_column]
                    yield RawItem(rows_read, 0, rows_read, None, record, None)
            finally:
                result.close()

    def cursor_text(self) -> str:
        """The last row's cursor value as stored in ``source_cursors``."""
        return _encode(self.last_value, self.kind)


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

