"""Integrity: find calls that never reached the books and gaps in our own books.

Every check (one module per family: ``calls``, ``data``, ``books``, ``summaries``, ``silence``;
registered in :data:`CHECKS`, imported on first use) reads the database and returns
:class:`Finding` s; nothing is changed by looking. ``tokentally integrity check``
prints them; the ``integrity`` job also acts on them (:func:`apply`): each finding
raises its alert (one per kind, scope and local day, so a rerun updates it and a
worse count does not send again), an alert of a checked period whose condition
is gone is resolved, and call attempts are marked matched or unlogged.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from worker.integrity import attempts
from worker.integrity.base import Check, CheckContext, Finding, days_back
from worker.alerts.state import AlertSpec, raise_alerts, resolve_alerts
from worker.models import Alert
from worker.settings import Settings
from worker.settings.integrity import CHECK_NAMES
from worker.summaries.usage import range_bounds

logger = logging.getLogger(__name__)


# The registry of checks, in the order they run: name -> the dotted path of its function, imported
# on first use (the style of worker.providers.PROVIDERS); KINDS: name -> the alert kind it raises.
CHECKS: dict[str, str] = {
    "unlogged_calls": "worker.integrity.calls.unlogged_calls",
    "estimate_mismatch": "worker.integrity.calls.estimate_mismatch",
    "source_silent": "worker.integrity.silence.silent_sources",
    "sequence_gap": "worker.integrity.calls.sequence_gaps",
    "unattributed": "worker.integrity.data.unattributed",
    "rejects": "worker.integrity.data.rejects",
    "unpriced": "worker.integrity.data.unpriced",
    "duplicates": "worker.integrity.books.duplicates",
    "token_mismatch": "worker.integrity.books.token_mismatch",
    "cost_mismatch": "worker.integrity.books.cost_mismatch",
    "summaries": "worker.integrity.summaries.summaries",
}
KINDS: dict[str, str] = {name: "source.silent" if name == "source_silent" else f"integrity.{name}"
                         for name in CHECKS}
if tuple(CHECKS) != CHECK_NAMES:
    raise RuntimeError("worker.integrity.run.CHECKS and worker.settings.integrity.CHECK_NAMES differ")

_loaded: dict[str, Check] = {}


def check(name: str) -> Check:
    """The check ``name``'s function, imported on first use (KeyError for an unknown name)."""
    if name not in _loaded:
        module, _, function = CHECKS[name].rpartition(".")
        _loaded[name] = getattr(importlib.import_module(module), function)
    return _loaded[name]


def checks() -> dict[str, tuple[str, Check]]:
    """check name -> (the alert kind it raises, the function), in the order they run."""
    return {name: (KINDS[name], check(name)) for name in CHECKS}


def default_range(settings: Settings, now: datetime) -> tuple[date, date]:
    """The integrity.days local days up to today."""
    return days_back(now, settings.tz, settings.integrity.days)


def run_checks(conn: Connection, settings: Settings, now: datetime, first: date, last: date,
               only: list[str] | None = None) -> list[Finding]:
    """Every check (or ``only`` those) over the local days first..last; nothing is changed."""
    unknown = sorted(set(only or ()) - set(CHECKS))
    if unknown:
        raise ValueError(f"no such check: {', '.join(unknown)} (checks: {', '.join(CHECKS)})")
    ctx = CheckContext(conn, settings, now, first, last)
    skip = settings.integrity.skip
    findings: list[Finding] = []
    for name in CHECKS:
        if (only and name not in only) or (not only and name in skip):  # --only runs a skipped check too
            continue
        findings.extend(check(name)(ctx))
    return findings


@dataclass
class Applied:
    findings: int = 0
    alerts_raised: int = 0  # messages enqueued (new or escalated)
    alerts_resolved: int = 0
    attempts_matched: int = 0
    attempts_unlogged: int = 0
    by_check: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def apply(conn: Connection, settings: Settings, now: datetime, first: date, last: date,
          findings: list[Finding]) -> Applied:
    """Raise an alert for each finding, resolve the checked periods' alerts that no
    longer hold, and bring the call attempts' states up to date (in ``conn``'s transaction)."""
    result = Applied(findings=len(findings))
    start, _ = range_bounds(first, last, settings.tz)
    since = start - timedelta(days=1)  # attempts started late the day before may have their event now
    result.attempts_matched = attempts.match(conn, now, since)
    result.attempts_unlogged = attempts.flag_unlogged(conn, now, now - settings.integrity.attempt_grace)
    for finding in findings:
        result.by_check[finding.check] = result.by_check.get(finding.check, 0) + finding.count
    # together: a storm of one kind is one grouped message per target (alerts.group_after)
    reasons = raise_alerts(conn, settings, [AlertSpec(kind=f.kind, scope=f.scope, scope_id=f.scope_id,
                                                      period=f.period, severity=f.severity, payload=f.payload())
                                            for f in findings])
    result.alerts_raised += sum(1 for r in reasons if r)
    held = {(f.kind, f.scope, f.scope_id, f.period) for f in findings}
    periods = {(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    if last >= now.astimezone(settings.tz).date():
        periods.add("")  # the states of now (silent sources) were checked too
    skip = settings.integrity.skip
    kinds = {kind for name, kind in KINDS.items() if name not in skip}
    # (scope "provider" is the reconcile job's: integrity.unlogged_calls per provider and UTC day)
    cleared = [alert.id for alert in conn.execute(select(Alert).where(
        Alert.kind.in_(kinds), Alert.scope.in_(("source", "system")), Alert.state != "resolved")).all()
        if alert.period in periods and (alert.kind, alert.scope, alert.scope_id, alert.period) not in held]
    result.alerts_resolved += resolve_alerts(conn, settings, cleared)
    logger.info("integrity checked", extra={"action": "integrity_checked", "first": first.isoformat(),
                                            "last": last.isoformat(), **result.as_dict()})
    return result
