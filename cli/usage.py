"""usage and reprice: the ledger's figures for a range of local dates, read or priced again.

In JSON and CSV ``cost_usd`` is the cost of the priced usage and ``unpriced_requests`` sits
beside it; the table never shows unpriced usage as 0: its cost cell reads ``unpriced`` when no
request of the row has a price, ``<cost> + N unpriced`` when some have none. ``usage --forecast``
(``--by month``, ``tenant``, ``account`` or ``service``, a range that overlaps the current month)
adds the current month's end forecast to each row (``worker.anomalies.forecast``): the month's row
gets the system's, a tenant, account or service row its own; a row without one leaves them empty.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import typer

from worker import clock
from worker.anomalies import forecast as fc
from worker.ledger.reprice import reprice as reprice_range
from worker.summaries import usage as usage_mod
from cli.options import in_order, parse_date
from cli.output import Format, ObjectFormat, emit_object, emit_rows
from cli.state import fail, state

commands = typer.Typer()  # its top-level commands (cli.commands lists them)


@commands.command()
def usage(
    ctx: typer.Context,
    date_from: str = typer.Option(..., "--from", help="First local date (inclusive), e.g. 2026-10-01"),
    date_to: str = typer.Option(..., "--to", help="Last local date (inclusive)"),
    by: str = typer.Option("day", "--by", help="day, month, model, provider, service, account, tenant, project or api_key "
                               "(project and api_key are read from the ledger)"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
    forecast: bool = typer.Option(False, "--forecast", help="Add the current month's end forecast and its range "
                                  "(--by month, tenant, account or service; the range must overlap this month)"),
) -> None:
    """Usage totals for a range of local dates, grouped."""
    first, last = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    in_order(first, last)
    if by not in usage_mod.GROUPS:
        fail(f"--by must be one of {', '.join(usage_mod.GROUPS)}", code=2)
    if forecast and by not in fc.USAGE_GROUPS:
        fail(f"--forecast needs --by {', '.join(fc.USAGE_GROUPS)}", code=2)
    st = state(ctx)
    settings = st.settings()
    now = clock.now()
    today = now.astimezone(settings.tz).date()
    if forecast and not (first < clock.next_month(today) and today.replace(day=1) <= last):
        fail(f"--forecast: {first}..{last} does not overlap the current month ({today:%Y-%m})", code=2)
    with st.engine().connect() as conn:
        rows = usage_mod.usage(conn, settings.tz, first, last, by)
        ahead = fc.for_usage(conn, settings.tz, settings.anomalies.history_weeks, now, by) if forecast else {}
    key = usage_mod.GROUPS[by]
    shown = [r.as_dict(key) for r in rows]
    if fmt == Format.table:
        shown = [{**row, "cost_usd": cost_cell(row)} for row in shown]
    columns = [key, *usage_mod.FIELDS]
    if forecast:
        shown = [{**row, **forecast_cells(ahead.get(row[key]), today)} for row in shown]
        columns += FORECAST_COLUMNS
    emit_rows(shown, columns, fmt, title=f"usage {first}..{last} by {by} ({settings.timezone})"
              + (f", forecast of {today:%Y-%m} as of {now:%Y-%m-%d %H:%M} UTC" if forecast else ""))


FORECAST_COLUMNS = ["forecast_month", "forecast_usd", "forecast_low_usd", "forecast_high_usd"]


def forecast_cells(f: fc.Forecast | None, today: date) -> dict[str, Any]:
    """A usage row's forecast columns (None when the row's scope has no forecast this month)."""
    if f is None:
        return {"forecast_month": today.strftime("%Y-%m"), "forecast_usd": None, "forecast_low_usd": None,
                "forecast_high_usd": None}
    d = f.as_dict()
    return {"forecast_month": d["month"], "forecast_usd": d["forecast_usd"], "forecast_low_usd": d["low_usd"],
            "forecast_high_usd": d["high_usd"]}


def cost_cell(row: dict[str, Any]) -> str:
    """A usage row's cost as the table shows it: ``unpriced``, ``0.5000000000 + 3 unpriced`` or the cost."""
    unpriced = row["unpriced_requests"]
    if unpriced and unpriced >= row["requests"]:
        return "unpriced"
    return f"{row['cost_usd']} + {unpriced} unpriced" if unpriced else row["cost_usd"]


@commands.command()
def reprice(
    ctx: typer.Context,
    date_from: str = typer.Option(..., "--from", help="First local date (inclusive)"),
    date_to: str = typer.Option(..., "--to", help="Last local date (inclusive)"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Recompute costs of the events in a range after pricing settings changed."""
    first, last = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    st = state(ctx)
    result = reprice_range(st.settings(), st.engine(), first, last)
    emit_object(result, fmt, title="reprice")
