"""usage and reprice: the ledger's figures for a range of local dates, read or priced again.

In JSON and CSV ``cost_usd`` is the cost of the priced usage and ``unpriced_requests`` sits
beside it; the table never shows unpriced usage as 0: its cost cell reads ``unpriced`` when no
request of the row has a price, ``<cost> + N unpriced`` when some have none.
"""

from __future__ import annotations

from typing import Any

import typer

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
) -> None:
    """Usage totals for a range of local dates, grouped."""
    first, last = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    in_order(first, last)
    if by not in usage_mod.GROUPS:
        fail(f"--by must be one of {', '.join(usage_mod.GROUPS)}", code=2)
    st = state(ctx)
    settings = st.settings()
    with st.engine().connect() as conn:
        rows = usage_mod.usage(conn, settings.tz, first, last, by)
    key = usage_mod.GROUPS[by]
    shown = [r.as_dict(key) for r in rows]
    if fmt == Format.table:
        shown = [{**row, "cost_usd": cost_cell(row)} for row in shown]
    emit_rows(shown, [key, *usage_mod.FIELDS], fmt,
              title=f"usage {first}..{last} by {by} ({settings.timezone})")


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
