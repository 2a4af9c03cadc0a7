"""rejects list / retry."""

from __future__ import annotations

from typing import Optional

import typer

from worker.ingest import rejects as rejects_mod
from cli.output import Format, ObjectFormat, emit_object, emit_rows
from cli.state import state

rejects_app = typer.Typer(no_args_is_help=True, help="Quarantined records.")


@rejects_app.command("list")
def list_(
    ctx: typer.Context,
    source: Optional[str] = typer.Option(None, "--source", help="Only this source"),
    all_: bool = typer.Option(False, "--all", help="Include records a retry has since accepted"),
    limit: int = typer.Option(1000, "--limit", help="At most this many"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """Show quarantined records, one per rejected line: source, position, reason and the raw text.

    With --format json, raw is the text when it is UTF-8; otherwise it is base64 and raw_base64 is true."""
    rows = rejects_mod.list_rejects(state(ctx).engine(), source, all_, limit)
    for row in rows:
        raw = row["raw"]
        row.update(rejects_mod.raw_for_json(raw) if fmt is Format.json else {"raw": rejects_mod.shown_raw(raw)})
    emit_rows(rows, ["id", "source", "location", "position", "reason", "status", "raw"], fmt, title="rejects")


@rejects_app.command("retry")
def retry(
    ctx: typer.Context,
    source: Optional[str] = typer.Option(None, "--source", help="Only this source"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Re-ingest open rejects (after fixing a default, a price or upgrading)."""
    st = state(ctx)
    emit_object(rejects_mod.retry(st.settings(), st.engine(), source), fmt, title="rejects retry")
