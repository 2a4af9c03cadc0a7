"""Daily and monthly summaries, recomputed exactly for the days that changed.

Ingest marks the local days a batch touched (``summary_dirty_days``) in the
batch's own transaction. Recomputing a day is one transaction: delete the day's
rows and insert them again from the ledger (``DAY_INSERT``), so a reader never
sees half a day. The day's mark is cleared only if nobody marked it again in the
meantime (its ``generation`` is unchanged), so data that lands while a day is
being recomputed is never lost. Months are the sum of their days.

A day is provisional until ``summaries.settle_hours`` after it ends, then final;
a later change to a final day is recorded in ``summary_corrections``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, func, insert, literal, select, update

from worker import clock
from worker.clock import local_day_bounds, month_start, next_month
from worker.models import DailyRollup, DailySummary, DirtyDay, MonthlySummary, SummaryCorrection, SummaryDay, UsageEvent
from worker.ledger.dirty_days import dirty_days
from worker.ledger.retention import horizon
from worker.settings import Settings
from worker.summaries.aggregate import HEADLINE, KEYS, MEASURES, ROLLUP_KEYS, ledger_group

def _day_insert(day: date, start: datetime, end: datetime, now: datetime):
    """INSERT INTO daily_summaries SELECT <day>, <keys>, <measures> FROM usage_events ... GROUP BY."""
    grouped = ledger_group(start, end).subquery()
    cols = [literal(day, DailySummary.day.type).label("day"),
            *[grouped.c[k] for k in KEYS], *[grouped.c[m] for m in MEASURES],
            literal(now, DailySummary.computed_at.type).label("computed_at")]
    return insert(DailySummary).from_select(["day", *KEYS, *MEASURES, "computed_at"], select(*cols))


def _rollup_insert(day: date, now: datetime):
    """The day's summary rows added up without the account: INSERT INTO daily_rollups SELECT ..."""
    ds = DailySummary
    keys = [getattr(ds, k) for k in ROLLUP_KEYS]
    sums = [func.sum(getattr(ds, m)).label(m) for m in MEASURES if m not in ("latency_min", "latency_max")]
    order = [m for m in MEASURES if m not in ("latency_min", "latency_max")] + ["latency_min", "latency_max"]
    query = (select(literal(day, DailyRollup.day.type), *keys, *sums, func.min(ds.latency_min),
                    func.max(ds.latency_max), literal(now, DailyRollup.computed_at.type))
             .where(ds.day == day).group_by(*keys))
    return insert(DailyRollup).from_select(["day", *ROLLUP_KEYS, *order, "computed_at"], query)


def _month_insert(month: date, now: datetime):
    ds = DailySummary
    keys = [getattr(ds, k) for k in KEYS]
    sums = [func.sum(getattr(ds, m)).label(m) for m in MEASURES if m not in ("latency_min", "latency_max")]
    query = (select(literal(month, MonthlySummary.month.type), *keys, *sums,
                    func.min(ds.latency_min), func.max(ds.latency_max),
                    literal(now, MonthlySummary.computed_at.type))
             .where(ds.day >= month, ds.day < next_month(month))
             .group_by(*keys))
    order = [m for m in MEASURES if m not in ("latency_min", "latency_max")] + ["latency_min", "latency_max"]
    return insert(MonthlySummary).from_select(["month", *KEYS, *order, "computed_at"], query)


def is_final(day: date, tz: ZoneInfo, settle: timedelta, now: datetime) -> bool:
    return local_day_bounds(day, tz)[1] + settle <= now


def _day_totals(conn: Connection, day: date) -> dict[str, Any]:
    ds = DailySummary
    row = conn.execute(select(*[func.coalesce(func.sum(getattr(ds, m)), 0) for m in HEADLINE])
                       .where(ds.day == day)).one()
    return {m: (f"{Decimal(v):.10f}" if m == "cost_usd" else int(v)) for m, v in zip(HEADLINE, row)}


