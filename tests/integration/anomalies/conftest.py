"""Deterministic traffic for the anomaly and forecast tests: an hour-by-hour pattern booked in the ledger."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable
from zoneinfo import ZoneInfo

import pytest

from worker.anomalies.traffic import book, event_row

HOUR = timedelta(hours=1)
TZ = "America/New_York"


def office(local: datetime) -> tuple[Decimal, int]:
    """acme's usual hour: $10 over 20 calls in weekday office hours (9-17), $1 over 4 at night,
    $2 over 5 in weekend days; a steady wobble of ±10% from day to day."""
    wobble = Decimal(1) + Decimal((local.toordinal() % 3) - 1) / 10
    if local.weekday() >= 5:
        return (Decimal(2) * wobble if 9 <= local.hour < 18 else Decimal("0.5"), 5 if 9 <= local.hour < 18 else 2)
    if 9 <= local.hour < 17:
        return Decimal(10) * wobble, 20
    return Decimal(1) * wobble, 4


@pytest.fixture
def traffic(engine) -> Callable[..., int]:
    """traffic(start, end, pattern, account=..., ...): book ``pattern(local hour) -> (cost, calls)``
    for each UTC hour in [start, end); the calls share the hour's cost evenly."""

    def add(start: datetime, end: datetime, pattern=office, *, account: str = "acme", tenant: str = "t1",
            service: str = "chat", model: str = "house-llm", tz: str = TZ) -> int:
        rows = []
        hour = start
        while hour < end:
            cost, calls = pattern(hour.astimezone(ZoneInfo(tz)))
            for i in range(calls):
                rows.append(event_row(f"{account}-{service}-{model}-{hour:%Y%m%d%H}-{i}",
                                      hour + timedelta(seconds=(3600 * i) // calls + 1), account, tenant,
                                      service, "house", model, 1000, 100, (cost / calls).quantize(Decimal("0.000001"))))
            hour += HOUR
        with engine.begin() as conn:
            book(conn, rows)
        return len(rows)

    return add
