"""The retention job: PostgreSQL partitions made ahead, and ledger months past retention.ledger_months
exported to the archive and removed (worker.ledger.retention). A dry run says what it would do."""

from __future__ import annotations

from typing import Any

from worker.ledger import retention
from worker.registry import JobContext, job


@job("retention", schedule="15 3 * * *", options=("dry_run",),
     description="Make the ledger's partitions ahead; export and drop months past retention.ledger_months")
def keep(ctx: JobContext) -> dict[str, Any]:
    s = ctx.settings
    result = retention.run(ctx.engine, s.reports.archive_dir, s.retention_ledger_months, s.retention_months_ahead,
                           ctx.now(), dry_run=ctx.dry_run)
    return result if isinstance(result, dict) else result.as_dict()
