"""Ingest: sources -> normalise -> price -> ledger, in checkpointed batches.

Each batch is one transaction holding its events, its rejects and the
checkpoint (file offset or table cursor) that follows them, so a crash at any
point and a restart end with exactly the ledger of one clean run.
"""

from __future__ import annotations

import json
from functools import partial
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson
from sqlalchemy import Connection, Engine, select

from worker import clock
from worker.ingest.checkpoints import FileCheckpoint, NoCheckpoint, TableCheckpoint
from worker.ingest.committer import Committer
from worker.ingest.leases import Leases
from worker.ledger.retention import horizon
from worker.ledger.writer import Batch, LedgerWriter, WriteStats
from worker.models import IngestFile, SourceCursor
from worker.ingest.fields import IngestError, RecordError, error_reason
from worker.ingest.normalise import Normaliser, line_loads
from worker.ledger.event import Event
from worker.ledger.pricing import Pricer
from worker.settings import Settings, SourceSettings
from worker.ingest import files as file_source, listing
from worker.ingest.files import RawItem
from worker.ingest.table import TableSource

logger = logging.getLogger(__name__)

CLI_SOURCE = "cli"

Progress = Callable[[int], None]  # called with bytes consumed since the last call


@dataclass
class IngestStats(WriteStats):
    files: int = 0
    skipped_files: int = 0  # unchanged since the last poll, or not ready yet
    errors: list[str] = field(default_factory=list)  # files that could not be read at all
    warnings: list[str] = field(default_factory=list)  # files read only in part (a gzip stream cut short)
    skipped: int = 0  # records inside another tool's record that are not LLM calls (worker.ingest.formats)
    leased_elsewhere: int = 0  # files another replica was reading when this poll came to them
    # (position, reason) of each record quarantined, when the caller asked for them (ingest_body)
    rejects: list[tuple[int, str]] | None = None

    def add(self, other: WriteStats) -> None:
        super().add(other)
        if isinstance(other, IngestStats):
            self.skipped += other.skipped
            self.leased_elsewhere += other.leased_elsewhere

    def as_dict(self) -> dict[str, int]:
        counts = {"files": self.files, **super().as_dict()}
        if self.skipped:
            counts["skipped"] = self.skipped
        if self.leased_elsewhere:
            counts["leased_elsewhere"] = self.leased_elsewhere
        return counts