def recompute_day(conn: Connection, day: date, settings: Settings, now: datetime) -> bool:
    """Rebuild one local day from the ledger; True when a final day changed (a correction)."""
    tz = settings.tz
    start, end = local_day_bounds(day, tz)
    final = is_final(day, tz, settings.summaries_settle, now)
    computed_before = conn.execute(select(SummaryDay.day).where(SummaryDay.day == day)).first() is not None
    # Only a day that was computed before can be corrected (a first build is not a correction).
    before = _day_totals(conn, day) if final and computed_before else None
    conn.execute(delete(DailySummary).where(DailySummary.day == day))
    conn.execute(_day_insert(day, start, end, now))
    conn.execute(delete(DailyRollup).where(DailyRollup.day == day))
    conn.execute(_rollup_insert(day, now))
    if computed_before:
        conn.execute(update(SummaryDay).where(SummaryDay.day == day).values(computed_at=now, final=final))
    else:
        conn.execute(insert(SummaryDay).values(day=day, computed_at=now, final=final))
    if before is None:
        return False
    after = _day_totals(conn, day)
    if after == before:
        return False
    changed = {k: _difference(before[k], after[k]) for k in HEADLINE if before[k] != after[k]}
    conn.execute(insert(SummaryCorrection).values(day=day, detected_at=now, before=before, after=after,
                                                  changed=changed))
    return True


def _difference(before: Any, after: Any) -> Any:
    if isinstance(before, str):
        return f"{Decimal(after) - Decimal(before):+.10f}"
    return after - before


def recompute_month(conn: Connection, month: date, now: datetime) -> None:
    conn.execute(delete(MonthlySummary).where(MonthlySummary.month == month))
    conn.execute(_month_insert(month, now))


@dataclass
class RecomputeStats:
    days: int = 0
    months: int = 0
    corrections: int = 0
    retired: int = 0  # days left as they are: their ledger month was exported (worker.ledger.retention)

    def as_dict(self) -> dict[str, int]:
        counts = {"days": self.days, "months": self.months, "corrections": self.corrections}
        return counts | {"retired": self.retired} if self.retired else counts


def _recompute(engine: Engine, settings: Settings, days: dict[date, int | None],
               progress: Callable[[int], None] | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> RecomputeStats:
    """Recompute each day (its own transaction), clearing its mark if unchanged, then the months."""
    stats = RecomputeStats()
    months: set[date] = set()
    with engine.connect() as conn:
        kept_from = horizon(conn, settings.tz)  # the summaries of earlier days are all that is left
    for day in sorted(days):
        if should_stop():
            break
        now = clock.now()
        with engine.begin() as conn:
            if kept_from is not None and local_day_bounds(day, settings.tz)[0] < kept_from:
                stats.retired += 1
                if days[day] is not None:
                    conn.execute(delete(DirtyDay).where(DirtyDay.day == day, DirtyDay.generation == days[day]))
                continue
            if recompute_day(conn, day, settings, now):
                stats.corrections += 1
            generation = days[day]
            if generation is not None:  # clear the mark we saw, not one set since (its data may be unseen)
                conn.execute(delete(DirtyDay).where(DirtyDay.day == day, DirtyDay.generation == generation))
        stats.days += 1
        months.add(month_start(day))
        if progress:
            progress(1)
    for month in sorted(months):
        with engine.begin() as conn:
            recompute_month(conn, month, clock.now())
        stats.months += 1
    return stats


def run_dirty(engine: Engine, settings: Settings, should_stop: Callable[[], bool] = lambda: False) -> RecomputeStats:
    with engine.connect() as conn:
        days = dirty_days(conn)
    return _recompute(engine, settings, dict(days), should_stop=should_stop)


def ledger_day_range(engine: Engine, tz: ZoneInfo) -> tuple[date, date] | None:
    with engine.connect() as conn:
        lo, hi = conn.execute(select(func.min(UsageEvent.occurred_at), func.max(UsageEvent.occurred_at))).one()
    if lo is None:
        return None
    if isinstance(lo, str):  # SQLite returns the stored text for MIN/MAX
        lo, hi = (datetime.fromisoformat(v).replace(tzinfo=UTC) for v in (lo, hi))
    return lo.astimezone(tz).date(), hi.astimezone(tz).date()


def rebuild(engine: Engine, settings: Settings, first: date, last: date,
            progress: Callable[[int], None] | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> RecomputeStats:
    days: dict[date, int | None] = {}
    with engine.connect() as conn:
        marks = dirty_days(conn, first, last)
    day = first
    while day <= last:
        days[day] = marks.get(day, None)
        day += timedelta(days=1)
    return _recompute(engine, settings, days, progress, should_stop)
