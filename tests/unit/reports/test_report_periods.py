"""Report periods: local days, Monday-Sunday weeks, months, and the one a scheduled run is about."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reports.periods import Period, ReportError, last_complete, period_containing
from worker.settings import Settings


@pytest.mark.parametrize("kind, day, first, last, label", [
    ("daily", "2026-11-22", "2026-11-22", "2026-11-22", "2026-11-22"),
    ("weekly", "2026-11-22", "2026-11-16", "2026-11-22", "2026-W47"),  # a Sunday ends its week
    ("weekly", "2026-11-23", "2026-11-23", "2026-11-29", "2026-W48"),
    ("weekly", "2027-01-01", "2026-12-28", "2027-01-03", "2026-W53"),  # ISO week across the year end
    ("monthly", "2028-02-29", "2028-02-01", "2028-02-29", "2028-02"),
])
def test_period_containing(kind, day, first, last, label) -> None:
    p = period_containing(kind, date.fromisoformat(day))
    assert (p.first, p.last, p.label) == (date.fromisoformat(first), date.fromisoformat(last), label)


def test_previous_periods() -> None:
    assert period_containing("monthly", date(2026, 3, 10)).previous() == Period("monthly", date(2026, 2, 1),
                                                                                date(2026, 2, 28))
    assert period_containing("weekly", date(2026, 11, 23)).previous().label == "2026-W47"
    with pytest.raises(ReportError, match="daily, weekly, monthly"):
        period_containing("hourly", date(2026, 1, 1))


@pytest.mark.parametrize("now, kind, label", [
    ("2026-11-23T08:00:00", "daily", "2026-11-22"),  # 09:00 in Berlin
    ("2026-11-22T23:30:00", "daily", "2026-11-22"),  # already 23 November in Berlin
    ("2026-11-23T08:00:00", "weekly", "2026-W47"),
    ("2026-12-01T08:00:00", "monthly", "2026-11"),
])
def test_a_scheduled_run_reports_the_last_complete_local_period(now, kind, label) -> None:
    settings = Settings(timezone="Europe/Berlin")
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert last_complete(kind, moment, settings).label == label
