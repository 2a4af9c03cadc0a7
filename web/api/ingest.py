"""``POST /v1/events`` and ``POST /v1/attempts``: usage records and call attempts over HTTP.

The body is one JSON document (an array of records, a page ``{"data": [...]}``, one record) or
JSON lines, in any record shape the ingest understands (canonical, LiteLLM, OpenTelemetry,
Langfuse, Helicone, OpenAI, Anthropic): the same reader and ingest loop as files
(``Ingestor.ingest_body``). The reply comes after the commit: a 2xx means the records are in the
books. Ids make it idempotent (a retry after a timeout is counted as duplicates, never booked
twice); a record without an id gets one from its content. Bad records are quarantined like a
file's lines (``tokentally rejects list``; location ``http:<token name>``) and listed in the reply
with their reasons. ``?source=NAME`` applies a configured source's defaults, id namespace and
format; without it the events' source is ``api``. A body over ``[web] max_body_bytes`` is 413.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from worker.ingest.ingestor import Ingestor
from worker.ledger.pricing import Pricer
from worker.settings import Settings, SettingsError, SourceSettings
from web.api.schemas import ID_PATTERN, IngestResult
from web.auth import Principal
from web.deps import require_app

router = APIRouter(tags=["ingest"])

API_SOURCE = "api"
RECORDS_BODY = {
    "requestBody": {
        "required": True,
        "description": "A JSON array of records, one record, a page {\"data\": [...]}, or JSON lines",
        "content": {
            "application/json": {"schema": {"oneOf": [{"type": "array", "items": {"type": "object"}},
                                                      {"type": "object"}]}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    },
}
SourceName = Query(None, max_length=100, pattern=ID_PATTERN,
                   description="A configured source whose defaults, id namespace and format apply")


def _source(settings: Settings, name: str | None, record_type: str) -> SourceSettings:
    if name is None:
        return SourceSettings(name=API_SOURCE, kind="jsonl", record_type=record_type)
    try:
        configured = settings.source(name)
    except SettingsError as exc:
        raise HTTPException(404, str(exc)) from None
    return replace(configured, record_type=record_type)


def _pricer(request: Request) -> Pricer:
    pricer = getattr(request.app.state, "pricer", None)
    if pricer is None:
        settings = request.app.state.settings
        pricer = request.app.state.pricer = Pricer(settings.price_overrides, settings.tz)
    return pricer


async def _ingest(request: Request, principal: Principal, source_name: str | None, record_type: str) -> IngestResult:
    settings = request.app.state.settings
    source = _source(settings, source_name, record_type)
    data = await request.body()
    ingestor = Ingestor(settings, request.app.state.engine, pricer=_pricer(request))
    stats = await run_in_threadpool(ingestor.ingest_body, data, source, f"http:{principal.name}")
    return IngestResult(accepted=stats.accepted, duplicates=stats.duplicates, rejected=stats.rejected,
                        unattributed=stats.unattributed, unpriced=stats.unpriced, attempts=stats.attempts,
                        skipped=stats.skipped,
                        rejects=[{"position": p, "reason": r} for p, r in stats.rejects or []])


@router.post("/events", response_model=IngestResult, openapi_extra=RECORDS_BODY,
             summary="Book usage records (committed before the reply; idempotent by id)")
async def events(request: Request, source: str | None = SourceName,
                 principal: Principal = Depends(require_app)) -> IngestResult:
    return await _ingest(request, principal, source, "usage")


@router.post("/attempts", response_model=IngestResult, openapi_extra=RECORDS_BODY,
             summary="Record call attempts (logged before calling the LLM; matched to their usage events)")
async def attempts(request: Request, source: str | None = SourceName,
                   principal: Principal = Depends(require_app)) -> IngestResult:
    return await _ingest(request, principal, source, "attempt")
