"""The budgets job: accounts' usage against their tiers (warn, block, alert), the system against the kill switch.

Scheduled, and also run by the daemon right after each ingest (``after=("ingest",)``), so a block
follows the usage that caused it. The windows are synced first, in the same transaction.
"""

from __future__ import annotations

from typing import Any

from worker.limits import budgets, killswitch, windows as limits
from worker.registry import JobContext, job


@job("budgets", schedule="every 5m", after=("ingest",),
     description="Compare accounts' day/month usage with their tiers (warn, block, alert) and the system "
                 "thresholds (kill switch); also runs after each ingest")
def budgets_job(ctx: JobContext) -> dict[str, Any]:
    now = ctx.now()
    if ctx.dry_run:
        with ctx.engine.connect() as conn:
            day, cost = budgets.system_cost(conn, ctx.settings, now)
            return {"dry_run": True, "day": day, "system_cost_usd": str(cost),
                    "kill_switch": killswitch.kill_switch(conn) is not None}
    with ctx.engine.begin() as conn:
        synced = limits.sync(conn, ctx.settings, now)
        result = budgets.evaluate(conn, ctx.settings, now)
    return {**result.as_dict(), "sync": synced.as_dict()}
