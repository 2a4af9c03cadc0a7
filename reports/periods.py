"""Report periods: a local day, an ISO week (Monday to Sunday) or a calendar month.

A :class:`Period` is the closed range of local dates a report is about, with its label:
``2026-11-22`` for a day, ``2026-W47`` for an ISO week (the ISO year, which can differ
from the calendar year of its Monday), ``2026-11`` for a month. :func:`period_containing`
gives the period of a kind around a date; :func:`last_complete` the one a scheduled
report is about (the previous one, in the configured time zone). Pure date logic: no
database, no clock of its own (``now`` is passed in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from worker.clock import month_start, next_month
from worker.settings import Settings

KINDS = ("daily", "weekly", "monthly")


class ReportError(Exception):
    pass


@dataclass(frozen=True)
class Period:
    kind: str
    first: date
    last: date

    @property
    def label(self) -> str:
        if self.kind == "daily":
            return self.first.isoformat()
        if self.kind == "weekly":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        return self.first.isoformat()[:7]

    def previous(self) -> Period:
        return period_containing(self.kind, self.first - timedelta(days=1))

    def as_dict(self, tz: str) -> dict[str, Any]:
        return {"label": self.label, "first": self.first.isoformat(), "last": self.last.isoformat(), "timezone": tz}


def period_containing(kind: str, day: date) -> Period:
    if kind == "daily":
        return Period(kind, day, day)
    if kind == "weekly":  # Monday to Sunday
        monday = day - timedelta(days=day.weekday())
        return Period(kind, monday, monday + timedelta(days=6))
    if kind == "monthly":
        first = month_start(day)
        return Period(kind, first, next_month(first) - timedelta(days=1))
    raise ReportError(f"report kind must be one of {', '.join(KINDS)}, got {kind!r}")


def last_complete(kind: str, now: datetime, settings: Settings) -> Period:
    """The period a scheduled report is about: yesterday, last Monday-Sunday, last month (local)."""
    return period_containing(kind, now.astimezone(settings.tz).date()).previous()
