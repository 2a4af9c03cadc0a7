"""Retention: ledger months older than ``retention.ledger_months`` leave the database for the archive.

Each UTC month before the cut-off is written to ``<archive>/ledger/YYYY-MM/usage_events.jsonl.gz``
(one JSON object per row, every column; gzip with no timestamp, so the same rows give the same
bytes) with a ``manifest.json`` beside it (rows, cost, sha256 of the file), recorded in
``ledger_exports``, and only then removed: on PostgreSQL its partition is dropped, on SQLite
(and for PostgreSQL's pre-2000 default partition) its rows are deleted in batches.

What stays: the summaries, the reports and their archive, and ``usage_event_ids`` (a re-read
old file books nothing twice). What changes: an event before :func:`horizon` is refused at
ingest (quarantined, so nothing is lost), the summaries of days before it are never recomputed,
and ``reports verify`` adds the exported rows back from the files (:func:`exported_totals`),
checking each file's sha256 first.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, select

from worker.ledger import partitions
from worker.models import LedgerExport, UsageEvent

logger = logging.getLogger(__name__)

DELETE_BATCH = 10_000
_COLUMNS = tuple(str(c.name) for c in UsageEvent.__table__.columns)  # (plain str: orjson keys)
_MONEY = ("cost_usd", "cost_computed", "cost_reported")


def _utc(month: date) -> datetime:
    return datetime.combine(month, time.min, UTC)


def cutoff(now: datetime, ledger_months: int) -> date:
    """The first UTC month kept: ``ledger_months`` whole months before this one."""
    month = partitions.month_of(now)
    for _ in range(ledger_months):
        month = date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)
    return month


def horizon(conn: Connection, tz: ZoneInfo) -> datetime | None:
    """Events before this are no longer the ledger's: the start of the first local day that begins
    at or after the end of the newest exported month (a local day across that end is final too)."""
    end = conn.execute(select(func.max(LedgerExport.end_at))).scalar_one_or_none()
    if end is None:
        return None
    day = end.astimezone(tz).date()
    start = datetime.combine(day, time.min, tz).astimezone(UTC)
    if start < end:
        start = datetime.combine(day + timedelta(days=1), time.min, tz).astimezone(UTC)
    return start


def _months_before(conn: Connection, first_kept: date) -> list[date]:
    """The UTC months before ``first_kept`` that hold rows, or a partition, and are not exported yet."""
    end = _utc(first_kept)
    present = {m for m in partitions.existing(conn) if m < first_kept}
    oldest = conn.execute(select(func.min(UsageEvent.occurred_at)).where(UsageEvent.occurred_at < end)).scalar()
    while oldest is not None:  # walk the months that hold rows (few: one query each)
        month = partitions.month_of(oldest)
        present.add(month)
        oldest = conn.execute(select(func.min(UsageEvent.occurred_at)).where(
            UsageEvent.occurred_at >= _utc(partitions.next_month(month)), UsageEvent.occurred_at < end)).scalar()
    done = set(conn.execute(select(LedgerExport.month)).scalars())
    return sorted(present - done)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, (date, Decimal)):
        return str(value)
    return value


def _rows(engine: Engine, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    query = (select(*UsageEvent.__table__.columns).where(UsageEvent.occurred_at >= start,
                                                          UsageEvent.occurred_at < end).order_by(UsageEvent.id))
    with engine.connect() as conn:
        for row in conn.execution_options(stream_results=True, yield_per=5000).execute(query):
            yield dict(zip(_COLUMNS, row))


@dataclass
class MonthExport:
    month: date
    path: str
    rows: int
    cost_usd: Decimal
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"month": self.month.isoformat()[:7], "path": self.path, "rows": self.rows,
                "cost_usd": str(self.cost_usd), "sha256": self.sha256}


def _export(engine: Engine, archive_dir: Path, month: date, now: datetime) -> MonthExport:
    start, end = _utc(month), _utc(partitions.next_month(month))
    directory = archive_dir / "ledger" / f"{month.year:04d}-{month.month:02d}"
    directory.mkdir(parents=True, exist_ok=True)
    target, partial = directory / "usage_events.jsonl.gz", directory / "usage_events.jsonl.gz.partial"
    digest, rows, cost = hashlib.sha256(), 0, Decimal(0)

    class _Hashing:
        def write(self, data: bytes) -> int:
            digest.update(data)
            return out.write(data)

        def flush(self) -> None:
            out.flush()

    with open(partial, "wb") as out:
        with gzip.GzipFile(fileobj=_Hashing(), mode="wb", mtime=0) as gz:  # type: ignore[arg-type]
            for row in _rows(engine, start, end):
                gz.write(orjson.dumps({k: _jsonable(v) for k, v in row.items()}) + b"\n")
                rows += 1
                cost += row["cost_usd"] or 0
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, target)
    manifest = {"month": f"{month.year:04d}-{month.month:02d}", "first_at": start.isoformat(),
                "end_at": end.isoformat(), "rows": rows,
                "cost_usd": str(cost), "file": target.name, "sha256": digest.hexdigest(),
                "columns": list(_COLUMNS), "exported_at": now.isoformat()}
    (directory / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return MonthExport(month, str(target), rows, cost, digest.hexdigest())


def _remove(engine: Engine, export: MonthExport, now: datetime) -> None:
    month = export.month
    start, end = _utc(month), _utc(partitions.next_month(month))
    with engine.begin() as conn:
        conn.execute(insert(LedgerExport).values(
            month=month, first_at=start, end_at=end, path=export.path, sha256=export.sha256, rows=export.rows,
            cost_usd=export.cost_usd, exported_at=now))
        if month in partitions.existing(conn):
            conn.exec_driver_sql(f"ALTER TABLE usage_events DETACH PARTITION {partitions.name_of(month)}")
            conn.exec_driver_sql(f"DROP TABLE {partitions.name_of(month)}")
            partitions.forget(conn, month)
    while True:  # SQLite, and PostgreSQL's default partition: in batches, each its own transaction
        with engine.begin() as conn:
            ids = select(UsageEvent.id).where(UsageEvent.occurred_at >= start,
                                              UsageEvent.occurred_at < end).limit(DELETE_BATCH)
            if not conn.execute(delete(UsageEvent).where(UsageEvent.id.in_(ids))).rowcount:
                break


@dataclass
class RetentionResult:
    exported: list[MonthExport] = field(default_factory=list)
    partitions_created: list[date] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"exported": [e.as_dict() for e in self.exported],
                "partitions_created": [m.isoformat()[:7] for m in self.partitions_created]}


def run(engine: Engine, archive_dir: str, ledger_months: int, months_ahead: int, now: datetime,
        dry_run: bool = False) -> RetentionResult | dict[str, Any]:
    """Create the partitions ahead, then export and remove the months before the cut-off."""
    this = partitions.month_of(now)
    ahead = [this]
    for _ in range(months_ahead):
        ahead.append(partitions.next_month(ahead[-1]))
    with engine.connect() as conn:
        months = _months_before(conn, cutoff(now, ledger_months)) if ledger_months else []
    if dry_run:
        return {"dry_run": True, "would_create": [m.isoformat()[:7] for m in ahead],
                "would_export": [m.isoformat()[:7] for m in months]}
    result = RetentionResult()
    with engine.begin() as conn:
        result.partitions_created = partitions.ensure(conn, set(ahead))
    for month in months:
        export = _export(engine, Path(archive_dir), month, now)
        _remove(engine, export, now)
        logger.info("ledger month exported", extra={"action": "ledger_month_exported", **export.as_dict()})
        result.exported.append(export)
    return result


@dataclass
class ExportedTotals:
    """What the exported months hold of a UTC range: the ledger's measures, and altered files."""

    rows: int = 0
    measures: dict[str, Any] = field(default_factory=lambda: dict.fromkeys(
        ("requests", "errors", "timeouts", "prompt_tokens", "completion_tokens", "total_tokens",
         "unpriced_requests"), 0) | {"cost_usd": Decimal(0)})
    altered: list[str] = field(default_factory=list)


