"""Window boundaries: local days and months across DST, local hours in offset zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from worker.limits.windows import Limits, bounds, kinds_for, limits_for
from worker.settings import TierSettings


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("tz, at, kind, start, reset, period", [
    ("UTC", "2026-11-23T10:00:59.9", "minute", "2026-11-23T10:00:00", "2026-11-23T10:01:00", "2026-11-23T10:00"),
    ("Europe/Berlin", "2026-11-23T22:59:59", "day", "2026-11-22T23:00:00", "2026-11-23T23:00:00", "2026-11-23"),
    ("Europe/Berlin", "2026-11-23T23:00:00", "day", "2026-11-23T23:00:00", "2026-11-24T23:00:00", "2026-11-24"),
    # the day the clocks go back has 25 hours, the day they go forward 23
    ("Europe/Berlin", "2026-10-25T12:00:00", "day", "2026-10-24T22:00:00", "2026-10-25T23:00:00", "2026-10-25"),
    ("Europe/Berlin", "2026-03-29T12:00:00", "day", "2026-03-28T23:00:00", "2026-03-29T22:00:00", "2026-03-29"),
    ("America/New_York", "2026-11-01T05:30:00", "day", "2026-11-01T04:00:00", "2026-11-02T05:00:00", "2026-11-01"),
    # both 01:xx hours of the night the clocks go back are their own hour
    ("Europe/Berlin", "2026-10-25T00:30:00", "hour", "2026-10-25T00:00:00", "2026-10-25T01:00:00", "2026-10-25T02"),
    ("Europe/Berlin", "2026-10-25T01:30:00", "hour", "2026-10-25T01:00:00", "2026-10-25T02:00:00", "2026-10-25T02"),
    ("Asia/Kolkata", "2026-11-23T10:10:00", "hour", "2026-11-23T09:30:00", "2026-11-23T10:30:00", "2026-11-23T15"),
    ("Europe/Berlin", "2026-11-30T22:59:59", "month", "2026-10-31T23:00:00", "2026-11-30T23:00:00", "2026-11"),
    ("Europe/Berlin", "2026-11-30T23:00:00", "month", "2026-11-30T23:00:00", "2026-12-31T23:00:00", "2026-12"),
    ("Europe/Berlin", "2026-03-15T12:00:00", "month", "2026-02-28T23:00:00", "2026-03-31T22:00:00", "2026-03"),
    ("UTC", "2028-02-29T12:00:00", "month", "2028-02-01T00:00:00", "2028-03-01T00:00:00", "2028-02"),
])
def test_bounds(tz, at, kind, start, reset, period) -> None:
    b = bounds(kind, utc(at), ZoneInfo(tz))
    assert (b.start, b.reset_at, b.period) == (utc(start), utc(reset), period)
    assert b.start <= utc(at) < b.reset_at


def test_consecutive_windows_tile_time_without_gaps() -> None:
    tz = ZoneInfo("Europe/Berlin")
    for kind in ("hour", "day", "month"):
        at = utc("2026-01-01T00:00:00")
        previous = None
        while at < utc("2027-01-01T00:00:00"):
            b = bounds(kind, at, tz)
            if previous is not None:
                assert b.start == previous.reset_at, (kind, at)
            previous = b
            at = b.reset_at + timedelta(seconds=1)


def test_kinds_and_limits_follow_the_tier() -> None:
    tier = TierSettings(name="api", action="block", daily_tokens=1000, requests_per_minute=10)
    assert kinds_for(tier) == ("minute", "day", "month")
    assert kinds_for(None) == ("day", "month")
    assert limits_for(tier, "day").tokens == 1000 and limits_for(tier, "day").cost_usd is None
    assert limits_for(tier, "minute").requests == 10 and limits_for(None, "day") == Limits()
