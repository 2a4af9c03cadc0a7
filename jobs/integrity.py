"""The integrity job: unlogged calls and gaps in the books found, alerted on, attempts marked.

Over integrity.days local days back (or the operator's dates); a dry run only lists the findings.
"""

from __future__ import annotations

from typing import Any

from worker.integrity import run as integrity
from worker.registry import JobContext, job


@job("integrity", options=("dates", "dry_run"), schedule="every 15m",
     description="Find unlogged calls (attempts without events, sequence gaps, silent sources) and gaps in the "
                 "books (duplicates, token/cost mismatches, rejects, unpriced, unattributed, summaries); alert")
def integrity_job(ctx: JobContext) -> dict[str, Any]:
    now = ctx.now()
    first, last = ctx.days() or integrity.default_range(ctx.settings, now)
    if ctx.dry_run:
        with ctx.engine.connect() as conn:
            findings = integrity.run_checks(conn, ctx.settings, now, first, last)
        return {"dry_run": True, "from": first.isoformat(), "to": last.isoformat(),
                "findings": [{"kind": f.kind, "scope": f.scope, "scope_id": f.scope_id, "period": f.period,
                              "count": f.count} for f in findings]}
    with ctx.engine.begin() as conn:
        findings = integrity.run_checks(conn, ctx.settings, now, first, last)
        applied = integrity.apply(conn, ctx.settings, now, first, last, findings)
    return {"from": first.isoformat(), "to": last.isoformat(), **applied.as_dict()}
