"""The limits job: rate-limit and budget windows rolled over, created, their usage refreshed."""

from __future__ import annotations

from typing import Any

from worker.limits import windows as limits
from worker.registry import JobContext, job


@job("limits", schedule="every 1m",
     description="Roll expired rate-limit/budget windows over, create windows, refresh their usage from the ledger")
def limits_job(ctx: JobContext) -> dict[str, Any]:
    if ctx.dry_run:
        with ctx.engine.connect() as conn:
            return {"dry_run": True, "open_windows": len(limits.open_windows(conn, ctx.now(), limits.KIND_LIMITS))}
    with ctx.engine.begin() as conn:
        return limits.sync(conn, ctx.settings, ctx.now()).as_dict()
