"""The reconcile job: each configured provider's own usage report compared with the ledger.

Over reconcile.days UTC days back (or the operator's dates). One provider failing does not stop
the others; the run is then failed with every provider's figures kept.
"""

from __future__ import annotations

from typing import Any

from worker.integrity import reconcile
from worker.providers import ProviderError
from worker.registry import JobContext, JobFailed, job


@job("reconcile", options=("dates", "dry_run"), schedule="0 7 * * *",
     description="Compare the providers' own usage reports with the ledger for the last reconcile.days UTC days; "
                 "alert on unlogged calls and overcounts")
def reconcile_job(ctx: JobContext) -> dict[str, Any]:
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
