"""``[anomalies]``: how the anomalies job learns each scope's usual hourly spend and what is unusual."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from worker.settings.reader import Reader, SettingsError, fraction


@dataclass(frozen=True)
class AnomalySettings:
    """``[anomalies]``."""

    history_weeks: int = 4  # of hourly history learned per scope (hour of the week)
    k: float = 6.0  # unusual above median + k x MAD of the hour's history
    mad_floor: float = 0.2  # the MAD counted is at least this fraction of the median (a flat, or few-call, history)
    min_usd: Decimal = Decimal("5")  # an hour's spend below this never alerts (pennies page nobody)
    min_requests: int = 500  # an hour's requests below this are never a burst
    escalate_hours: int = 3  # an anomaly lasting this many hours goes from warning to critical
    top: int = 3  # contributors (accounts, services, models) named in the alert


def parse_anomalies(raw: dict[str, Any] | None, env: dict[str, str]) -> AnomalySettings:
    d = AnomalySettings()
    r = Reader(raw or {}, "anomalies", env)
    k = r.take("k", (int, float), d.k)
    if not 0 < k <= 100:
        raise SettingsError(f"{r.key('k')}: expected a number of MADs more than 0 (up to 100), got {k!r}")
    min_usd = r.decimal("min_usd")
    result = AnomalySettings(
        history_weeks=r.positive_int("history_weeks", d.history_weeks, maximum=52), k=float(k),
        mad_floor=fraction(r, "mad_floor", d.mad_floor, high=10),
        min_usd=d.min_usd if min_usd is None else min_usd,
        min_requests=r.positive_int("min_requests", d.min_requests),
        escalate_hours=r.positive_int("escalate_hours", d.escalate_hours, maximum=24 * 7),
        top=r.positive_int("top", d.top, maximum=50))
    r.done()
    return result
