"""The vocabulary of the integrity checks: a :class:`Finding` and the :class:`CheckContext` a check reads.

A check is a function ``CheckContext -> list[Finding]`` that only reads. A finding
holds facts (counts, names, periods, examples, ``data``), never a sentence: its wording
is the template ``templates/findings/<check>.txt.j2``, rendered with ``finding`` = the
payload plus ``scope_id`` and ``period`` (by the alert templates through
``templates/alerts/sentence.txt.j2``, and by ``tokentally integrity check``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_

from worker.clock import local_day_bounds
from worker.money import fixed
from worker.settings import Settings
from worker.settings.integrity import IntegritySettings
from worker.sql import local_bucket
from worker.summaries.usage import range_bounds


@dataclass
class Finding:
    """One condition found: what, where, when, how much, and a few examples."""

    check: str  # the check that found it (see CHECKS)
    kind: str  # the alert it raises: integrity.unlogged_calls, source.silent, ...
    scope: str  # source | system | provider
    scope_id: str
    period: str  # local day 'YYYY-MM-DD', or "" for a state (a silent source)
    count: int
    severity: str = "warning"
    examples: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def payload(self) -> dict[str, Any]:
        """The alert's facts: what the finding template reads (with the alert's scope_id and period)."""
        return {"check": self.check, "count": self.count,
                "examples": self.examples, **self.data}


@dataclass
class CheckContext:
    conn: Connection
    settings: Settings
    now: datetime
    first: date
    last: date

    @property
    def options(self) -> IntegritySettings:
        return self.settings.integrity

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """UTC [start, end) of the checked local days."""
        return range_bounds(self.first, self.last, self.settings.tz)

    def day_of(self, moment: datetime) -> str:
        return moment.astimezone(self.settings.tz).date().isoformat()


Check = Callable[[CheckContext], list[Finding]]


def days_back(now: datetime, tz: ZoneInfo, days: int, *, through_today: bool = True) -> tuple[date, date]:
    """The ``days`` calendar days in ``tz`` that end today (or, ``through_today=False``, yesterday):
    the default range of the integrity checks (local days) and of reconcile (UTC days)."""
    last = now.astimezone(tz).date() - timedelta(days=0 if through_today else 1)
    return last - timedelta(days=days - 1), last


# ---------------------------------------------------------------------------- what the checks query with

def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def day_column(ctx: CheckContext, col: Any) -> Any:
    """``col``'s local day ('YYYY-MM-DD', labelled ``day``) over the checked range, for GROUP BY."""
    start, end = ctx.bounds
    return local_bucket(ctx.conn.dialect.name, ctx.settings.tz, start, end, "day", col).label("day")


def in_day(ctx: CheckContext, col: Any, day: str) -> Any:
    start, end = local_day_bounds(date.fromisoformat(day), ctx.settings.tz)
    return and_(col >= start, col < end)


def in_range(ctx: CheckContext, col: Any) -> Any:
    start, end = ctx.bounds
    return and_(col >= start, col < end)


def money6(value: Any) -> str:
    """An amount as a fact: a fixed 6-decimal string (the templates put the $ in front)."""
    return fixed(Decimal(value or 0), 6)
