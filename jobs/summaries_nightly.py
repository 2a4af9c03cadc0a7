"""The summaries_nightly job: the last summaries.nightly_days local days rebuilt, whatever was marked.

A sweep that catches what marking missed; the operator's dates replace the default span.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from worker.summaries import recompute as summaries
from worker.registry import JobContext, job


@job("summaries_nightly", options=("dates", "dry_run"), schedule="30 2 * * *",
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
