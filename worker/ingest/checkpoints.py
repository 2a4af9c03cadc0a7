"""Where each source kind's reading stands, written in the same transaction as its batch.

A file: offset, line and the hash of the last record's bytes (a resumed file must still have
them there), and size and mtime once read to its end. A table source: its cursor. A request
body (``POST /v1/events``): nothing to resume. ``after(item, complete=...)`` gives the write
the ingest loop commits with the batch that ends at ``item``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Connection

from worker import clock
from worker.ingest import files as file_source
from worker.ingest.files import RawItem
from worker.ingest.table import TableSource
from worker.models import IngestFile, SourceCursor
from worker.sql import cached_upsert, upsert

_CHECKPOINT_COLUMNS = ("path", "offset", "position", "tail_len", "tail_hash", "size", "mtime_ns", "warning",
                       "updated_at")


def _checkpoint_upsert(dialect: str) -> Any:
    """INSERT the file's checkpoint, or UPDATE it where the file is known: one statement."""
    return cached_upsert(dialect, IngestFile, ("source", "fingerprint"), _CHECKPOINT_COLUMNS)


class FileCheckpoint:
    """Where a file's reading stands: offset, line and the hash of the last record's bytes (a
    resumed file must still have them there); size and mtime once it was read to its end, so an
    unchanged file is skipped without reading."""

    def __init__(self, source: str, fingerprint: str, path: Path, st: Any, offset: int, position: int,
                 warnings: list[str]):
        self.source, self.fingerprint, self.path, self.st = source, fingerprint, path, st
        self.warnings = warnings  # filled by the reader: the last one is kept on the row (status shows it)
        self.start = offset
        self.offset, self.position, self.tail_len, self.tail = offset, position, 0, None

    def after(self, item: RawItem | None, *, complete: bool) -> Callable[[Connection], None]:
        if item is not None:
            self.offset, self.position = item.end_offset, item.lines_after
            if item.oversized is None:
                self.tail_len, self.tail = item.nbytes, file_source.tail_hash(item.raw)
            else:  # never read whole: its last bytes are checked (none for a document's element)
                self.tail_len, self.tail = len(item.oversized.tail), file_source.tail_hash(item.oversized.tail)
        whole = complete and (file_source.is_gzip(self.path) or self.offset >= self.st.st_size)
        size, mtime = (self.st.st_size, self.st.st_mtime_ns) if whole else (-1, -1)
        values = {"source": self.source, "fingerprint": self.fingerprint, "path": str(self.path)[-1000:],
                  "offset": self.offset, "position": self.position, "tail_len": self.tail_len,
                  "tail_hash": self.tail, "size": size, "mtime_ns": mtime,
                  "warning": self.warnings[-1][:500] if self.warnings else None}
        return lambda conn: conn.execute(_checkpoint_upsert(conn.dialect.name), {**values, "updated_at": clock.now()})


class NoCheckpoint:
    """Records that are not read from anywhere to resume (a request body): nothing to keep."""

    start = 0

    def after(self, item: RawItem | None, *, complete: bool) -> None:
        return None


class TableCheckpoint:
    """A table source's cursor: the last row's cursor value and the rows read so far."""

    start = 0

    def __init__(self, source: str, table: TableSource):
        self.source, self.table = source, table

    def after(self, item: RawItem | None, *, complete: bool) -> Callable[[Connection], None] | None:
        if item is None:
            return None  # nothing new: the stored cursor stands
        values = {"source": self.source, "cursor_value": self.table.cursor_text(), "cursor_type": self.table.kind,
                  "rows_read": item.lines_after}
        return lambda conn: conn.execute(upsert(conn.dialect.name, SourceCursor, ["source"],
                                                {**values, "updated_at": clock.now()}))
