"""Cost reports: the figures of a daily, weekly or monthly period, archived and verifiable.

:func:`build` gathers every figure of a period (optionally one tenant's) from the
summaries (and the ledger for days not yet summarised: the same rule as ``usage``),
the limit windows, alerts, rejects and source freshness. :func:`archive` writes a
new version directory ``<archive_dir>/<kind>/<period>[/tenants/<tenant>]/v<N>/``
with ``report.html``, ``report.csv``, ``report.json``, ``chart.png`` and
``manifest.json`` (sha256 of each file, generated_at, cut-off, the ledger rows and
totals it was built from, the settings hash), indexed in ``reports``; an existing
version is never touched. :func:`verify` recomputes every hash (altered files) and
re-derives the totals from the current ledger (data changed since).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import logging
import os
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from worker import clock
from worker.limits import windows as limits
from worker.integrity import reconcile
from worker.alerts.state import enqueue
from worker.clock import local_day_bounds, month_start, next_month
from worker.models import (UNATTRIBUTED, Alert, IngestReject, LimitWindow, Report, SourceStatus, SummaryCorrection,
                     UsageEvent)
from worker.settings.routing import targets_for
from worker.settings import Settings
from worker.summaries.recompute import is_final
from worker.summaries.usage import UsageRow, usage, usage_from_ledger

logger = logging.getLogger(__name__)

KINDS = ("daily", "weekly", "monthly")
TOTAL_FIELDS = ("requests", "errors", "timeouts", "prompt_tokens", "completion_tokens", "total_tokens",
                "cost_usd", "unpriced_requests")
FILES = ("report.json", "report.csv", "report.html", "chart.png")
CHART_DAYS = 30


class ReportError(Exception):
    pass


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    kind: str
    first: date
    last: date

    @property
    def label(self) -> str:
        if self.kind == "daily":
            return self.first.isoformat()
        if self.kind == "weekly":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        return self.first.isoformat()[:7]

    def previous(self) -> Period:
        return period_containing(self.kind, self.first - timedelta(days=1))

    def as_dict(self, tz: str) -> dict[str, Any]:
        return {"label": self.label, "first": self.first.isoformat(), "last": self.last.isoformat(), "timezone": tz}


def period_containing(kind: str, day: date) -> Period:
    if kind == "daily":
        return Period(kind, day, day)
    if kind == "weekly":  # Monday to Sunday
        monday = day - timedelta(days=day.weekday())
        return Period(kind, monday, monday + timedelta(days=6))
    if kind == "monthly":
        first = month_start(day)
        return Period(kind, first, next_month(first) - timedelta(days=1))
    raise ReportError(f"report kind must be one of {', '.join(KINDS)}, got {kind!r}")


def last_complete(kind: str, now: datetime, settings: Settings) -> Period:
    """The period a scheduled report is about: yesterday, last Monday-Sunday, last month (local)."""
    return period_containing(kind, now.astimezone(settings.tz).date()).previous()


# --------------------------------------------------------------------------- figures


def _totals(rows: list[UsageRow]) -> dict[str, Any]:
    out: dict[str, Any] = {name: 0 for name in TOTAL_FIELDS}
    out["cost_usd"] = Decimal(0)
    for r in rows:
        for name in TOTAL_FIELDS:
            out[name] += getattr(r, name)
    return out


def _public_totals(t: dict[str, Any]) -> dict[str, Any]:
    ok = t["requests"] - t["errors"] - t["timeouts"]
    rate = None if not t["requests"] else f"{Decimal(ok) / Decimal(t['requests']):.4f}"
    return {**{k: t[k] for k in TOTAL_FIELDS if k != "cost_usd"}, "cost_usd": _money(t["cost_usd"]),
            "success_rate": rate}


def _money(value: Decimal | int) -> str:
    return f"{Decimal(value):.10f}"


def _change(now: Any, before: Any) -> str | None:
    now, before = Decimal(now), Decimal(before)
    return None if before == 0 else f"{(now - before) / before:.4f}"


def _breakdown(rows: list[UsageRow], total_cost: Decimal) -> list[dict[str, Any]]:
    out = [{"key": r.key if r.key is not None else "(none)", "requests": r.requests, "total_tokens": r.total_tokens,
            "cost_usd": _money(r.cost_usd), "unpriced_requests": r.unpriced_requests,
            "share": None if not total_cost else f"{r.cost_usd / total_cost:.4f}"} for r in rows]
    return sorted(out, key=lambda r: (-Decimal(r["cost_usd"]), -r["requests"], r["key"]))


def settings_hash(settings: Settings) -> str:
    """What the figures depend on: time zone, prices, tiers, thresholds."""
    text = repr((settings.timezone, settings.pricing_fingerprint(), sorted(settings.tiers.items()),
                 settings.default_tier, settings.budgets, settings.summaries_settle))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ledger_totals(conn: Connection, settings: Settings, period: Period, tenant: str | None) -> dict[str, Any]:
    """The period's totals and row count straight from the ledger (what verify re-derives)."""
    rows = usage_from_ledger(conn, settings.tz, period.first, period.last, "day", tenant)
    start, end = local_day_bounds(period.first, settings.tz)[0], local_day_bounds(period.last, settings.tz)[1]
    query = select(func.count()).select_from(UsageEvent).where(UsageEvent.occurred_at >= start,
                                                               UsageEvent.occurred_at < end)
    if tenant is not None:
        query = query.where(UsageEvent.tenant_id == tenant)
    return {"totals": _public_totals(_totals(rows)), "ledger_rows": conn.execute(query).scalar_one()}


