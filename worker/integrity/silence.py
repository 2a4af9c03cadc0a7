"""Silent sources: a source that normally delivers has delivered nothing for too long.

This is the seeds' "$0.00 dashboard": the app's logging broke, nothing errors,
and the books quietly stop growing. Two rules, per enabled usage source:

- ``expect_every = "15m"`` in the source's settings: silent once nothing new has
  arrived for longer than that (also when it never delivered at all);
- otherwise learned from the source's own history (``integrity.history_weeks``):
  the usual number of events in each hour of the week (of the day, while it has
  less than a week of history). The events that history expects during the
  silence add up; once they reach ``integrity.silent_expected`` (10: a Poisson
  chance of e^-10, about 1 in 22,000, that a healthy source is that quiet) and the
  silence is at least ``integrity.silent_after`` long, the source is silent. A
  source that is usually quiet at night is not flagged at night.

Silence is counted from ``source_status.last_ingest_at``, when new events last
arrived. The alert (``source.silent``, no period) is resolved by the first run
after the source delivers again.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from worker.integrity.base import CheckContext, Finding
from worker.sql import hour_value, utc_hour_bucket
from worker.models import SourceStatus, UsageEvent

HOUR = timedelta(hours=1)
MAX_SILENT_HOURS = 24 * 14  # the expectation is added up over at most this much silence


def silent_sources(ctx: CheckContext) -> list[Finding]:
    now = ctx.now
    if ctx.last < now.astimezone(ctx.settings.tz).date():
        return []  # a state of now: only when the checked days include today
    o = ctx.options
    tz = ctx.settings.tz
    status = {row.source: row for row in ctx.conn.execute(select(SourceStatus)).all()}
    findings = []
    for src in ctx.settings.sources:
        if not src.enabled or src.record_type != "usage":
            continue
        row = status.get(src.name)
        last = row.last_ingest_at if row is not None else None
        if src.expect_every is not None:
            if last is None or now - last > src.expect_every:
                findings.append(_finding(src.name, last, now, tz, 0, f"expect_every {_duration(src.expect_every)}",
                                         expect_every_minutes=_minutes(src.expect_every)))
            continue
        if last is None or now - last < o.silent_after:
            continue
        expected = expected_events(ctx.conn, src.name, last, now, o.history_weeks, tz)
        if expected >= o.silent_expected:
            findings.append(_finding(src.name, last, now, tz, expected, "history"))
    return findings


def _finding(source: str, last: datetime | None, now: datetime, tz: ZoneInfo, expected: float, basis: str,
             **facts: Any) -> Finding:
    """The facts of a silence (templates/findings/source_silent.txt.j2 words them); count = the
    events the history expects (0 for an ``expect_every`` source)."""
    return Finding("source_silent", "source.silent", "source", source, "", round(expected),
                   data={"silent_since": last.isoformat() if last else None,
                         "silent_since_local": _local(last, tz) if last else None,
                         "silent_minutes": _minutes(now - last) if last else None,
                         "expected_events": round(expected, 1), "basis": basis, **facts})


def expected_events(conn: Connection, source: str, since: datetime, now: datetime, weeks: int,
                    tz: ZoneInfo) -> float:
    """Events the source's history expects in [since, now): the mean of each hour's slot
    (hour of the week, or of the day with less than a week of history), pro rata for part hours."""
    counts = hourly_counts(conn, source, since - timedelta(weeks=weeks), since)
    if not counts:
        return 0.0
    first = min(counts)
    weekly = since - first >= timedelta(days=7)

    def slot(hour: datetime) -> tuple[int, int] | int:
        local = hour.astimezone(tz)
        return (local.weekday(), local.hour) if weekly else local.hour

    seen: Counter[Any] = Counter()  # how often each slot occurred in the history
    hour = first
    while hour < since:
        seen[slot(hour)] += 1
        hour += HOUR
    events: Counter[Any] = Counter()
    for hour, n in counts.items():
        events[slot(hour)] += n
    expected = 0.0
    hour = since.replace(minute=0, second=0, microsecond=0)
    end = min(now, since + timedelta(hours=MAX_SILENT_HOURS))
    while hour < end:
        overlap = (min(hour + HOUR, end) - max(hour, since)) / HOUR
        key = slot(hour)
        if seen[key]:
            expected += events[key] / seen[key] * overlap
        hour += HOUR
    return expected


def hourly_counts(conn: Connection, source: str, start: datetime, end: datetime) -> dict[datetime, int]:
    """{UTC hour: events} of one source with occurred_at in [start, end)."""
    col = UsageEvent.occurred_at
    bucket = utc_hour_bucket(conn.dialect.name, col)
    rows = conn.execute(select(bucket, func.count()).where(UsageEvent.source == source, col >= start, col < end)
                        .group_by(bucket)).all()
    return {hour_value(hour): n for hour, n in rows}


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def _duration(span: timedelta) -> str:
    """``15 minutes``, ``2.5 hours``, ``3.0 days`` (the ``basis`` fact; the template words the silence alike)."""
    minutes = _minutes(span)
    if minutes < 120:
        return f"{minutes} minutes"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} hours"
    return f"{minutes / 1440:.1f} days"


def _local(moment: datetime, tz: ZoneInfo) -> str:
    """A moment as the operator reads it: ``2026-11-20 17:59 CET`` (a fact, not a sentence)."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
