"""budgets set / list / unset: budgets on tenants, members, services, models, projects and keys."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Optional

import typer

from worker import clock
from worker.limits import scopes
from worker.limits.killswitch import user_name
from worker.money import fixed
from worker.settings import ScopeBudget
from worker.settings.scopes import BUDGET_ACTIONS, SCOPE_HELP, ScopeError, parse_every, parse_scope
from cli.output import Format, ObjectFormat, emit_object, emit_rows
from cli.state import fail, state

budgets_app = typer.Typer(no_args_is_help=True, help="Budgets on scopes: tenants, members, services, models, "
                                                     "projects and keys.")

LIST_COLUMNS = ["scope", "source", "action", "window", "period", "tokens", "cost_usd", "used_pct", "state",
                "resets_in"]


def _money(value: Optional[str], option: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        fail(f"{option}: expected an amount in USD like 12.50, got {value!r}", 2)
    if not amount.is_finite():
        fail(f"{option}: expected an amount in USD like 12.50, got {value!r}", 2)
    return amount


@budgets_app.command("set")
def set_(
    ctx: typer.Context,
    scope: str = typer.Argument(..., help=f"The scope: {SCOPE_HELP}"),
    daily_cost_usd: Optional[str] = typer.Option(None, "--daily-cost-usd", help="USD per local day"),
    daily_tokens: Optional[int] = typer.Option(None, "--daily-tokens", help="Tokens per local day"),
    weekly_cost_usd: Optional[str] = typer.Option(None, "--weekly-cost-usd", help="USD per ISO week (Monday 00:00)"),
    weekly_tokens: Optional[int] = typer.Option(None, "--weekly-tokens", help="Tokens per ISO week"),
    monthly_cost_usd: Optional[str] = typer.Option(None, "--monthly-cost-usd", help="USD per local month"),
    monthly_tokens: Optional[int] = typer.Option(None, "--monthly-tokens", help="Tokens per local month"),
    every: Optional[str] = typer.Option(None, "--every", help="A rolling window of whole days: 7d, 2w (with --start)"),
    start: Optional[str] = typer.Option(None, "--start", help="--every: the local date its first window begins"),
    cost_usd: Optional[str] = typer.Option(None, "--cost-usd", help="--every: USD per rolling window"),
    tokens: Optional[int] = typer.Option(None, "--tokens", help="--every: tokens per rolling window"),
    action: str = typer.Option("warn", "--action", help="block (refuse calls), warn (soft) or alert (notify)"),
    warn_at: str = typer.Option("0.8,1.0", "--warn-at", help="Warning levels, fractions of the limit"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Set a scope's budget (replacing any stored before; it wins over settings.toml's); it applies to the
    scope's current windows at once."""
    if action not in BUDGET_ACTIONS:
        fail(f"--action: expected one of {', '.join(BUDGET_ACTIONS)}, got {action!r}", 2)
    try:
        parse_scope(scope)
        levels = tuple(sorted(float(x) for x in warn_at.split(",") if x.strip()))
        first = date.fromisoformat(start) if start else None
        budget = ScopeBudget(
            scope=scope, action=action, daily_tokens=daily_tokens,
            daily_cost_usd=_money(daily_cost_usd, "--daily-cost-usd"), weekly_tokens=weekly_tokens,
            weekly_cost_usd=_money(weekly_cost_usd, "--weekly-cost-usd"), monthly_tokens=monthly_tokens,
            monthly_cost_usd=_money(monthly_cost_usd, "--monthly-cost-usd"),
            every_days=parse_every(every) if every else None, start=first, tokens=tokens,
            cost_usd=_money(cost_usd, "--cost-usd"), warn_at=levels, source="cli")
        st = state(ctx)
        result = scopes.set_budget(st.engine(), st.settings(), budget, f"operator:{user_name()}")
    except ScopeError as exc:
        fail(str(exc), 2)
    except ValueError:
        fail(f"--start must be a date like 2026-11-02 and --warn-at fractions like 0.8,1.0 "
             f"(got {start!r}, {warn_at!r})", 2)
    if fmt == Format.json:
        emit_object(result, fmt)
        return
    emit_rows(_rows([{"scope": scope, "source": "cli", "action": action, "windows": result["windows"]}]),
              LIST_COLUMNS, Format.table, title=f"budget {scope} set ({result['windows_changed']} window(s) changed)")


def _rows(budgets: list[dict]) -> list[dict]:
    rows = []
    for b in budgets:
        base = {"scope": b["scope"], "source": b["source"], "action": b["action"]}
        if not b["windows"]:
            rows.append({**base, "window": "-", "period": "(not begun)" if b.get("start") else "-"})
        for w in b["windows"]:
            rows.append({**base, "window": w["window"], "period": w["period"],
                         "tokens": _of(f"{w['used_tokens']:,}", w["limit_tokens"] and f"{w['limit_tokens']:,}"),
                         "cost_usd": _of(fixed(Decimal(w["used_cost_usd"]), 4),
                                         w["limit_cost_usd"] and fixed(Decimal(w["limit_cost_usd"]), 4)),
                         "used_pct": w["used_pct"], "state": w["state"],
                         "resets_in": f"{w['resets_in']} ({w['reset_at_local']})"})
    return rows


def _of(used: object, limit: object) -> str:
    return f"{used} (no limit)" if not limit else f"{used} / {limit}"


@budgets_app.command("list")
def list_(
    ctx: typer.Context,
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Every scope budget (settings and stored) with its windows in force: used / limit and when each resets."""
    st = state(ctx)
    settings = st.settings()
    with st.engine().connect() as conn:
        budgets = scopes.list_budgets(conn, settings, clock.now())
    if fmt == Format.json:
        emit_rows(budgets, [], Format.json)
        return
    emit_rows(_rows(budgets), LIST_COLUMNS, Format.table, title="scope budgets")


@budgets_app.command("unset")
def unset(
    ctx: typer.Context,
    scope: str = typer.Argument(..., help=f"The scope: {SCOPE_HELP}"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Remove a budget stored by `budgets set` (a settings.toml budget for the scope applies again)."""
    try:
        parse_scope(scope)
    except ScopeError as exc:
        fail(str(exc), 2)
    st = state(ctx)
    try:
        result = scopes.unset_budget(st.engine(), st.settings(), scope, f"operator:{user_name()}")
    except ScopeError as exc:
        fail(str(exc))
    emit_object(result, fmt, title="budget removed")
