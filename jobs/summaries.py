"""The summaries jobs: recompute the days ingest marked, and a nightly sweep of recent days."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from worker.ledger.dirty_days import dirty_days
from worker.summaries import recompute as summaries
from worker.registry import JobContext, job


@job("summaries", schedule="every 5m", description="Recompute the daily/monthly summaries of days with new data")
def recompute_dirty(ctx: JobContext) -> dict[str, Any]:
    days = ctx.days()
    if ctx.dry_run:
        with ctx.engine.connect() as conn:
            marked = dirty_days(conn, *(days or (None, None)))
        return {"dry_run": True, "would_recompute": [d.isoformat() for d in sorted(marked)]}
    if days is not None:  # an operator asked for these days
        return summaries.rebuild(ctx.engine, ctx.settings, *days, should_stop=ctx.should_stop).as_dict()
    return summaries.run_dirty(ctx.engine, ctx.settings, should_stop=ctx.should_stop).as_dict()


@job("summaries_nightly", schedule="30 2 * * *",
     description="Recompute the last summaries.nightly_days local days, whatever was marked")
def nightly(ctx: JobContext) -> dict[str, Any]:
    days = ctx.days()
    if days is None:
        today = ctx.now().astimezone(ctx.settings.tz).date()
        days = (today - timedelta(days=ctx.settings.summaries_nightly_days), today)
    if ctx.dry_run:
        return {"dry_run": True, "would_recompute": [days[0].isoformat(), days[1].isoformat()]}
    result = summaries.rebuild(ctx.engine, ctx.settings, *days, should_stop=ctx.should_stop).as_dict()
    return {"from": days[0].isoformat(), "to": days[1].isoformat(), **result}
