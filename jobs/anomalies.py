"""The anomalies job: each scope's last hour (and the hour in progress) against its usual; ``spend.anomaly``.

Scopes: the system, tenants, services, models and accounts (``worker.anomalies.detect``); a dry
run lists the anomalies without raising or resolving anything.
"""

from __future__ import annotations

from typing import Any

from worker.anomalies import detect
from worker.registry import JobContext, job


@job("anomalies", schedule="every 15m",
     description="Compare each scope's (system, tenant, service, model, account) last hour of spend and "
                 "requests with its usual for that hour of the week; raise, escalate and resolve spend.anomaly")
def anomalies_job(ctx: JobContext) -> dict[str, Any]:
    now = ctx.now()
    if ctx.dry_run:
        with ctx.engine.connect() as conn:
            found = detect.find(conn, ctx.settings, now)
        return {"dry_run": True, "anomalies": [{"scope": a.scope[0], "scope_id": a.scope[1],
                                                "hour": a.hour.isoformat(), "partial": a.partial,
                                                "measures": a.measures, "cost_usd": str(a.cost),
                                                "requests": a.requests} for a in found]}
    with ctx.engine.begin() as conn:
        return detect.run(conn, ctx.settings, now).as_dict()
