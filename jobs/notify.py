"""The notify job: reminders for open alerts, then the outbox sent."""

from __future__ import annotations

from typing import Any

from worker.alerts import state as alerts
from reports import outbox
from worker.registry import JobContext, job


@job("notify", schedule="every 1m", description="Send due notifications (alerts, reports) and alert reminders")
def notify(ctx: JobContext) -> dict[str, Any]:
    if ctx.dry_run:
        return {"dry_run": True, "due": outbox.due_count(ctx.engine)}
    with ctx.engine.begin() as conn:
        reminders = alerts.send_reminders(conn, ctx.settings)
    stats = outbox.DeliveryStats()
    while not ctx.should_stop():  # batches until nothing is due
        batch = outbox.deliver_pending(ctx.engine, ctx.settings, should_stop=ctx.should_stop)
        stats.sent += batch.sent
        stats.retrying += batch.retrying
        stats.failed += batch.failed
        stats.in_doubt += batch.in_doubt
        if not (batch.sent or batch.retrying or batch.failed):
            break
    return {"reminders": reminders, **stats.as_dict()}
