"""summaries rebuild / verify: the daily and monthly summaries recomputed from the ledger, or compared with it.

Both take the same span: ``--from``/``--to``, each defaulting to the ledger's first or last local day;
an empty ledger is no span (nothing rebuilt, nothing differs).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Optional

import typer
from rich.progress import MofNCompleteColumn

from worker.summaries import recompute as summaries_mod, verify as summary_verify
from cli.options import in_order, parse_date
from cli.output import Format, ObjectFormat, TableOrJson, console, emit_object, emit_rows
from cli.progress import with_progress
from cli.state import state

summaries_app = typer.Typer(no_args_is_help=True, help="Daily and monthly summaries.")

FromDate = Annotated[Optional[str], typer.Option("--from", help="First local date (default: the ledger's first)")]
ToDate = Annotated[Optional[str], typer.Option("--to", help="Last local date (default: the ledger's last)")]


def _range(ctx: typer.Context, date_from: str | None, date_to: str | None) -> tuple[date, date] | None:
    """The span asked for, the ledger's days filling what was not; None when the ledger is empty."""
    st = state(ctx)
    first = parse_date(date_from or None, "--from")
    last = parse_date(date_to or None, "--to")
    if first is None or last is None:
        span = summaries_mod.ledger_day_range(st.engine(), st.settings().tz)
        if span is None:
            return None
        first, last = first or span[0], last or span[1]
    in_order(first, last)
    return first, last


@summaries_app.command("rebuild")
def rebuild(ctx: typer.Context, date_from: FromDate = None, date_to: ToDate = None,
            fmt: TableOrJson = ObjectFormat.table) -> None:
    """Recompute the summaries of every day in the range from the ledger."""
    span = _range(ctx, date_from, date_to)
    if span is None:
        emit_object({"days": 0, "months": 0, "corrections": 0}, fmt, title="summaries rebuild")
        return
    st = state(ctx)
    first, last = span
    result = with_progress(fmt, "rebuilding", lambda: (last - first).days + 1,
                           lambda advance: summaries_mod.rebuild(st.engine(), st.settings(), first, last,
                                                                 progress=advance),
                           MofNCompleteColumn())
    emit_object({"from": first.isoformat(), "to": last.isoformat(), **result.as_dict()}, fmt,
                title="summaries rebuild")


@summaries_app.command("verify")
def verify(ctx: typer.Context, date_from: FromDate = None, date_to: ToDate = None,
           fmt: TableOrJson = ObjectFormat.table) -> None:
    """Recompute from the ledger and compare with the stored summaries; exit 1 when they differ."""
    span = _range(ctx, date_from, date_to)
    st = state(ctx)
    diffs = summary_verify.verify(st.engine(), st.settings(), *span) if span else []
    if fmt == Format.json:
        emit_object({"differences": diffs, "ok": not diffs}, fmt)
    elif diffs:
        emit_rows(diffs, ["day", "key", "ledger", "summary"], fmt, title="summaries differ from the ledger")
    else:
        console.print("summaries match the ledger")
    if diffs:
        raise typer.Exit(1)
