"""The ingest job: poll every enabled source once."""

from __future__ import annotations

from typing import Any

from worker.ingest.fields import error_reason
from worker.ingest.ingestor import IngestError, Ingestor, IngestStats
from worker.registry import JobContext, JobFailed, job


@job("ingest", schedule="every 1m", description="Ingest new records from every configured source", shared=True)
def ingest(ctx: JobContext) -> dict[str, Any]:
    ingestor = Ingestor(ctx.settings, ctx.engine, should_stop=ctx.should_stop)
    if ctx.dry_run:
        return {"dry_run": True, "sources": {s.name: ingestor.pending(s) for s in ctx.settings.sources
                                             if s.enabled}}
    total = IngestStats()
    failures: dict[str, str] = {}
    per_source: dict[str, dict[str, int]] = {}
    warnings: list[str] = []  # files read only in part (a gzip stream cut short)
    for source in ctx.settings.sources:
        if not source.enabled or ctx.should_stop():
            continue
        try:
            stats = ingestor.ingest_source(source)
        except IngestError as exc:
            # One unreadable source must not stop the others; the run is marked failed below.
            ctx.logger.error("source failed", extra={"action": "source_failed", "source": source.name,
                                                      "error": str(exc)})
            failures[source.name] = str(exc)
            continue
        except Exception as exc:  # a bug reading this source: it fails alone, with its traceback logged
            failures[source.name] = error_reason(exc)
            ctx.logger.exception("source failed", extra={"action": "source_failed", "source": source.name,
                                                          "error": failures[source.name]})
            continue
        total.add(stats)
        total.files += stats.files
        per_source[source.name] = stats.as_dict()
        warnings.extend(stats.warnings)
        if stats.errors:
            failures[source.name] = "; ".join(stats.errors)
    result: dict[str, Any] = {**total.as_dict(), "sources": per_source}
    if warnings:
        result["warnings"] = warnings
    if failures:
        result["failed_sources"] = failures
        raise JobFailed("; ".join(f"{name}: {err}" for name, err in failures.items()), result)
    return result
