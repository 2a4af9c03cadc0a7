"""Budgets on scopes: ``[budgets."tenant:school-a"]`` tables, and the scope strings themselves.

A scope names what a budget counts: ``tenant:ID`` (a tenant, or team), ``member:ACCOUNT@TENANT``
(one account's usage within a tenant), ``service:NAME`` (a feature), ``model:NAME`` (the model
asked for), ``project:ID`` (the ledger's project) and ``key:ID`` (the API key or its alias). A
budget has limits per local day, ISO week (Monday to Monday) and month, and/or one rolling
window of ``every`` whole days anchored to ``start`` (a local date), with the tiers' ``action``
and ``warn_at``. The same shape is stored by ``tokentally budgets set`` (``worker.limits.scopes``);
this module is the ground floor both read through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from worker.settings.reader import Reader, SettingsError

SCOPE_KINDS = ("tenant", "member", "service", "model", "project", "key")
SCOPE_HELP = "tenant:ID, member:ACCOUNT@TENANT, service:NAME, model:NAME, project:ID or key:ID"
SCOPE_MAX = 400  # characters (the column's size)
BUDGET_ACTIONS = ("warn", "block", "alert")
_EVERY = re.compile(r"^([1-9][0-9]{0,3})([dw])$")


class ScopeError(ValueError):
    """A scope string or a budget that cannot be: the message says what a good one looks like."""


@dataclass(frozen=True)
class Scope:
    kind: str  # one of SCOPE_KINDS
    value: str  # the ID/NAME (for a member: ACCOUNT@TENANT)

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.value}"

    @property
    def label(self) -> str:
        """How a person reads it: "tenant school-a", "member alice@school-a"."""
        return f"{self.kind} {self.value}"

    @property
    def member(self) -> tuple[str, str]:
        """(account, tenant) of a member scope."""
        account, _, tenant = self.value.rpartition("@")
        return account, tenant


def parse_scope(text: Any) -> Scope:
    """``tenant:school-a`` -> Scope("tenant", "school-a"); anything else raises ScopeError."""
    if not isinstance(text, str) or ":" not in text:
        raise ScopeError(f"{text!r} is not a scope: expected {SCOPE_HELP}")
    kind, _, value = text.partition(":")
    if kind not in SCOPE_KINDS:
        raise ScopeError(f"{text!r}: unknown scope kind {kind!r}: expected {SCOPE_HELP}")
    if not value or value != value.strip() or any(ord(c) < 32 for c in value):
        raise ScopeError(f"{text!r}: the {kind} after ':' must be non-empty, with no surrounding spaces")
    if len(text) > SCOPE_MAX:
        raise ScopeError(f"{text[:40]!r}...: a scope is at most {SCOPE_MAX} characters")
    if kind == "member":
        account, at, tenant = value.rpartition("@")
        if not at or not account or not tenant:
            raise ScopeError(f"{text!r}: a member scope is member:ACCOUNT@TENANT")
    return Scope(kind, value)


@dataclass(frozen=True)
class ScopeBudget:
    scope: str  # the scope as written (parse_scope(scope).text == scope)
    action: str = "warn"
    daily_tokens: int | None = None
    daily_cost_usd: Decimal | None = None
    weekly_tokens: int | None = None
    weekly_cost_usd: Decimal | None = None
    monthly_tokens: int | None = None
    monthly_cost_usd: Decimal | None = None
    every_days: int | None = None  # a rolling window of this many local days...
    start: date | None = None  # ...the first of which begins at this local date's midnight
    tokens: int | None = None  # the rolling window's limits
    cost_usd: Decimal | None = None
    warn_at: tuple[float, ...] = (0.8, 1.0)
    source: str = "settings"  # settings | cli (stored in the database; wins over the settings)

    @property
    def parsed(self) -> Scope:
        return parse_scope(self.scope)


def parse_every(value: Any) -> int:
    """``"7d"`` -> 7, ``"2w"`` -> 14: whole local days, so a window is cut at midnight across DST."""
    match = _EVERY.match(value) if isinstance(value, str) else None
    if match is None:
        raise ScopeError(f"every: expected whole days or weeks like \"7d\" or \"2w\", got {value!r}")
    n = int(match.group(1))
    return n * 7 if match.group(2) == "w" else n


def check_budget(budget: ScopeBudget) -> ScopeBudget:
    """Refuse what cannot be a budget: no limit at all, a 0 limit, an ``every`` without a start."""
    parse_scope(budget.scope)
    if budget.action not in BUDGET_ACTIONS:
        raise ScopeError(f"action: expected one of {', '.join(BUDGET_ACTIONS)}, got {budget.action!r}")
    if not budget.warn_at or not all(0 < x <= 10 for x in budget.warn_at):
        raise ScopeError("warn_at: expected fractions like [0.8, 1.0]")
    rolling = (budget.tokens, budget.cost_usd)
    if budget.every_days is None:
        if any(v is not None for v in rolling) or budget.start is not None:
            raise ScopeError("tokens, cost_usd and start belong to a rolling window: give every (e.g. \"7d\") too")
    elif budget.start is None or all(v is None for v in rolling):
        raise ScopeError("a rolling window needs every, start (a date) and tokens and/or cost_usd")
    limits = (budget.daily_tokens, budget.daily_cost_usd, budget.weekly_tokens, budget.weekly_cost_usd,
              budget.monthly_tokens, budget.monthly_cost_usd, *rolling)
    if all(v is None for v in limits):
        raise ScopeError("no limit given: set at least one of daily/weekly/monthly tokens or cost_usd, "
                         "or every with tokens/cost_usd")
    if any(v is not None and v <= 0 for v in limits):
        raise ScopeError("a limit must be more than 0 (leave it out for no limit)")
    return budget


def parse_scope_budget(scope: str, body: Any) -> ScopeBudget:
    """One ``[budgets."<scope>"]`` table."""
    where = f'budgets."{scope}"'
    try:
        parse_scope(scope)
    except ScopeError as exc:
        raise SettingsError(f"{where}: {exc}") from None
    if not isinstance(body, dict):
        raise SettingsError(f"{where}: expected a table of limits")
    r = Reader(body, where, None)
    every = r.take("every", str, None)
    start = r.take("start", (str, date), None)
    warn_at = r.take("warn_at", list, [0.8, 1.0])
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in warn_at):
        raise SettingsError(f"{r.key('warn_at')}: expected fractions like [0.8, 1.0]")
    limits = dict(action=r.take("action", str, "warn"),
                  daily_tokens=r.positive_int("daily_tokens"), daily_cost_usd=r.decimal("daily_cost_usd"),
                  weekly_tokens=r.positive_int("weekly_tokens"), weekly_cost_usd=r.decimal("weekly_cost_usd"),
                  monthly_tokens=r.positive_int("monthly_tokens"), monthly_cost_usd=r.decimal("monthly_cost_usd"),
                  tokens=r.positive_int("tokens"), cost_usd=r.decimal("cost_usd"))
    r.done()
    try:
        if isinstance(start, str):
            start = date.fromisoformat(start)
    except ValueError:
        raise SettingsError(f"{r.key('start')}: expected a date like 2026-11-02, got {start!r}") from None
    try:
        return check_budget(ScopeBudget(scope=scope, **limits, start=start,
                                        every_days=parse_every(every) if every is not None else None,
                                        warn_at=tuple(float(x) for x in sorted(warn_at)), source="settings"))
    except ScopeError as exc:
        raise SettingsError(f"{where}: {exc}") from None


def split_budgets(table: dict[str, Any]) -> tuple[dict[str, Any], dict[str, ScopeBudget]]:
    """``[budgets]``: its own keys (the system thresholds) and its scope tables (any key with a ':'
    or a table for a value); a table under a name that is not a scope is an error naming it."""
    own: dict[str, Any] = {}
    scopes: dict[str, ScopeBudget] = {}
    for key, value in table.items():
        if ":" in key or isinstance(value, dict):
            scopes[key] = parse_scope_budget(key, value)
        else:
            own[key] = value
    return own, scopes
