"""Quarantined records for the console: a page of them, newest first, with the raw text as text.

The raw bytes are shown the way ``rejects list`` shows them (``worker.ingest.rejects.shown_raw``:
bytes that are not UTF-8 as ``\\xNN``); the template escapes what is left, so a record holding
markup is shown, never run. Long records are cut for the list (``RAW_CHARS``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from worker.ingest.rejects import shown_raw
from worker.models import IngestReject
from worker.text import shown

from web.views.paging import Page, fetch

RAW_CHARS = 2000  # of one record's raw text, on the page


def list_rejects(conn: Connection, source: str | None, include_resolved: bool, page: int,
                 size: int) -> Page[dict[str, Any]]:
    query = select(IngestReject).order_by(IngestReject.id.desc())
    if source:
        query = query.where(IngestReject.source == source)
    if not include_resolved:
        query = query.where(IngestReject.status == "open")
    found = fetch(conn, query, page, size)
    found.rows = [_row(r) for r in found.rows]
    return found


def open_by_source(conn: Connection) -> list[tuple[str, int]]:
    return [(s, n) for s, n in conn.execute(select(IngestReject.source, func.count()).where(
        IngestReject.status == "open").group_by(IngestReject.source).order_by(IngestReject.source))]


def _row(r: Any) -> dict[str, Any]:
    raw = shown_raw(r.raw)
    return {"id": r.id, "source": r.source, "location": shown(r.location), "position": r.position,
            "reason": shown(r.reason), "status": r.status, "received_at": r.received_at,
            "raw": shown(raw[:RAW_CHARS]), "raw_cut": max(len(raw) - RAW_CHARS, 0), "event_id": r.event_id}
