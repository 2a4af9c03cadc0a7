"""The integrity job (unlogged calls and gaps in the books) and the reconcile job (the providers' own figures)."""

from __future__ import annotations

from typing import Any

from worker.integrity import run as integrity, reconcile
from worker.registry import JobContext, JobFailed, job


@job("integrity", schedule="every 15m",
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


@job("reconcile", schedule="0 7 * * *",
     description="Compare the providers' own usage reports with the ledger for the last reconcile.days UTC days; "
                 "alert on unlogged calls and overcounts")
def reconcile_job(ctx: JobContext) -> dict[str, Any]:
    from worker.providers import ProviderError

    now = ctx.now()
    first, last = ctx.days() or reconcile.default_range(ctx.settings, now)
    names = list(ctx.settings.reconcile.providers)
    if ctx.dry_run:
        return {"dry_run": True, "providers": names, "from": first.isoformat(), "to": last.isoformat()}
    stats: dict[str, Any] = {"from": first.isoformat(), "to": last.isoformat(), "providers": {}}
    failed = []
    for name in names:
        if ctx.should_stop():
            break
        try:
            stats["providers"][name] = reconcile.run(ctx.engine, ctx.settings, name, first, last, now).as_dict()
        except ProviderError as exc:  # one provider failing does not stop the others
            ctx.logger.error("reconcile failed", extra={"action": "reconcile_failed", "provider": name,
                                                        "error": str(exc)})
            stats["providers"][name] = {"error": str(exc)}
            failed.append(name)
    if failed:
        raise JobFailed(f"reconcile failed for {', '.join(failed)}: "
                        + "; ".join(stats["providers"][n]["error"] for n in failed), stats)
    return stats