class Ingestor:
    """Ingests files and table sources into the ledger behind ``engine``."""

    def __init__(self, settings: Settings, engine: Engine, pricer: Pricer | None = None,
                 should_stop: Callable[[], bool] = lambda: False):
        self.settings = settings
        self.should_stop = should_stop  # checked after each committed batch
        self._between_batches: Callable[[], None] = lambda: None  # a file's lease is renewed there
        self.engine = engine
        self.dialect = engine.dialect.name
        self.pricer = pricer or Pricer(settings.price_overrides, settings.tz)
        self.batch_size = settings.ingest_batch_size
        self.batch_bytes = settings.ingest_batch_bytes

    # ------------------------------------------------------------------ files
    def ingest_paths(self, paths: Iterable[Path], source: SourceSettings | None = None,
                     progress: Progress | None = None) -> IngestStats:
        """One-off ingest of named files/directories: read whole, count duplicates."""
        stats = IngestStats()
        for directory in (p for p in paths if p.is_dir()):
            for error in listing.walk_errors(directory):
                logger.error("directory not listed", extra={"action": "directory_failed", "error": error})
                stats.errors.append(error)
        follow = source.follow_symlinks if source else False
        for path in self._named_files(list(paths), follow, stats):
            kind = source.kind if source and source.kind in ("jsonl", "csv", "json") else file_source.sniff_kind(path)
            stats.files += 1
            try:
                result = self.ingest_file(path, kind, source, final=True, from_start=True, progress=progress)
                stats.add(result)
                stats.warnings.extend(result.warnings)
            except Exception as exc:  # one unreadable file (or a reader's bug) does not stop the others
                self._file_failed(stats, source.name if source else CLI_SOURCE, exc)
        return stats

    def _named_files(self, paths: list[Path], follow_symlinks: bool, stats: IngestStats) -> list[Path]:
        """The files named, and those under the directories named that resolve inside them (a link
        leading out of a directory is a warning, and not read, unless ``follow_symlinks``)."""
        files: list[Path] = []
        for path in paths:
            found = file_source.expand([path])
            if path.is_dir():
                found, skipped = listing.within(found, path, follow_symlinks)
                _links_skipped(stats, skipped)
            files.extend(found)
        return files

    def _file_failed(self, stats: IngestStats, source: str, exc: Exception) -> None:
        """An IngestError is the file's own fault (its message says which); anything else is a bug,
        logged with its traceback. Either way the other files still run."""
        if isinstance(exc, IngestError):
            error = str(exc)
            logger.error("file not ingested", extra={"action": "file_failed", "source": source, "error": error})
        else:
            error = error_reason(exc)
            logger.exception("file not ingested", extra={"action": "file_failed", "source": source,
                                                         "error": error})
        stats.errors.append(error)

    def source_files(self, source: SourceSettings) -> list[Path]:
        return listing.source_files(source.path or "", source.follow_symlinks).files

    def pending(self, source: SourceSettings) -> dict[str, Any]:
        """What a poll of a file source would read, without reading it (for --dry-run)."""
        if source.kind == "table":
            with self.engine.connect() as conn:
                cursor = conn.execute(select(SourceCursor.cursor_value)
                                      .where(SourceCursor.source == source.name)).scalar()
            return {"kind": "table", "table": source.table, "resume_after": cursor}
        files = []
        with self.engine.connect() as conn:
            for path in self.source_files(source):
                st = path.stat()
                try:
                    fp = file_source.fingerprint(path, source.kind, final=True)
                except file_source.CorruptFile as exc:
                    files.append({"path": str(path), "error": str(exc)})
                    continue
                row = conn.execute(select(IngestFile).where(IngestFile.source == source.name,
                                                            IngestFile.fingerprint == fp)).first()
                if row is not None and row.size == st.st_size and row.mtime_ns == st.st_mtime_ns:
                    continue
                files.append({"path": str(path), "from_byte": row.offset if row else 0, "size": st.st_size})
        return {"kind": source.kind, "files_with_new_data": files}

    def ingest_source(self, source: SourceSettings, progress: Progress | None = None) -> IngestStats:
        """One poll of a configured source: new data only, from the checkpoints."""
        if source.kind == "table":
            return self.ingest_table(source)
        stats = IngestStats()
        settle = timedelta(seconds=self.settings.ingest_settle_seconds)
        paths, unlisted, skipped = listing.source_files(source.path or "", source.follow_symlinks)
        _links_skipped(stats, skipped, source.name)
        for error in unlisted:  # the files it holds are not read: the run fails, after the others
            logger.error("directory not listed", extra={"action": "directory_failed", "source": source.name,
                                                        "error": error})
            stats.errors.append(error)
        leases = Leases(self.engine, source.name, self.settings.ingest_lease_seconds)
        for path in paths:
            if self.should_stop():
                break
            if not leases.claim(str(path)):  # another replica is reading it now
                stats.leased_elsewhere += 1
                continue
            self._between_batches = partial(leases.renew, str(path))
            try:
                mtime = datetime.fromtimestamp(path.stat().st_mtime, clock.now().tzinfo)
                final = file_source.is_gzip(path) or clock.now() - mtime >= settle
                result = self.ingest_file(path, source.kind, source, final=final, from_start=False,
                                          progress=progress)
            except FileNotFoundError:
                continue  # gone since the directory was listed (rotated away): the next poll sees it
            except Exception as exc:  # one unreadable file (or a reader's bug) does not stop the others
                self._file_failed(stats, source.name, exc)
                continue
            finally:
                self._between_batches = lambda: None
                leases.release(str(path))
            stats.add(result)
            stats.warnings.extend(result.warnings)
            stats.files += result.files
            stats.skipped_files += result.skipped_files
        return stats

    def ingest_file(self, path: Path, kind: str, source: SourceSettings | None, *, final: bool,
                    from_start: bool, progress: Progress | None = None) -> IngestStats:
        """Read one file from its checkpoint (or from the start) and commit it in batches.

        Raises IngestError when the file cannot be read at all (missing, corrupt gzip)."""
        stats = IngestStats()
        source_name = source.name if source else CLI_SOURCE
        try:
            st = path.stat()
            fp = file_source.fingerprint(path, kind, final)
        except OSError as exc:
            raise IngestError(f"{path}: {exc.strerror}") from None
        except file_source.CorruptFile as exc:
            raise IngestError(str(exc)) from None
        if fp is None:
            stats.skipped_files = 1  # no complete first record yet
            return stats
        offset = position = 0
        if not from_start:
            with self.engine.connect() as conn:
                row = conn.execute(select(IngestFile).where(IngestFile.source == source_name,
                                                            IngestFile.fingerprint == fp)).first()
            if row is not None:
                if row.size == st.st_size and row.mtime_ns == st.st_mtime_ns:
                    stats.skipped_files = 1  # read to its end, unchanged since (maybe renamed)
                    return stats
                offset, position = row.offset, row.position
                if not file_source.is_gzip(path) and offset > st.st_size:
                    offset = position = 0  # truncated in place: read again (dedup keeps it exact)
                elif row.tail_hash and not file_source.tail_matches(path, offset, row.tail_len, row.tail_hash):
                    offset = position = 0  # another file that only starts the same: read it all
        stats.files = 1
        location = str(path)
        header = file_source.first_line(path) if kind == "csv" else None
        warnings: list[str] = []
        checkpoint = FileCheckpoint(source_name, fp, path, st, offset, position, warnings)
        try:
            records = file_source.read_records(kind, path, offset, position, final, warnings,
                                               self.settings.ingest_max_record_bytes, line_loads(source))
            self._run(records, stats, source,
                      location=location, fmt=kind, header=header, checkpoint=checkpoint,
                      batch_size=self.batch_size, progress=progress)
        except file_source.CorruptFile as exc:
            raise IngestError(f"{path}: {exc}") from None
        stats.warnings.extend(f"{path}: {w}" for w in warnings)
        logger.info("file ingested", extra={"action": "file_ingested", "source": source_name,
                                            "path": location, **stats.as_dict()})
        return stats

    def ingest_body(self, data: bytes, source: SourceSettings | None, location: str) -> IngestStats:
        """Records sent over HTTP (a JSON document or JSON lines), committed before this returns;
        ``stats.rejects`` lists what was quarantined (quarantined as a file's lines are, under
        ``location``: the same bad record sent again is the same reject)."""
        stats = IngestStats(rejects=[])
        items = file_source.document_items(data, self.settings.ingest_max_record_bytes)
        self._run(items, stats, source, location=location, fmt="jsonl", header=None,
                  checkpoint=NoCheckpoint(), batch_size=self.batch_size)
        stats.rejects.sort()
        return stats

    def ingest_table(self, source: SourceSettings) -> IngestStats:
        """One poll of a table source, from its stored cursor."""
        stats = IngestStats()
        leases, key = Leases(self.engine, source.name, self.settings.ingest_lease_seconds), source.table or ""
        if not leases.claim(key):  # another replica is reading from the cursor now
            stats.leased_elsewhere += 1
            return stats
        self._between_batches = partial(leases.renew, key)
        try:
            with self.engine.connect() as conn:  # the cursor is read under the lease
                saved = conn.execute(select(SourceCursor.cursor_value, SourceCursor.rows_read)
                                     .where(SourceCursor.source == source.name)).first()
            table, batch_size = TableSource(source), source.batch_size or self.batch_size
            rows = table.rows(saved.cursor_value if saved else None, saved.rows_read if saved else 0, batch_size)
            self._run(rows, stats, source, location=source.table or "", fmt="row", header=None,
                      checkpoint=TableCheckpoint(source.name, table), batch_size=batch_size)
        finally:
            self._between_batches = lambda: None
            leases.release(key)
        logger.info("table source polled", extra={"action": "table_polled", "source": source.name,
                                                  **stats.as_dict()})
        return stats

    def _run(self, items: Iterable[RawItem], stats: IngestStats, source: SourceSettings | None, *, location: str,
             fmt: str, header: bytes | None, checkpoint: FileCheckpoint | TableCheckpoint, batch_size: int,
             progress: Progress | None = None) -> None:
        """The one ingest loop, for every source kind: records -> normalised -> priced -> the writer,
        committed in batches together with the checkpoint just after each batch's last record."""
        source_name = source.name if source else CLI_SOURCE
        normaliser = Normaliser.for_source(source, clock.now() + self.settings.ingest_max_future)  # once a poll
        with self.engine.connect() as conn:
            retired_before = horizon(conn, self.settings.tz)
        writer = LedgerWriter(source_name, clock.now(), self.dialect, self.settings.tz, horizon=retired_before)
        # the per-event loop: names bound once, no per-event objects beyond the event itself
        normalise, price, add, reject = normaliser.normalise, self.pricer.price, writer.add, writer.reject
        item = None
        seen = 0  # items since the last batch: the writer holds at most as many
        # and the bytes they were read from (their rows and rejects hold about as many)
        held, batch_bytes = 0, self.batch_bytes
        done = checkpoint.start
        with Committer(resource=self.engine.connect) as committer:
            for item in items:
                seen += 1
                held += item.nbytes
                record = item.record
                if record is not None:
                    # Any failure to make this record a row quarantines it, and the loop goes on
                    # (a try costs nothing when nothing raises).
                    try:
                        ev = normalise(record)
                        if ev.__class__ is Event:
                            add(ev, price(ev))
                        elif ev.__class__ is list:  # another tool's record: zero or more events
                            for one in ev:
                                add(one, price(one))
                        else:
                            writer.attempt(ev)
                    except RecordError as exc:
                        reject(location, item.position, item.raw if item.raw is not None else _raw(record),
                               str(exc), format=fmt, header=header)
                    except Exception as exc:  # a poison record: out of range, too deep to encode, ...
                        reject(location, item.position, item.raw if item.raw is not None else _raw(record),
                               _poisoned(source_name, location, item.position, exc), format=fmt, header=header)
                elif item.error is not None:
                    reject(location, item.position, item.raw, item.error, format=fmt, header=header,
                           sha256=item.oversized.sha256 if item.oversized is not None else None)
                if (seen >= batch_size and len(writer) >= batch_size) or held >= batch_bytes:
                    seen = held = 0
                    committer.submit(self._commit_task(writer, stats, checkpoint.after(item, complete=False)))
                    if progress:
                        progress(item.end_offset - done)
                    done = item.end_offset
                    self._between_batches()
                    if self.should_stop():
                        break  # checkpointed: the next run resumes here
            else:
                # Read to the end (a partial last line of a growing file is not).
                committer.submit(self._commit_task(writer, stats, checkpoint.after(item, complete=True)))
        if progress and item is not None:
            progress(max(item.end_offset - done, 0))
        stats.skipped += normaliser.skipped

    def _commit_task(self, writer: LedgerWriter, stats: IngestStats,
                     write_checkpoint: Callable[[Connection], None] | None) -> Callable[[Connection], None]:
        """One transaction: the batch collected so far and the checkpoint just after it."""
        batch = writer.take()
        return lambda conn: self._commit(conn, writer, batch, stats, write_checkpoint)

    def _commit(self, conn: Connection, writer: LedgerWriter, batch: Batch, stats: IngestStats,
                write_checkpoint: Callable[[Connection], None] | None) -> None:
        """One transaction on the committer's connection: the batch and the checkpoint after it."""
        with conn.begin():
            stats.add(writer.write(conn, batch))
            if write_checkpoint is not None:
                write_checkpoint(conn)
        if stats.rejects is not None:
            stats.rejects.extend((r.position, r.reason) for r in batch.rejects)


def _links_skipped(stats: IngestStats, warnings: list[str], source: str = CLI_SOURCE) -> None:
    """Files not read because they lead outside their directory: warnings in the output and the log."""
    for warning in warnings:
        logger.warning("symlink not followed", extra={"action": "symlink_skipped", "source": source,
                                                      "warning": warning})
    stats.warnings.extend(warnings)


def _raw(record: Any) -> bytes:
    """A table row's bytes for quarantine: JSON, or its repr when even that cannot be written."""
    try:
        return orjson.dumps(record, default=str)
    except orjson.JSONEncodeError:
        try:
            return json.dumps(record, default=str).encode("utf-8", "surrogatepass")
        except (ValueError, TypeError, RecursionError):
            return repr(record).encode("utf-8", "backslashreplace")


def _poisoned(source: str, location: str, position: int, exc: Exception) -> str:
    """Log a record that raised something other than RecordError; its reason for quarantine."""
    reason = error_reason(exc)
    logger.warning("record quarantined on an unexpected error", exc_info=exc, extra={
        "action": "record_poisoned", "source": source, "path": location, "position": position, "error": reason})
    return reason
