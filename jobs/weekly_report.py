"""The weekly_report job: last week's (Monday-Sunday) cost report, archived and sent (``reports.send``)."""

from __future__ import annotations

from typing import Any

from reports.send import run_report_job
from worker.registry import JobContext, job


@job("weekly_report", schedule="0 9 * * 1", options=("dates", "dry_run", "resend"),
     description="Archive and send last week's (Monday-Sunday) cost report")
def weekly_report(ctx: JobContext) -> dict[str, Any]:
    return run_report_job(ctx, "weekly")
