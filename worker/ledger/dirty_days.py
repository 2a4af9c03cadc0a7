"""The local days whose summaries are out of date: ingest and reprice mark them, the summaries job
recomputes them (``summary_dirty_days``).

A mark carries a generation: recomputing a day clears its mark only if nobody marked
it again meanwhile, so a batch committed during a recompute is never lost.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from worker.models import DirtyDay
from worker.sql import upsert


def utc_hour(moment: datetime) -> int:
    """The UTC hour a moment falls in, as hours since the epoch (cheap to collect per event)."""
    return int(moment.timestamp()) // 3600


def local_days_of_utc_hours(hours: Iterable[int], tz: ZoneInfo) -> set[date]:
    """The local days the given UTC hours fall on: one each in a whole-hour zone, two for an
    hour that a :30 or :45 offset cuts at local midnight."""
    days: set[date] = set()
    for hour in hours:
        start = datetime.fromtimestamp(hour * 3600, UTC)
        days.add(start.astimezone(tz).date())
        days.add((start + timedelta(seconds=3599)).astimezone(tz).date())
    return days


def mark_dirty(conn: Connection, days: Iterable[date], now: datetime) -> None:
    rows = [{"day": d, "generation": 1, "marked_at": now} for d in sorted(set(days))]
    if not rows:
        return
    conn.execute(upsert(conn.dialect.name, DirtyDay, ["day"], rows, set_=lambda excluded: {
        "generation": DirtyDay.generation + 1, "marked_at": excluded.marked_at}))


def dirty_days(conn: Connection, first: date | None = None, last: date | None = None) -> dict[date, int]:
    query = select(DirtyDay.day, DirtyDay.generation)
    if first is not None:
        query = query.where(DirtyDay.day >= first)
    if last is not None:
        query = query.where(DirtyDay.day <= last)
    return dict(conn.execute(query).all())
