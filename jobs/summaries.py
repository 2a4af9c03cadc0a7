"""The summaries job: the daily/monthly summaries of the days ingest marked dirty recomputed.

Given the operator's dates, it rebuilds those days instead; a dry run lists the marked days.
"""

from __future__ import annotations

from typing import Any

from worker.ledger.dirty_days import dirty_days
from worker.summaries import recompute as summaries
from worker.registry import JobContext, job


@job("summaries", schedule="every 5m", options=("dates", "dry_run"),
     description="Recompute the daily/monthly summaries of days with new data")
def recompute_dirty(ctx: JobContext) -> dict[str, Any]:
    days = ctx.days()
    if ctx.dry_run:
        with ctx.engine.connect() as conn:
            marked = dirty_days(conn, *(days or (None, None)))
        return {"dry_run": True, "would_recompute": [d.isoformat() for d in sorted(marked)]}
    if days is not None:  # an operator asked for these days
        return summaries.rebuild(ctx.engine, ctx.settings, *days, should_stop=ctx.should_stop).as_dict()
    return summaries.run_dirty(ctx.engine, ctx.settings, should_stop=ctx.should_stop).as_dict()
