"""status: what an operator looks at first (worker.status), as tables or JSON."""

from __future__ import annotations

import typer

from worker.status import status as status_report
from cli.output import Format, ObjectFormat, emit_object, emit_rows
from cli.state import state

commands = typer.Typer()  # its top-level commands (cli.commands lists them)


@commands.command()
def status(ctx: typer.Context, fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json")) -> None:
    """Database, data freshness per source, open counts, last run of each job."""
    st = state(ctx)
    report = status_report(st.settings(), st.engine())
    if fmt == Format.json:
        emit_object(report, fmt)
        return
    emit_object({"database": report["database"], "schema_revision": report["schema_revision"],
                 "timezone": report["timezone"],
                 "kill_switch": "ON: " + (report["kill_switch"]["reason"] or "") if report["kill_switch"]["active"]
                 else "off", **report["counts"]}, Format.table, title="status")
    emit_rows(report["sources"], ["source", "kind", "enabled", "silent", "last_ingest_at", "newest_event_at", "events",
                                  "unattributed"],
              Format.table, title=f"sources (unattributed: events without an account since {report['unattributed_since'][:10]})")
    emit_rows(report["jobs"], ["job", "last_status", "last_started_at", "last_trigger"], Format.table, title="jobs")
