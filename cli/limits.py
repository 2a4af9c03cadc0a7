"""limits show / list and killswitch status / clear / on."""

from __future__ import annotations

import sys
from typing import Any

import orjson
import typer

from worker.limits import budgets, killswitch, windows as limits
from worker import clock, gate
from worker.money import fixed
from cli.output import Format, ObjectFormat, console, emit_rows
from cli.state import app, fail, state

limits_app = typer.Typer(no_args_is_help=True, help="Rate-limit and budget windows and what the gate decides.")
app.add_typer(limits_app, name="limits")
killswitch_app = typer.Typer(no_args_is_help=True,
                             help="The system-wide kill switch: on, the gate refuses every call.")
app.add_typer(killswitch_app, name="killswitch")

WINDOW_COLUMNS = ["kind", "period", "reset_at", "requests", "tokens", "cost_usd", "state", "blocked_until"]


def _used(used: Any, limit: Any, money: bool = False) -> str:
    shown = fixed(used, 4) if money else f"{used:,}"
    if limit is None:
        return f"{shown} (no limit)"
    return f"{shown} / {fixed(limit, 4)}" if money else f"{shown} / {limit:,}"


@limits_app.command("show")
def show(
    ctx: typer.Context,
    account_id: str = typer.Argument(..., help="The account (as in the ledger; '(unattributed)' too)"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """The account's tier, its windows in force (used against limits, reset times) and the gate's decision."""
    st = state(ctx)
    settings = st.settings()
    now = clock.now()
    with st.engine().connect() as conn:
        tier = limits.tier_of(conn, settings, account_id)
        views = gate.windows(conn, settings, account_id, now, tier)
        decision = gate.decide(conn, settings, account_id, now)
    local = settings.tz
    if fmt == Format.json:
        out = {"account_id": account_id, "tier": tier.name if tier else None,
               "action": tier.action if tier else None, "decision": decision.as_dict(),
               "windows": [v.as_dict() for v in views]}
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
        return
    rows = [{"kind": v.kind, "period": v.period, "reset_at": v.reset_at.astimezone(local).strftime("%Y-%m-%d %H:%M %Z"),
             "requests": _used(v.used_requests, v.limit_requests), "tokens": _used(v.used_tokens, v.limit_tokens),
             "cost_usd": _used(v.used_cost_usd, v.limit_cost_usd, money=True), "state": v.state,
             "blocked_until": v.blocked_until.astimezone(local).strftime("%Y-%m-%d %H:%M %Z") if v.blocked_until
             else None} for v in views]
    tier_text = f"{tier.name} (action {tier.action})" if tier else "none (not limited)"
    emit_rows(rows, WINDOW_COLUMNS, Format.table, title=f"{account_id}: tier {tier_text}")
    verdict = "can call" if decision.can_call else "CANNOT call"
    until = f", until {decision.reset_at.astimezone(local):%Y-%m-%d %H:%M %Z}" if decision.reset_at and \
        not decision.can_call else ""
    console.print(f"gate: {verdict} ({decision.reason}{until}): {decision.detail}")


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
