"""forecast: month-end spend per system, tenant, account and service, from the month so far and the
hour-of-week pattern (``worker.anomalies.forecast``), with the range of the learned weeks."""

from __future__ import annotations

from typing import Optional

import typer

from worker import clock
from worker.anomalies import forecast as fc
from cli.output import Format, ObjectFormat, emit_rows
from cli.state import fail, state

SCOPE_HELP = "system, tenant:ID, account:ID or service:NAME (default: every scope)"


commands = typer.Typer()  # its top-level commands (cli.commands lists them)

def parse_scope(text: str) -> tuple[str, str]:
    """``system`` or ``KIND:ID`` as a scope; exit 2 on anything else."""
    if text == "system":
        return ("system", "")
    kind, sep, value = text.partition(":")
    if not sep or not value or kind not in fc.KINDS or kind == "system":
        fail(f"--scope: expected {SCOPE_HELP.partition(' (')[0]}, got {text!r}", code=2)
    return (kind, value)


@commands.command()
def forecast(
    ctx: typer.Context,
    scope: Optional[str] = typer.Option(None, "--scope", help=SCOPE_HELP),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """This month's spend forecast to its end, with a range (from the last anomalies.history_weeks weeks)."""
    only = parse_scope(scope) if scope else None
    st = state(ctx)
    settings = st.settings()
    now = clock.now()
    with st.engine().connect() as conn:
        found = fc.forecasts(conn, settings.tz, settings.anomalies.history_weeks, now,
                             kinds=(only[0],) if only else fc.KINDS, only=only)
    rows = [f.as_dict() for f in found]
    month = now.astimezone(settings.tz).strftime("%Y-%m")
    emit_rows(rows, ["scope", "scope_id", "so_far_usd", "forecast_usd", "low_usd", "high_usd", "basis"],
              Format.json if fmt == ObjectFormat.json else Format.table,
              title=f"forecast of {month} to its end, as of {now:%Y-%m-%d %H:%M} UTC ({settings.timezone})")
