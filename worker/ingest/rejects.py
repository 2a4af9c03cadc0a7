"""Quarantined records: list them, and retry them after a fix (a default, a price, an upgrade)."""

from __future__ import annotations

import base64
import csv
import logging
from typing import Any

import orjson
from sqlalchemy import Engine, select, update

from worker import clock
from worker.ledger.retention import horizon
from worker.ledger.writer import LedgerWriter
from worker.models import IngestReject
from worker.ingest.fields import RecordError, error_reason, type_name
from worker.ingest.normalise import Normaliser
from worker.ledger.event import Event
from worker.ledger.pricing import Pricer
from worker.settings import Settings, SourceSettings
from worker.ingest.files import json_error

logger = logging.getLogger(__name__)

BATCH = 1000


def parse_raw(reject: Any) -> dict[str, Any]:
    """The raw bytes back into a record, the way the source read them. Raises RecordError."""
    if reject.format == "csv":
        try:
            text = reject.raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(f"invalid UTF-8 at byte {exc.start}") from None
        header = next(csv.reader([(reject.header or b"").decode("utf-8-sig", "replace")]), [])
        row = next(csv.reader(text.splitlines()), [])
        if len(row) > len(header):
            raise RecordError(f"CSV row has {len(row)} fields, the header has {len(header)}")
        return {name.strip(): cell for name, cell in zip(header, row) if cell != "" and name.strip()}
    try:
        record = orjson.loads(reject.raw)
    except orjson.JSONDecodeError:
        raise RecordError(json_error(reject.raw)) from None
    if not isinstance(record, dict):
        raise RecordError(f"not a JSON object (got {type_name(record)})")
    return record


def retry(settings: Settings, engine: Engine, source: str | None = None) -> dict[str, int]:
    """Re-run every open reject through normalise + price; accepted ones leave quarantine.

    A reject that raises anything else (a CSV field over the csv module's limit, metadata too
    deep to encode) stays open with that error as its reason, counted in ``errors``."""
    configured = {s.name: s for s in settings.sources}
    pricer = Pricer(settings.price_overrides, settings.tz)
    normalisers: dict[str, Normaliser] = {}
    latest = clock.now() + settings.ingest_max_future  # a record still dated ahead of this stays quarantined
    stats = {"retried": 0, "accepted": 0, "duplicates": 0, "still_rejected": 0, "errors": 0}
    last_id = 0
    while True:
        query = select(IngestReject).where(IngestReject.status == "open", IngestReject.id > last_id)
        if source:
            query = query.where(IngestReject.source == source)
        with engine.begin() as conn:
            rejects = conn.execute(query.order_by(IngestReject.id).limit(BATCH)).all()
            if not rejects:
                break
            last_id = rejects[-1].id
            writer = LedgerWriter("rejects-retry", clock.now(), conn.dialect.name, settings.tz,
                                  horizon=horizon(conn, settings.tz))
            accepted: list[tuple[int, str]] = []
            for rej in rejects:
                stats["retried"] += 1
                src: SourceSettings | None = configured.get(rej.source)
                norm = normalisers.get(rej.source) or normalisers.setdefault(rej.source, Normaliser.for_source(src, latest))
                try:
                    ev = norm.normalise(parse_raw(rej))
                    if isinstance(ev, Event):
                        writer.add(ev, pricer.price(ev), source=rej.source)
                        accepted.append((rej.id, ev.event_id))
                    else:  # a call attempt
                        writer.attempt(ev, source=rej.source)
                        accepted.append((rej.id, ev.attempt_id))
                except Exception as exc:  # still rejected; one row that raises does not stop the retry
                    stats["still_rejected"] += 1
                    reason = str(exc) if isinstance(exc, RecordError) else error_reason(exc)
                    if not isinstance(exc, RecordError):
                        stats["errors"] += 1
                        logger.warning("reject could not be retried", exc_info=exc, extra={
                            "action": "reject_retry_failed", "source": rej.source, "reject_id": rej.id,
                            "error": reason})
                    if reason != rej.reason:
                        conn.execute(update(IngestReject).where(IngestReject.id == rej.id).values(reason=reason))
            result = writer.flush(conn)
            stats["accepted"] += result.accepted
            stats["duplicates"] += result.duplicates
            now = clock.now()
            for rej_id, event_id in accepted:
                conn.execute(update(IngestReject).where(IngestReject.id == rej_id)
                             .values(status="accepted", resolved_at=now, event_id=event_id))
    return stats


def list_rejects(engine: Engine, source: str | None = None, include_resolved: bool = False,
                 limit: int = 1000) -> list[dict[str, Any]]:
    query = select(IngestReject).order_by(IngestReject.id).limit(limit)
    if source:
        query = query.where(IngestReject.source == source)
    if not include_resolved:
        query = query.where(IngestReject.status == "open")
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [{"id": r.id, "source": r.source, "location": r.location, "position": r.position,
             "reason": r.reason, "status": r.status, "received_at": r.received_at.isoformat(),
             "raw": r.raw} for r in rows]


def shown_raw(raw: bytes) -> str:
    """Raw bytes for a person: the text, with bytes that are not UTF-8 as ``\\xNN`` escapes."""
    return raw.decode("utf-8", "backslashreplace")


def raw_for_json(raw: bytes) -> dict[str, Any]:
    """Raw bytes for a program, unambiguous: the text when it is UTF-8, else base64 with the flag."""
    try:
        return {"raw": raw.decode("utf-8"), "raw_base64": False}
    except UnicodeDecodeError:
        return {"raw": base64.b64encode(raw).decode("ascii"), "raw_base64": True}


