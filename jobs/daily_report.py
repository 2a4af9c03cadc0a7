"""The daily_report job: the previous local day's cost report, archived and sent (``reports.send``)."""

from __future__ import annotations

from typing import Any

from reports.send import run_report_job
from worker.registry import JobContext, job


@job("daily_report", schedule="0 9 * * *", options=("dates", "dry_run", "resend"),
     description="Archive and send the previous local day's cost report")
def daily_report(ctx: JobContext) -> dict[str, Any]:
    return run_report_job(ctx, "daily")
