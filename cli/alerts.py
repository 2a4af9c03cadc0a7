"""alerts list / ack / resolve."""

from __future__ import annotations

import typer
from sqlalchemy import select

from worker.alerts import state as alerts_mod
from worker.models import Alert
from cli.output import Format, emit_rows
from cli.state import fail, state

alerts_app = typer.Typer(no_args_is_help=True, help="Alerts: one per condition and period.")


@alerts_app.command("list")
def list_(
    ctx: typer.Context,
    open_only: bool = typer.Option(False, "--open", help="Only open and acknowledged alerts"),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """Alerts, newest first: kind, scope, period, severity, state, when seen."""
    query = select(Alert).order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit)
    if open_only:
        query = query.where(Alert.state != "resolved")
    with state(ctx).engine().connect() as conn:
        rows = [{"id": a.id, "kind": a.kind, "scope": a.scope, "scope_id": a.scope_id, "period": a.period,
                 "severity": a.severity, "state": a.state, "first_seen": a.first_seen.isoformat(),
                 "last_seen": a.last_seen.isoformat(), "times_seen": a.times_seen, "payload": a.payload}
                for a in conn.execute(query).all()]
    emit_rows(rows, ["id", "kind", "scope", "scope_id", "period", "severity", "state", "last_seen", "times_seen"],
              fmt, title="alerts")


@alerts_app.command("ack")
def ack(ctx: typer.Context, alert_id: int = typer.Argument(..., help="Alert id (see `alerts list`)")) -> None:
    """Acknowledge an open alert: no more reminders (an escalation still notifies)."""
    with state(ctx).engine().begin() as conn:
        if not alerts_mod.acknowledge_alert(conn, alert_id):
            fail(f"alert {alert_id} is not open (see `tokentally alerts list`)")
    typer.echo(f"alert {alert_id} acknowledged")


@alerts_app.command("resolve")
def resolve(ctx: typer.Context, alert_id: int = typer.Argument(..., help="Alert id (see `alerts list`)")) -> None:
    """Close an alert; a resolved message goes out if it had notified anyone (alerts.send_resolved)."""
    st = state(ctx)
    with st.engine().begin() as conn:
        if not alerts_mod.resolve_alert(conn, st.settings(), alert_id):
            fail(f"alert {alert_id} is not open or acknowledged (see `tokentally alerts list`)")
    typer.echo(f"alert {alert_id} resolved")
