"""The monthly_report job: last month's cost report, archived and sent (``reports.send``)."""

from __future__ import annotations

from typing import Any

from reports.send import run_report_job
from worker.registry import JobContext, job


@job("monthly_report", schedule="0 9 1 * *", options=("dates", "dry_run", "resend"),
     description="Archive and send last month's cost report")
def monthly_report(ctx: JobContext) -> dict[str, Any]:
    return run_report_job(ctx, "monthly")
