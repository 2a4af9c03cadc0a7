"""The limits job: rate-limit and budget windows rolled over; the windows of the accounts and the
budgeted scopes with new usage (marked by ingest) created or refreshed; nothing else is touched
(``worker.limits.sync``, ``worker.limits.scope_sync``)."""

from __future__ import annotations

from typing import Any

from worker.limits import scope_sync, sync, windows as limits
from worker.registry import JobContext, job


@job("limits", schedule="every 1m",
     description="Roll expired rate-limit/budget windows over; create or refresh the windows of the accounts "
                 "with new usage since the last run")
def limits_job(ctx: JobContext) -> dict[str, Any]:
    if ctx.dry_run:
        with ctx.engine.connect() as conn:
            return {"dry_run": True, "open_windows": len(limits.open_windows(conn, ctx.now(), limits.KIND_LIMITS))}
    with ctx.engine.begin() as conn:
        stats = sync.sync(conn, ctx.settings, ctx.now()).as_dict()
        return {**stats, "scopes": scope_sync.sync(conn, ctx.settings, ctx.now()).as_dict()}
