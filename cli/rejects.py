"""rejects list / retry."""

from __future__ import annotations

from typing import Any, Optional

import typer

from worker.ingest import rejects as rejects_mod
from cli.output import Format, ObjectFormat, emit_object, emit_stream
from cli.state import state

# the table's fixed columns (characters); reason and raw share the rest of the width
LIST_WIDTHS = {"id": 7, "source": 14, "location": 28, "position": 8, "status": 8}
TABLE_RAW_BYTES = 1024  # of a raw shown in the table (JSON and CSV give it whole)

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

    With --format json, raw is the text when it is UTF-8; otherwise it is base64 and raw_base64 is true.
    Rows are written as they are read; the table shows the first KiB of a longer raw. A record longer
    than ingest.max_record_bytes was kept as its first KiB: its reason gives its length and sha256."""

    def shown(row: dict[str, Any]) -> dict[str, Any]:
        raw = row["raw"]
        if fmt is Format.json:
            row.update(rejects_mod.raw_for_json(raw))
        elif fmt is Format.csv or len(raw) <= TABLE_RAW_BYTES:
            row["raw"] = rejects_mod.shown_raw(raw)
        else:  # a table is for reading: the start of a long raw, and how long it is
            start = rejects_mod.shown_raw(raw[:TABLE_RAW_BYTES])
            row["raw"] = f"{start}… ({len(raw):,} bytes; --format json or csv shows all)"
        return row

    rows = map(shown, rejects_mod.list_rejects(state(ctx).engine(), source, all_, limit))
    emit_stream(rows, ["id", "source", "location", "position", "reason", "status", "raw"], fmt, title="rejects",
                widths=LIST_WIDTHS, right=("id", "position"))


@rejects_app.command("retry")
def retry(
    ctx: typer.Context,
    source: Optional[str] = typer.Option(None, "--source", help="Only this source"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Re-ingest open rejects (after fixing a default, a price or upgrading)."""
    st = state(ctx)
    emit_object(rejects_mod.retry(st.settings(), st.engine(), source), fmt, title="rejects retry")
