"""ingest: read files into the ledger once, now, and print what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import DownloadColumn, TransferSpeedColumn

from worker.ingest.files import expand
from worker.ingest.ingestor import IngestError, Ingestor
from worker.settings import SettingsError
from cli.output import ObjectFormat, emit_object
from cli.progress import with_progress
from cli.state import fail, state

commands = typer.Typer()  # its top-level commands (cli.commands lists them)


@commands.command()
def ingest(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Files (.jsonl, .csv, optionally .gz) or directories"),
    source: Optional[str] = typer.Option(None, "--source", help="Configured source whose defaults apply"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Ingest files once and print what happened."""
    st = state(ctx)
    settings = st.settings()
    src = None
    if source:
        try:
            src = settings.source(source)
        except SettingsError as exc:
            fail(str(exc), code=2)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        fail(f"no such file or directory: {', '.join(missing)}", code=2)
    ingestor = Ingestor(settings, st.engine())
    try:
        stats = with_progress(fmt, "ingesting", lambda: sum(p.stat().st_size for p in expand(paths)),
                              lambda advance: ingestor.ingest_paths(paths, src, progress=advance),
                              DownloadColumn(), TransferSpeedColumn())
    except IngestError as exc:
        fail(str(exc))
    result = stats.as_dict()
    if stats.errors:
        result["errors"] = stats.errors
    if stats.warnings:
        result["warnings"] = stats.warnings
    emit_object(result, fmt, title="ingest")
    if stats.errors:
        fail(f"{len(stats.errors)} file(s) or director(ies) could not be read: " + "; ".join(stats.errors))
