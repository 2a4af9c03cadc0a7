"""Integrity: find calls that never reached the books and gaps in our own books.

Every check (``worker.checks``, ``worker.silence``) reads the database and returns
:class:`Finding` s; nothing is changed by looking. ``tokentally integrity check``
prints them; the ``integrity`` job also acts on them (:func:`apply`): each finding
raises its alert (one per kind, scope and local day, so a rerun updates it and a
worse count does not send again), an alert of a checked period whose condition
is gone is resolved, and call attempts are marked matched or unlogged.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable

from sqlalchemy import Connection, select

from worker.integrity import attempts
from worker.alerts.state import raise_alert, resolve_alert
from worker.models import Alert
from worker.settings import Settings, SettingsError, TableReader, parse_duration
from worker.summaries.usage import range_bounds

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntegritySettings:
    """``[integrity]``."""

    days: int = 2  # local days each run of the job checks, today included
    attempt_grace: timedelta = timedelta(minutes=10)  # an attempt's event may take this long to arrive
    estimate_tolerance: float = 0.2  # |actual - estimated| / estimated tokens beyond this is flagged
    cost_tolerance: float = 0.2  # |reported - computed| / computed cost beyond this is flagged
    unattributed_share: float = 0.01  # of a day's events without an account
    silent_after: timedelta = timedelta(minutes=30)  # shortest silence that can be flagged
    silent_expected: float = 10.0  # events the source's history expects during the silence
    history_weeks: int = 4  # of history learned per source
    request_id_keys: tuple[str, ...] = ("provider_request_id", "response_id", "generation_id")
    examples: int = 5  # per finding
    skip: tuple[str, ...] = ()  # checks the job leaves out (CHECK_NAMES)


# The checks, in the order they run (see checks()).
CHECK_NAMES = ("unlogged_calls", "estimate_mismatch", "source_silent", "sequence_gap", "unattributed", "rejects",
               "unpriced", "duplicates", "token_mismatch", "cost_mismatch", "summaries")


def parse_integrity(raw: dict[str, Any] | None, env: dict[str, str]) -> IntegritySettings:
    d = IntegritySettings()
    r = TableReader(raw or {}, "integrity", env)

    def duration(name: str, default: timedelta) -> timedelta:
        text = r.take(name, str)
        return parse_duration(text, r.key(name)) if text is not None else default

    def fraction(name: str, default: float) -> float:
        value = r.take(name, (int, float), default)
        if not 0 <= value <= 100:
            raise SettingsError(f"{r.key(name)}: expected a fraction like 0.2, got {value!r}")
        return float(value)

    keys = r.take("request_id_keys", list, list(d.request_id_keys))
    if not all(isinstance(k, str) and k for k in keys):
        raise SettingsError(f"{r.key('request_id_keys')}: expected a list of metadata key names")
    skip = r.take("skip", list, [])
    if unknown := [name for name in skip if name not in CHECK_NAMES]:
        raise SettingsError(f"{r.key('skip')}: no such check: {', '.join(map(str, unknown))} "
                            f"(checks: {', '.join(CHECK_NAMES)})")
    expected = r.take("silent_expected", (int, float), d.silent_expected)
    if expected <= 0:
        raise SettingsError(f"{r.key('silent_expected')}: must be more than 0, got {expected!r}")
    result = IntegritySettings(
        days=r.positive_int("days", d.days), attempt_grace=duration("attempt_grace", d.attempt_grace),
        estimate_tolerance=fraction("estimate_tolerance", d.estimate_tolerance),
        cost_tolerance=fraction("cost_tolerance", d.cost_tolerance),
        unattributed_share=fraction("unattributed_share", d.unattributed_share),
        silent_after=duration("silent_after", d.silent_after), silent_expected=float(expected),
        history_weeks=r.positive_int("history_weeks", d.history_weeks), request_id_keys=tuple(keys),
        examples=r.positive_int("examples", d.examples), skip=tuple(skip))
    r.done()
    return result


def integrity_settings(settings: Settings) -> IntegritySettings:
    return settings.integrity or IntegritySettings()


@dataclass
class Finding:
    """One condition found: what, where, when, how much, and a few examples."""

    check: str  # the check that found it (see CHECKS)
    kind: str  # the alert it raises: integrity.unlogged_calls, source.silent, ...
    scope: str  # source | system | provider
    scope_id: str
    period: str  # local day 'YYYY-MM-DD', or "" for a state (a silent source)
    count: int
    message: str
    severity: str = "warning"
    examples: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def payload(self) -> dict[str, Any]:
        return {"message": self.message, "check": self.check, "count": self.count,
                "examples": self.examples, **self.data}


@dataclass
class CheckContext:
    conn: Connection
    settings: Settings
    now: datetime
    first: date
    last: date

    @property
    def options(self) -> IntegritySettings:
        return integrity_settings(self.settings)

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """UTC [start, end) of the checked local days."""
        return range_bounds(self.first, self.last, self.settings.tz)

    def day_of(self, moment: datetime) -> str:
        return moment.astimezone(self.settings.tz).date().isoformat()


Check = Callable[[CheckContext], list[Finding]]


def checks() -> dict[str, tuple[str, Check]]:
    """check name -> (the alert kind it raises, the function)."""
    from worker.integrity import checks as c
    from worker.integrity import silence

    found = {
        "unlogged_calls": ("integrity.unlogged_calls", c.unlogged_calls),
        "estimate_mismatch": ("integrity.estimate_mismatch", c.estimate_mismatch),
        "source_silent": ("source.silent", silence.silent_sources),
        "sequence_gap": ("integrity.sequence_gap", c.sequence_gaps),
        "unattributed": ("integrity.unattributed", c.unattributed),
        "rejects": ("integrity.rejects", c.rejects),
        "unpriced": ("integrity.unpriced", c.unpriced),
        "duplicates": ("integrity.duplicates", c.duplicates),
        "token_mismatch": ("integrity.token_mismatch", c.token_mismatch),
        "cost_mismatch": ("integrity.cost_mismatch", c.cost_mismatch),
        "summaries": ("integrity.summaries", c.summaries),
    }
    assert tuple(found) == CHECK_NAMES
    return found


def default_range(settings: Settings, now: datetime) -> tuple[date, date]:
    today = now.astimezone(settings.tz).date()
    return today - timedelta(days=integrity_settings(settings).days - 1), today


def run_checks(conn: Connection, settings: Settings, now: datetime, first: date, last: date,
               only: list[str] | None = None) -> list[Finding]:
    """Every check (or ``only`` those) over the local days first..last; nothing is changed."""
    registry = checks()
    unknown = sorted(set(only or ()) - set(registry))
    if unknown:
        raise ValueError(f"no such check: {', '.join(unknown)} (checks: {', '.join(registry)})")
    ctx = CheckContext(conn, settings, now, first, last)
    skip = integrity_settings(settings).skip
    findings: list[Finding] = []
    for name, (_, check) in registry.items():
        if (only and name not in only) or (not only and name in skip):  # --only runs a skipped check too
            continue
        findings.extend(check(ctx))
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
    result.attempts_unlogged = attempts.flag_unlogged(conn, now, now - integrity_settings(settings).attempt_grace)
    for finding in findings:
        result.by_check[finding.check] = result.by_check.get(finding.check, 0) + finding.count
        if raise_alert(conn, settings, kind=finding.kind, scope=finding.scope, scope_id=finding.scope_id,
                       period=finding.period, severity=finding.severity,
                       payload=finding.payload()):
            result.alerts_raised += 1
    held = {(f.kind, f.scope, f.scope_id, f.period) for f in findings}
    periods = {(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    if last >= now.astimezone(settings.tz).date():
        periods.add("")  # the states of now (silent sources) were checked too
    skip = integrity_settings(settings).skip
    kinds = {kind for name, (kind, _) in checks().items() if name not in skip}
    # (scope "provider" is the reconcile job's: integrity.unlogged_calls per provider and UTC day)
    for alert in conn.execute(select(Alert).where(Alert.kind.in_(kinds), Alert.scope.in_(("source", "system")),
                                                  Alert.state != "resolved")).all():
        if alert.period in periods and (alert.kind, alert.scope, alert.scope_id, alert.period) not in held:
            if resolve_alert(conn, settings, alert.id):
                result.alerts_resolved += 1
    logger.info("integrity checked", extra={"action": "integrity_checked", "first": first.isoformat(),
                                            "last": last.isoformat(), **result.as_dict()})
    return result
