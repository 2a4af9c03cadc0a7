"""The report archive: every report written once as a new version, and verified later.

:func:`archive` builds a report (``reports.figures.build``) and writes a new version
directory ``<archive_dir>/<kind>/<period>[/tenants/<tenant folder>]/v<N>/`` (:func:`tenant_folder`) with
``report.html``, ``report.csv``, ``report.json``, ``chart.png`` and ``manifest.json``
(sha256 of each file, generated_at, cut-off, the ledger rows and totals it was built
from, the settings hash), indexed in ``reports``. :func:`verify` recomputes every hash
(altered files) and re-derives the totals from the current ledger (data changed since).

Invariants: an existing version is never touched: the version directory is claimed by
``mkdir`` (a racing writer takes the next number) and every file is created with
``O_EXCL`` and fsynced (:func:`_write_new`); the index row is inserted last, so a row
always points at a complete directory.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from worker import clock
from worker.models import Report
from worker.settings import Settings
from worker.text import csv_safe

from reports.chart import report_chart_png
from reports.figures import build, ledger_totals
from reports.messages import render
from reports.periods import Period, ReportError

logger = logging.getLogger(__name__)

FILES = ("report.json", "report.csv", "report.html", "chart.png")
MAX_FOLDER = 200  # characters of a tenant's folder name (filesystems allow 255 bytes)


@dataclass
class Archived:
    report: dict[str, Any]
    row: Any
    directory: Path
    chart: Path
    messages: int = 0
    files: dict[str, str] = field(default_factory=dict)


def tenant_folder(tenant: str) -> str:
    """The folder name of a tenant's reports: one-to-one, safe on any filesystem, reversible.

    ASCII letters, digits, ``_``, ``-`` and a ``.`` that is not the first character are kept;
    every other character (``/``, ``%``, a leading dot, ``東``) becomes the ``%XX`` of each of its
    UTF-8 bytes, so ``a/b`` -> ``a%2Fb`` (apart from ``a_b``), ``..`` -> ``%2E.``, ``東京`` ->
    ``%E6%9D%B1%E4%BA%AC``, and ``urllib.parse.unquote`` gives the id back. An id made only of
    the kept characters is its own folder name (archives written before keep their paths). A name
    over :data:`MAX_FOLDER` characters keeps its first part and ends with ``~`` and 16 hex digits
    of the id's SHA-256 (``~`` is never part of an encoded name, so it cannot meet another)."""
    out = []
    for i, ch in enumerate(tenant):
        if (ch.isascii() and (ch.isalnum() or ch in "_-")) or (ch == "." and i > 0):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    name = "".join(out)
    if len(name) > MAX_FOLDER:
        name = name[:MAX_FOLDER - 17] + "~" + hashlib.sha256(tenant.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return name


def _scope_dir(settings: Settings, period: Period, tenant: str | None) -> Path:
    base = Path(settings.reports.archive_dir) / period.kind / period.label
    if tenant:
        base = base / "tenants" / tenant_folder(tenant)
    return base


class _SafeWriter:
    """A csv writer whose text cells no spreadsheet evaluates (``worker.text.csv_safe``)."""

    def __init__(self, out: io.StringIO):
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: list[Any]) -> None:
        self._writer.writerow([csv_safe(c) if isinstance(c, str) else c for c in row])


