"""Each account's budget state for the period a report covers, from that period's usage.

A report's budget column is about its period, not about the windows in force when it
is built: every local day of the period is measured against the account's daily
limits (tokens, cost), and every calendar month the period touches, up to the
period's last day, against its monthly limits. The usage comes from the summaries
(and the ledger for days not summarised yet: ``worker.summaries.usage``), the tier
from the account (or ``default_tier``), so the figures hold whether or not the
budgets job ran on those days.

State per account, the worst over its windows: ``blocked`` (over 100% on a ``block``
tier), ``over`` (over 100% on a ``warn`` or ``alert`` tier: calls went on), ``warned``
(past the tier's lowest warning level), else ``ok``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from worker.clock import month_start, next_month
from worker.limits import windows as limits
from worker.models import UNATTRIBUTED
from worker.settings import Settings, TierSettings
from worker.summaries.usage import UsageRow, usage

RANK = {"ok": 0, "warned": 1, "over": 2, "blocked": 3}


@dataclass
class AccountBudget:
    """One account's budget in a period: the worst window, and every day and month over."""

    account_id: str
    tier: str
    state: str = "ok"
    window: str | None = None  # the worst window's kind: day | month
    period: str | None = None  # and its label: 2026-11-30 | 2026-11
    fraction: float = 0.0  # how far along the worst window's budget
    days_over: list[str] = field(default_factory=list)
    days_warned: list[str] = field(default_factory=list)
    months_over: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "tier": self.tier, "state": self.state, "window": self.window,
                "period": self.period, "fraction": f"{self.fraction:.4f}", "days_over": self.days_over,
                "days_warned": self.days_warned, "months_over": self.months_over}


def fraction_of(row: UsageRow, lim: limits.Limits) -> float | None:
    """The largest of tokens/limit and cost/limit (requests are rate limits, not budgets)."""
    parts = []
    if lim.tokens:
        parts.append(float(Decimal(row.total_tokens) / Decimal(lim.tokens)))
    if lim.cost_usd:
        parts.append(float(row.cost_usd / lim.cost_usd))
    return max(parts) if parts else None


def state_of(fraction: float | None, tier: TierSettings) -> str:
    if fraction is None:
        return "ok"
    if fraction >= 1:
        return "blocked" if tier.action == "block" else "over"
    return "warned" if tier.warn_at and fraction >= min(tier.warn_at) else "ok"


def _months(first: date, last: date) -> list[tuple[date, date]]:
    """The calendar months the period touches, each up to the period's last day."""
    out = []
    month = month_start(first)
    while month <= last:
        out.append((month, min(next_month(month) - timedelta(days=1), last)))
        month = next_month(month)
    return out


def period_states(conn: Connection, settings: Settings, first: date, last: date) -> dict[str, AccountBudget]:
    """Per account with usage in the period and a tier with budgets: its budget state."""
    tz = settings.tz
    days = {first + timedelta(days=i): usage(conn, tz, first + timedelta(days=i), first + timedelta(days=i),
                                             "account") for i in range((last - first).days + 1)}
    months = {a: usage(conn, tz, a, b, "account") for a, b in _months(first, last)}
    accounts = {r.key for rows in [*days.values(), *months.values()] for r in rows
                if r.key and r.key != UNATTRIBUTED}
    tiers = limits.account_tiers(conn, settings, accounts)
    out: dict[str, AccountBudget] = {}

    def judge(row: UsageRow, kind: str, label: str) -> None:
        tier = tiers.get(row.key) if row.key else None
        if tier is None:
            return
        fraction = fraction_of(row, limits.limits_for(tier, kind))
        state = state_of(fraction, tier)
        have = out.setdefault(row.key, AccountBudget(row.key, tier.name))
        if state in ("over", "blocked"):
            (have.days_over if kind == "day" else have.months_over).append(label)
        elif state == "warned" and kind == "day":
            have.days_warned.append(label)
        if fraction is not None and (RANK[state], fraction) > (RANK[have.state], have.fraction):
            have.state, have.window, have.period, have.fraction = state, kind, label, fraction

    for day, rows in sorted(days.items()):
        for row in rows:
            judge(row, "day", day.isoformat())
    for month, rows in sorted(months.items()):
        for row in rows:
            judge(row, "month", month.isoformat()[:7])
    return out
