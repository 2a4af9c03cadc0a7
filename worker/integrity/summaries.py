"""The summaries against the ledger: rows that differ, days with events never summarised.

Days waiting to be recomputed (marked dirty) are skipped: they will be. Nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from worker.integrity.base import CheckContext, Finding
from worker.models import DirtyDay, SummaryDay
from worker.summaries import verify as summary_tables


def summaries(ctx: CheckContext) -> list[Finding]:
    """Summaries that differ from the ledger, and days with events that were never summarised.
    Days waiting to be recomputed (marked dirty) are skipped: they will be."""
    o = ctx.options
    differences = summary_tables.verify_conn(ctx.conn, ctx.settings, ctx.first, ctx.last)
    summarised = {d.isoformat() for (d,) in ctx.conn.execute(
        select(SummaryDay.day).where(SummaryDay.day >= ctx.first, SummaryDay.day <= ctx.last)).all()}
    dirty = {d.isoformat() for (d,) in ctx.conn.execute(
        select(DirtyDay.day).where(DirtyDay.day >= ctx.first, DirtyDay.day <= ctx.last)).all()}
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for diff in differences:
        by_day[diff["day"]].append(diff)
    findings = []
    for d in sorted(set(by_day) - dirty):  # (a day with events and no summary differs in every row)
        if d not in summarised:
            findings.append(Finding(
                "summaries", "integrity.summaries", "system", "", d, 1,
                data={"missing": True}))
            continue
        found = by_day[d]
        findings.append(Finding(
            "summaries", "integrity.summaries", "system", "", d, len(found),
            examples=found[:o.examples]))
    return findings