def build(conn: Connection, settings: Settings, period: Period, *, tenant: str | None = None,
          now: datetime | None = None) -> dict[str, Any]:
    now = now or clock.now()
    tz = settings.tz
    prev = period.previous()
    first, last = period.first, period.last

    def use(by: str, a: date = first, b: date = last) -> list[UsageRow]:
        return usage(conn, tz, a, b, by, tenant)

    by_day = use("day")
    totals = _totals(by_day)
    prev_totals = _totals(use("day", prev.first, prev.last))
    by_account = use("account")
    cost = totals["cost_usd"]
    start, end = local_day_bounds(first, tz)[0], local_day_bounds(last, tz)[1]

    tiers = limits.account_tiers(conn, settings, [r.key for r in by_account if r.key])
    states = _window_states(conn, start, end)
    tenants_of = _tenants_of(conn, [r.key for r in by_account if r.key], start, end)
    top = sorted((r for r in by_account if r.key != UNATTRIBUTED), key=lambda r: (-r.cost_usd, r.key or ""))
    top_accounts = [{"account_id": r.key, "tenant_id": tenants_of.get(r.key), "tier": t.name if (t := tiers.get(r.key))
                     else None, "state": states.get(r.key, {}).get("state", "ok"), "requests": r.requests,
                     "total_tokens": r.total_tokens, "cost_usd": _money(r.cost_usd)}
                    for r in top[:settings.reports.top_accounts]]
    accounts_here = {r.key for r in by_account}
    warned = [w for a, w in sorted(states.items()) if w["state"] == "warned" and a in accounts_here]
    blocked = [w for a, w in sorted(states.items()) if w["state"] == "blocked" and a in accounts_here]

    unattributed = next((r for r in by_account if r.key == UNATTRIBUTED), None)
    by_model = use("model")
    chart_first = last - timedelta(days=CHART_DAYS - 1)
    per_day = {r.key: r for r in use("day", chart_first, last)}
    days = [chart_first + timedelta(days=i) for i in range(CHART_DAYS)]
    final = all(is_final(d, tz, settings.summaries_settle, now) for d in _days(first, last))
    report = {
        "kind": period.kind,
        "title": f"{period.kind.capitalize()} LLM cost report: {period.label}" + (f" ({tenant})" if tenant else ""),
        "period": period.as_dict(settings.timezone),
        "previous": {"label": prev.label, "first": prev.first.isoformat(), "last": prev.last.isoformat()},
        "tenant": tenant,
        "generated_at": now.isoformat(),
        "cutoff": now.isoformat(),
        "status": "final" if final else "provisional",
        "totals": _public_totals(totals),
        "previous_totals": _public_totals(prev_totals),
        "change": {k: _change(totals[k], prev_totals[k]) for k in ("requests", "total_tokens", "cost_usd")},
        "by_model": _breakdown(by_model, cost),
        "by_provider": _breakdown(use("provider"), cost),
        "by_service": _breakdown(use("service"), cost),
        "by_tenant": [] if tenant else _breakdown(use("tenant"), cost),
        "top_accounts": top_accounts,
        "budget": {"warned": warned, "blocked": blocked,
                   "system": _system_state(conn, settings, first, last, by_day, tenant)},
        "quality": {
            "open_rejects": conn.execute(select(func.count()).select_from(IngestReject)
                                         .where(IngestReject.status == "open")).scalar_one(),
            "rejects_in_period": conn.execute(select(func.count()).select_from(IngestReject).where(
                IngestReject.received_at >= start, IngestReject.received_at < end)).scalar_one(),
            "unattributed_requests": unattributed.requests if unattributed else 0,
            "unattributed_cost_usd": _money(unattributed.cost_usd if unattributed else 0),
            "unpriced_requests": totals["unpriced_requests"],
            "unpriced_models": sorted(r.key for r in by_model if r.unpriced_requests and r.key),
            "open_integrity_alerts": conn.execute(select(func.count()).select_from(Alert).where(
                Alert.kind.like("integrity.%"), Alert.state != "resolved")).scalar_one(),
            "corrections": [] if tenant else _corrections(conn, first, start, end),
        },
        # the providers' own figures for the period's days (UTC days; the whole organisation, so not per tenant)
        "reconciliation": [] if tenant else reconcile.summary(conn, first, last),
        "freshness": [{"source": s.source, "newest_event_at": s.newest_event_at.isoformat(),
                       "last_ingest_at": s.last_ingest_at.isoformat()}
                      for s in conn.execute(select(SourceStatus).order_by(SourceStatus.source))],
        "daily_cost": [{"day": d.isoformat(), "requests": per_day[d.isoformat()].requests if d.isoformat() in per_day
                        else 0, "cost_usd": _money(per_day[d.isoformat()].cost_usd if d.isoformat() in per_day else 0),
                        "in_period": first <= d <= last} for d in days],
        "build": {"ledger_rows": ledger_totals(conn, settings, period, tenant)["ledger_rows"],
                  "settings_hash": settings_hash(settings), "version": None},
    }
    return report


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _window_states(conn: Connection, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    """Per account, its worst day/month window state in the period (blocked > warned > ok)."""
    lw = LimitWindow
    rank = {"ok": 0, "warned": 1, "blocked": 2}
    out: dict[str, dict[str, Any]] = {}
    for w in conn.execute(select(lw.account_id, lw.tier, lw.kind, lw.period, lw.state).where(
            lw.kind.in_(limits.BUDGET_KINDS), lw.window_start < end, lw.reset_at > start, lw.state != "ok")):
        have = out.get(w.account_id)
        if have is None or rank[w.state] > rank[have["state"]]:
            out[w.account_id] = {"account_id": w.account_id, "tier": w.tier, "window": w.kind, "period": w.period,
                                 "state": w.state}
    return out


def _tenants_of(conn: Connection, accounts: list[str], start: datetime, end: datetime) -> dict[str, str]:
    wanted = set(accounts)
    if not wanted:
        return {}
    rows = conn.execute(select(UsageEvent.account_id, func.max(UsageEvent.tenant_id)).where(
        UsageEvent.occurred_at >= start, UsageEvent.occurred_at < end, UsageEvent.tenant_id.is_not(None))
        .group_by(UsageEvent.account_id))
    return {a: t for a, t in rows if a in wanted}


def _system_state(conn: Connection, settings: Settings, first: date, last: date,
                  by_day: list[UsageRow], tenant: str | None) -> dict[str, Any]:
    """The highest system threshold reached on a day of the period (thresholds are daily),
    the costliest day's cost, and whether the kill switch is on now. A tenant's report
    shows its own costliest day and the kill switch, not the system's figures."""
    from worker.limits.budgets import kill_switch, thresholds
    from worker.models import SEVERITIES

    peak = max((r.cost_usd for r in by_day), default=Decimal(0))
    if tenant is not None:
        return {"severity": None, "cost_usd": _money(peak), "kill_switch": kill_switch(conn) is not None,
                "thresholds": {}}
    days = {d.isoformat() for d in _days(first, last)}
    worst = None
    for a in conn.execute(select(Alert.period, Alert.severity).where(Alert.kind == "budget.system")):
        if a.period in days and (worst is None or SEVERITIES.index(a.severity) > SEVERITIES.index(worst)):
            worst = a.severity
    return {"severity": worst, "cost_usd": _money(peak), "kill_switch": kill_switch(conn) is not None,
            "thresholds": {s: str(v) for s, v in thresholds(settings)}}


def _corrections(conn: Connection, first: date, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Changes to earlier final days found during the period (late data)."""
    rows = conn.execute(select(SummaryCorrection).where(SummaryCorrection.detected_at >= start,
                                                        SummaryCorrection.detected_at < end,
                                                        SummaryCorrection.day < first)
                        .order_by(SummaryCorrection.day, SummaryCorrection.id))
    out = []
    for c in rows:
        changes = {k: [str(c.before.get(k)), str(c.after.get(k))] for k in c.changed}
        out.append({"day": c.day.isoformat(), "detected_at": c.detected_at.isoformat(), "changes": changes})
    return out


# --------------------------------------------------------------------------- the archive


@dataclass
class Archived:
    report: dict[str, Any]
    row: Any
    directory: Path
    chart: Path
    messages: int = 0
    files: dict[str, str] = field(default_factory=dict)


def _scope_dir(settings: Settings, period: Period, tenant: str | None) -> Path:
    base = Path(settings.reports.archive_dir) / period.kind / period.label
    if tenant:
        base = base / "tenants" / re.sub(r"[^A-Za-z0-9._-]", "_", tenant)
    return base


def _csv(report: dict[str, Any]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
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
    from reports.chart import report_chart_png
    from reports.messages import render

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
    return f"{settings.reports.base_url}/{relative.as_posix()}/report.html"


def send(engine: Engine, settings: Settings, archived: Archived) -> int:
    """Enqueue the report to its routes (``report.<kind>``) or, for a tenant's report, to the
    tenant's contacts. One message per target and report version (idempotent)."""
    from reports.messages import make_message

    row, report = archived.row, archived.report
    kind = f"report.{row.kind}"
    if row.tenant:
        targets = list(settings.reports.tenants.get(row.tenant, ()))
    else:
        targets = targets_for(settings.routes, kind, "info")
    key = f"report-{row.kind}-{row.period}" + (f"-{row.tenant}" if row.tenant else "") + f"-v{row.version}"
    url = report_url(settings, archived.directory)
    now = clock.now()
    added = 0
    with engine.begin() as conn:
        for channel, target in targets:
            message = make_message("report", {"report": report, "chart_cid": "chart", "report_url": url,
                                              "channel": channel, "target": target},
                                   kind=kind, key=key, data={"report": report, "report_url": url})
            message = replace(message, inline={"chart": str(archived.chart.resolve())})
            added += enqueue(conn, message, channel, target, now)
        conn.execute(Report.__table__.update().where(Report.id == row.id).values(sent=Report.sent + added))
    archived.messages = added
    return added


# --------------------------------------------------------------------------- verify


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
    archived = {"ledger_rows": row.ledger_rows, **row.totals}
    current = {"ledger_rows": now["ledger_rows"], **now["totals"]}
    for name in sorted(set(archived) | set(current)):
        if archived.get(name) != current.get(name):
            result.changed[name] = [archived.get(name), current.get(name)]
    return result
