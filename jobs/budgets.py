"""The budgets job: accounts' usage against their tiers (warn, block, alert), scopes' against their
budgets (``worker.limits.scope_judge``), the system against the kill switch.

Scheduled, and also run by the daemon right after each ingest (``after=("ingest",)``), so a block
follows the usage that caused it. The windows are synced first, in the same transaction; then only the
windows that changed since they were last judged are judged (``worker.limits.budgets``). Then the
closed days that ingest brought late usage for (``budget_pending_days``), and the days an operator
names (``--date D``, ``--from/--to``), have their windows judged after the fact (``worker.limits.late``).
"""

from __future__ import annotations

from typing import Any

from worker.limits import budgets, killswitch, late, scope_judge, scope_sync, sync
from worker.registry import JobContext, job


@job("budgets", schedule="every 5m", after=("ingest",), options=("dates", "dry_run"),
     description="Compare accounts' day/month usage with their tiers (warn, block, alert) and the system "
                 "thresholds (kill switch); also runs after each ingest; judges closed days that got late "
                 "usage, and --date D's windows")
def budgets_job(ctx: JobContext) -> dict[str, Any]:
    now = ctx.now()
    asked = late.days_asked(*ctx.days()) if ctx.days() else []
    if ctx.dry_run:
        with ctx.engine.connect() as conn:
            day, cost = budgets.system_cost(conn, ctx.settings, now)
            return {"dry_run": True, "day": day, "system_cost_usd": str(cost),
                    "kill_switch": killswitch.kill_switch(conn) is not None,
                    "late_days": [d.isoformat() for d in late.pending_days(conn)],
                    "asked_days": [d.isoformat() for d in asked]}
    with ctx.engine.begin() as conn:
        synced = sync.sync(conn, ctx.settings, now)
        result = budgets.evaluate(conn, ctx.settings, now)
        judged = late.evaluate_days(conn, ctx.settings, [*late.claim_pending(conn), *asked], now)
        scopes = {"sync": scope_sync.sync(conn, ctx.settings, now).as_dict(),
                  **scope_judge.evaluate(conn, ctx.settings, now).as_dict()}
    return {**result.as_dict(), "sync": synced.as_dict(), "late": judged.as_dict(), "scopes": scopes}