def exported_totals(conn: Connection, start: datetime, end: datetime, tenant: str | None) -> ExportedTotals:
    """The rows of [start, end) (of one tenant) that retention moved to the archive, re-read from
    the files; a file whose sha256 is not the recorded one is listed as altered and not counted."""
    out = ExportedTotals()
    exports = conn.execute(select(LedgerExport).where(LedgerExport.first_at < end, LedgerExport.end_at > start)
                           .order_by(LedgerExport.month)).all()
    for export in exports:
        path, name = Path(export.path), f"ledger export {export.month.isoformat()[:7]}"
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        except OSError:
            out.altered.append(f"{name} (missing)")
            continue
        if digest.hexdigest() != export.sha256:
            out.altered.append(name)
            continue
        m = out.measures
        with gzip.open(path, "rb") as lines:
            for line in lines:
                row = orjson.loads(line)
                if not start <= datetime.fromisoformat(row["occurred_at"]) < end or (
                        tenant is not None and row["tenant_id"] != tenant):
                    continue
                out.rows += 1
                m["requests"] += 1
                m["errors"] += row["status"] == "error"
                m["timeouts"] += row["status"] == "timeout"
                for tokens in ("prompt_tokens", "completion_tokens", "total_tokens"):
                    m[tokens] += row[tokens]
                if row["cost_usd"] is None:
                    m["unpriced_requests"] += 1
                else:
                    m["cost_usd"] += Decimal(row["cost_usd"])
    return out
