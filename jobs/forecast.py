"""The forecast job: accounts' month-end cost forecasts against their monthly limits; ``budget.forecast``.

Hourly (the forecast moves slowly); a dry run lists the forecasts only.
"""

from __future__ import annotations

from typing import Any

from worker.anomalies import forecast, projection
from worker.registry import JobContext, job


@job("forecast", schedule="every 1h",
     description="Forecast each account's month-end cost from the month so far and its hour-of-week pattern; "
                 "raise budget.forecast with the crossing date when a monthly limit would be passed")
def forecast_job(ctx: JobContext) -> dict[str, Any]:
    now = ctx.now()
    if ctx.dry_run:
        with ctx.engine.connect() as conn:
            found = forecast.forecasts(conn, ctx.settings.tz, ctx.settings.anomalies.history_weeks, now)
        return {"dry_run": True, "forecasts": [f.as_dict() for f in found]}
    with ctx.engine.begin() as conn:
        return projection.check(conn, ctx.settings, now).as_dict()
