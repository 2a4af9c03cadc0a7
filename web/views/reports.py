"""The report archive for the console: every version with its figures and the state of its files.

The list checks each shown version's files against its manifest (sha256, the cheap half of
``reports verify``: a few files of a few kilobytes each, and never more than a page of
versions); the full verification, which also re-derives the totals from the ledger, runs
when someone asks for it (:func:`verify_report`). A tenant sees its own versions only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select

from reports import archive
from worker.models import Report
from worker.settings import Settings

from web.views.paging import Page, fetch

KINDS = ("daily", "weekly", "monthly")
FILES = ("report.html", "report.csv", "report.json", "chart.png", "manifest.json")


@dataclass
class ReportRow:
    id: int
    kind: str
    period: str
    tenant: str | None
    version: int
    status: str
    generated_at: Any
    requests: Any
    total_tokens: Any
    cost_usd: Any
    sent: int
    files: str  # "intact" | "altered" | "missing"
    altered: list[str]


def _query(tenant: str | None, kind: str | None):
    query = select(Report).order_by(Report.generated_at.desc(), Report.id.desc())
    if kind in KINDS:
        query = query.where(Report.kind == kind)
    if tenant is not None:
        query = query.where(Report.tenant == tenant)
    return query


def list_reports(conn: Connection, tenant: str | None, kind: str | None, page: int, size: int) -> Page[ReportRow]:
    found = fetch(conn, _query(tenant, kind), page, size)
    found.rows = [_row(r) for r in found.rows]
    return found


def get_report(conn: Connection, tenant: str | None, report_id: int) -> Any | None:
    """The index row, if the viewer may see it."""
    return conn.execute(_query(tenant, None).where(Report.id == report_id)).first()


def files_state(row: Any) -> list[str]:
    """The files whose bytes differ from the manifest (or the manifest from the index), or are missing."""
    directory = Path(row.path)
    try:
        manifest_bytes = (directory / "manifest.json").read_bytes()
    except OSError:
        return ["manifest.json (missing)"]
    altered = [] if hashlib.sha256(manifest_bytes).hexdigest() == row.manifest_sha256 else ["manifest.json"]
    try:
        listed = orjson.loads(manifest_bytes).get("files", {})
    except (orjson.JSONDecodeError, AttributeError):
        return ["manifest.json (unreadable)"]
    for name, digest in sorted(listed.items()):
        try:
            data = (directory / name).read_bytes()
        except OSError:
            altered.append(f"{name} (missing)")
            continue
        if hashlib.sha256(data).hexdigest() != digest:
            altered.append(name)
    return altered


def _row(r: Any) -> ReportRow:
    altered = files_state(r)
    state = "intact" if not altered else ("missing" if all("(missing)" in a for a in altered) else "altered")
    totals = r.totals or {}
    return ReportRow(r.id, r.kind, r.period, r.tenant or None, r.version, r.status, r.generated_at,
                     totals.get("requests"), totals.get("total_tokens"), totals.get("cost_usd"), r.sent, state,
                     altered)


def verify_report(engine: Engine, settings: Settings, row: Any) -> dict[str, Any]:
    """``reports verify`` for one version: files altered, data changed since, or ok."""
    return archive.verify(engine, settings, row).as_dict()


def report_figures(row: Any) -> dict[str, Any] | None:
    """The archived report.json (the figures as built), or None when it cannot be read."""
    try:
        return orjson.loads((Path(row.path) / "report.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