def _csv(report: dict[str, Any]) -> bytes:
    """report.csv: one row a figure; keys from the data (models, accounts, tenants) made safe."""
    out = io.StringIO()
    w = _SafeWriter(out)
    w.writerow(["section", "key", "requests", "total_tokens", "cost_usd", "extra"])
    t = report["totals"]
    w.writerow(["totals", report["period"]["label"], t["requests"], t["total_tokens"], t["cost_usd"],
                f"success_rate={t['success_rate']}"])
    for section in ("by_model", "by_provider", "by_service", "by_tenant"):
        for r in report[section]:
            w.writerow([section, r["key"], r["requests"], r["total_tokens"], r["cost_usd"], f"share={r['share']}"])
    for r in report["top_accounts"]:
        w.writerow(["top_accounts", r["account_id"], r["requests"], r["total_tokens"], r["cost_usd"],
                    f"tier={r['tier']};state={r['state']}"])
    for r in report["daily_cost"]:
        w.writerow(["daily_cost", r["day"], r["requests"], "", r["cost_usd"], ""])
    return out.getvalue().encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def archive(engine: Engine, settings: Settings, period: Period, *, tenant: str | None = None,
            trigger: str = "cli", now: datetime | None = None) -> Archived:
    """Build the report now and write it as a new version; never overwrites one."""
    now = now or clock.now()
    with engine.connect() as conn:
        report = build(conn, settings, period, tenant=tenant, now=now)
        version = (conn.execute(select(func.max(Report.version)).where(
            Report.kind == period.kind, Report.period == period.label, Report.tenant == (tenant or ""))).scalar() or 0) + 1
    base = _scope_dir(settings, period, tenant)
    base.mkdir(parents=True, exist_ok=True)
    while True:  # the directory claims the version; a racing writer takes the next
        directory = base / f"v{version}"
        try:
            directory.mkdir()
            break
        except FileExistsError:
            version += 1
    report["build"]["version"] = version
    chart = report_chart_png(report)  # the period's own days highlighted
    html = render("report/report.html.j2", {"report": report, "report_url": None, "chart_cid": "chart",
                                            "chart_data_uri": "data:image/png;base64," + base64.b64encode(chart).decode()})
    files = {"report.json": orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
             "report.csv": _csv(report), "report.html": html.encode(), "chart.png": chart}
    for name, data in files.items():
        _write_new(directory / name, data)
    manifest = {"kind": period.kind, "period": period.label, "tenant": tenant, "version": version,
                "first_day": period.first.isoformat(), "last_day": period.last.isoformat(),
                "generated_at": report["generated_at"], "cutoff": report["cutoff"], "status": report["status"],
                "ledger_rows": report["build"]["ledger_rows"], "totals": report["totals"],
                "settings_hash": report["build"]["settings_hash"],
                "files": {name: _sha256(data) for name, data in files.items()}}
    manifest_bytes = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    _write_new(directory / "manifest.json", manifest_bytes)
    with engine.begin() as conn:
        try:
            conn.execute(Report.__table__.insert().values(
                kind=period.kind, period=period.label, tenant=tenant or "", version=version,
                first_day=period.first, last_day=period.last, path=str(directory), generated_at=now, cutoff=now,
                status=report["status"], ledger_rows=report["build"]["ledger_rows"], totals=report["totals"],
                settings_hash=report["build"]["settings_hash"], manifest_sha256=_sha256(manifest_bytes),
                trigger=trigger, sent=0))
        except IntegrityError as exc:
            raise ReportError(f"report {period.kind} {period.label} v{version} is already indexed "
                              f"(another worker wrote it); {directory} is left for inspection") from exc
        row = conn.execute(select(Report).where(Report.kind == period.kind, Report.period == period.label,
                                                Report.tenant == (tenant or ""), Report.version == version)).one()
    logger.info("report archived", extra={"action": "report_archived", "report": row.id, "kind": period.kind,
                                          "period": period.label, "tenant": tenant or "", "version": version,
                                          "path": str(directory)})
    return Archived(report, row, directory, directory / "chart.png", files=manifest["files"])


def _write_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet, durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def report_url(settings: Settings, directory: Path) -> str | None:
    if not settings.reports.base_url:
        return None
    relative = directory.resolve().relative_to(Path(settings.reports.archive_dir).resolve())
    # quoted: a tenant folder's %XX must reach the web server as written, not decoded to "/" or "."
    return f"{settings.reports.base_url}/{quote(relative.as_posix())}/report.html"


@dataclass
class Verification:
    report_id: int
    path: str
    altered: list[str] = field(default_factory=list)  # files whose bytes changed or are missing
    changed: dict[str, Any] = field(default_factory=dict)  # figure -> [archived, ledger now]

    @property
    def code(self) -> int:
        return 2 if self.altered else (1 if self.changed else 0)

    def as_dict(self) -> dict[str, Any]:
        verdict = "files altered" if self.altered else ("data changed since" if self.changed else "ok")
        return {"report": self.report_id, "path": self.path, "verdict": verdict, "altered": self.altered,
                "changed": self.changed}


def verify(engine: Engine, settings: Settings, row: Any) -> Verification:
    result = Verification(row.id, row.path)
    directory = Path(row.path)
    try:
        manifest_bytes = (directory / "manifest.json").read_bytes()
    except OSError:
        result.altered.append("manifest.json (missing)")
        return result
    if _sha256(manifest_bytes) != row.manifest_sha256:
        result.altered.append("manifest.json")
    manifest = orjson.loads(manifest_bytes)
    for name, digest in sorted(manifest.get("files", {}).items()):
        try:
            data = (directory / name).read_bytes()
        except OSError:
            result.altered.append(f"{name} (missing)")
            continue
        if _sha256(data) != digest:
            result.altered.append(name)
    period = Period(row.kind, row.first_day, row.last_day)
    with engine.connect() as conn:
        now = ledger_totals(conn, settings, period, row.tenant or None)
    result.altered.extend(now["altered"])  # a ledger month's export, once retention moved it there
    archived = {"ledger_rows": row.ledger_rows, **row.totals}
    current = {"ledger_rows": now["ledger_rows"], **now["totals"]}
    for name in sorted(set(archived) | set(current)):
        if archived.get(name) != current.get(name):
            result.changed[name] = [archived.get(name), current.get(name)]
    return result
