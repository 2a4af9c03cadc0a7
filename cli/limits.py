"""limits show / list and killswitch status / clear / on."""

from __future__ import annotations

import sys
from typing import Any

import orjson
import typer

from worker.limits import budgets, killswitch, live, scope_store, scopes, windows as limits
from worker import clock, gate, gate_scopes
from worker.settings.scopes import SCOPE_KINDS, parse_scope
from worker.money import fixed
from cli.output import Format, ObjectFormat, console, emit_rows
from cli.state import fail, state

limits_app = typer.Typer(no_args_is_help=True, help="Rate-limit and budget windows and what the gate decides.")
killswitch_app = typer.Typer(no_args_is_help=True,
                             help="The system-wide kill switch: on, the gate refuses every call.")

WINDOW_COLUMNS = ["kind", "period", "reset_at", "requests", "tokens", "cost_usd", "state", "blocked_until"]


def _used(used: Any, limit: Any, money: bool = False) -> str:
    shown = fixed(used, 4) if money else f"{used:,}"
    if limit is None:
        return f"{shown} (no limit)"
    return f"{shown} / {fixed(limit, 4)}" if money else f"{shown} / {limit:,}"


@limits_app.command("show")
def show(
    ctx: typer.Context,
    account_id: str = typer.Argument(..., help="The account (as in the ledger; '(unattributed)' too), or a "
                                               "scope with a budget: tenant:ID, member:ACCOUNT@TENANT, service:NAME, "
                                               "model:NAME, project:ID, key:ID"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """The account's tier, its windows in force (used against limits, reset times), its tenant's and membership's
    budgets and the gate's decision; or a scope's budget windows (used / limit, resets in)."""
    st = state(ctx)
    settings = st.settings()
    now = clock.now()
    if account_id.partition(":")[0] in SCOPE_KINDS:
        return _show_scope(st, settings, account_id, now, fmt)
    with st.engine().connect() as conn:
        tier = limits.tier_of(conn, settings, account_id)
        views = gate.windows(conn, settings, account_id, now, tier)
        decision = gate.decide(conn, settings, account_id, now)
        stored = live.read(conn, account_id, now).stored_tenant
        mine = gate_scopes.budgeted(scope_store.all_budgets(conn, settings), account_id, stored, gate_scopes.NO_CALL)
        scope_views = scopes.scope_views(conn, settings, mine, now)
    local = settings.tz
    if fmt == Format.json:
        out = {"account_id": account_id, "tier": tier.name if tier else None,
               "action": tier.action if tier else None, "decision": decision.as_dict(),
               "windows": [v.as_dict() for v in views], "scopes": [v.as_dict(now, local) for v in scope_views]}
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
        return
    rows = [{"kind": v.kind, "period": v.period, "reset_at": v.reset_at.astimezone(local).strftime("%Y-%m-%d %H:%M %Z"),
             "requests": _used(v.used_requests, v.limit_requests), "tokens": _used(v.used_tokens, v.limit_tokens),
             "cost_usd": _used(v.used_cost_usd, v.limit_cost_usd, money=True), "state": v.state,
             "blocked_until": v.blocked_until.astimezone(local).strftime("%Y-%m-%d %H:%M %Z") if v.blocked_until
             else None} for v in views]
    tier_text = f"{tier.name} (action {tier.action})" if tier else "none (not limited)"
    emit_rows(rows, WINDOW_COLUMNS, Format.table, title=f"{account_id}: tier {tier_text}")
    if scope_views:
        emit_rows(_scope_rows(scope_views, now, local), SCOPE_COLUMNS, Format.table,
                  title=f"{account_id}: budgets of its tenant")
    verdict = "can call" if decision.can_call else "CANNOT call"
    until = f", until {decision.reset_at.astimezone(local):%Y-%m-%d %H:%M %Z}" if decision.reset_at and \
        not decision.can_call else ""
    console.print(f"gate: {verdict} ({decision.reason}{until}): {decision.detail}")


SCOPE_COLUMNS = ["scope", "window", "period", "tokens", "cost_usd", "used_pct", "state", "resets_in"]


def _scope_rows(views: list[gate_scopes.ScopeView], now: Any, tz: Any) -> list[dict[str, Any]]:
    rows = []
    for v in views:
        d = v.as_dict(now, tz)
        rows.append({"scope": v.scope, "window": d["window"], "period": v.period,
                     "tokens": _used(v.used_tokens, v.limit_tokens), "cost_usd": _used(v.used_cost_usd,
                                                                                     v.limit_cost_usd, money=True),
                     "used_pct": d["used_pct"], "state": v.state,
                     "resets_in": f"{d['resets_in']} ({d['reset_at_local']})"})
    return rows


def _show_scope(st: Any, settings: Any, scope: str, now: Any, fmt: ObjectFormat) -> None:
    try:
        parse_scope(scope)
    except ValueError as exc:
        fail(str(exc), 2)
    with st.engine().connect() as conn:
        budget = scope_store.all_budgets(conn, settings).get(scope)
        if budget is None:
            fail(f"{scope}: no budget is set for this scope (`tokentally budgets list` shows those that are)")
        views = scopes.scope_views(conn, settings, {scope: budget}, now)
    if fmt == Format.json:
        out = {"scope": scope, "source": budget.source, "action": budget.action,
               "windows": [v.as_dict(now, settings.tz) for v in views]}
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
        return
    emit_rows(_scope_rows(views, now, settings.tz), SCOPE_COLUMNS, Format.table,
              title=f"{scope}: action {budget.action} ({budget.source})")


@limits_app.command("list")
def list_(
    ctx: typer.Context,
    kind: str = typer.Option("day", "--kind", help="minute, hour, day or month"),
    over_only: bool = typer.Option(False, "--warned", help="Only warned and blocked windows"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """Every account's current window of one kind, most used first."""
    if kind not in limits.KIND_LIMITS:
        fail(f"--kind must be one of {', '.join(limits.KIND_LIMITS)}")
    st = state(ctx)
    with st.engine().connect() as conn:
        rows = []
        for w in limits.open_windows(conn, clock.now(), [kind]):
            if over_only and w.state == "ok":
                continue
            fraction = limits.fraction_used(w)
            rows.append({"account_id": w.account_id, "tier": w.tier, "action": w.action, "period": w.period,
                         "used_requests": w.used_requests, "limit_requests": w.limit_requests,
                         "used_tokens": w.used_tokens, "limit_tokens": w.limit_tokens,
                         "used_cost_usd": w.used_cost_usd, "limit_cost_usd": w.limit_cost_usd,
                         "used_pct": None if fraction is None else round(fraction * 100, 1), "state": w.state,
                         "reset_at": w.reset_at.isoformat()})
    rows.sort(key=lambda r: (-(r["used_pct"] or 0), -r["used_cost_usd"], r["account_id"]))
    emit_rows(rows, ["account_id", "tier", "period", "used_tokens", "limit_tokens", "used_cost_usd",
                     "limit_cost_usd", "used_pct", "state"], fmt, title=f"{kind} windows")


def _switch_dict(row: Any) -> dict[str, Any]:
    if row is None:
        return {"active": False, "reason": None, "changed_at": None, "changed_by": None, "period": None}
    return {"active": bool(row.active), "reason": row.reason, "changed_at": row.changed_at.isoformat(),
            "changed_by": row.changed_by, "period": row.period, "data": row.data}


@killswitch_app.command("status")
def ks_status(ctx: typer.Context, fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json")) -> None:
    """Whether the kill switch is on, since when, why and who set it; the day's cost against the thresholds."""
    st = state(ctx)
    settings = st.settings()
    with st.engine().connect() as conn:
        out = _switch_dict(killswitch.kill_switch_state(conn))
        day, cost = budgets.system_cost(conn, settings, clock.now())
    out.update(day=day, system_cost_usd=str(cost),
               thresholds={s: str(a) for s, a in budgets.thresholds(settings)})
    if fmt == Format.json:
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
        return
    if out["active"]:
        console.print(f"kill switch ON since {out['changed_at']} ({out['changed_by']}): {out['reason']}")
    else:
        cleared = f" (last changed {out['changed_at']} by {out['changed_by']})" if out["changed_at"] else ""
        console.print(f"kill switch off{cleared}")
    levels = ", ".join(f"{s} ${a}" for s, a in out["thresholds"].items()) or "none"
    console.print(f"system cost {day}: ${fixed(cost, 4)} (thresholds: {levels})")


@killswitch_app.command("clear")
def ks_clear(ctx: typer.Context) -> None:
    """Turn the kill switch off. The budgets job will not turn it on again for the rest of the local day."""
    st = state(ctx)
    settings = st.settings()
    now = clock.now()
    with st.engine().begin() as conn:
        if not killswitch.clear(conn, settings, now):
            fail("the kill switch is not on (see `tokentally killswitch status`)")
        day, cost = budgets.system_cost(conn, settings, now)
    typer.echo(f"kill switch cleared; calls are allowed again. It is not set again automatically for {day} "
               f"(system cost so far ${fixed(cost, 2)}); from tomorrow the emergency threshold applies again.")


@killswitch_app.command("on")
def ks_on(ctx: typer.Context, reason: str = typer.Option(..., "--reason", help="Why (shown to every caller)")) -> None:
    """Turn the kill switch on by hand: the gate refuses every call until `killswitch clear`."""
    st = state(ctx)
    settings = st.settings()
    now = clock.now()
    with st.engine().begin() as conn:
        by = f"operator:{killswitch.user_name()}"
        if not killswitch.trip(conn, now, period=now.astimezone(settings.tz).date().isoformat(), by=by, reason=reason):
            fail("the kill switch is already on (see `tokentally killswitch status`)")
    typer.echo("kill switch on: the gate refuses every call until `tokentally killswitch clear`")
