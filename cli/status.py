"""status: what an operator looks at first (worker.status), as tables or JSON."""

from __future__ import annotations

import typer
from rich.text import Text

from worker.statefile import read_state
from worker.status import status as status_report
from cli.output import Format, ObjectFormat, emit_object, emit_rows, err_console
from cli.state import state

commands = typer.Typer()  # its top-level commands (cli.commands lists them)


@commands.command()
def status(ctx: typer.Context, fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json")) -> None:
    """Database, data freshness per source, open counts, last run of each job, database outages."""
    st = state(ctx)
    held = read_state(st.settings().daemon.state_file) or {}
    if (outage := held.get("outage")) and not outage.get("ended_at"):  # said first: the database may not answer
        err_console.print(Text(f"the daemon's state file says the database has been unreachable since "
                               f"{outage.get('started_at')} ({outage.get('error')}); "
                               f"{len(held.get('pending') or [])} run record(s) wait to be written"),
                          highlight=False, soft_wrap=True)
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
    emit_rows(report["jobs"], ["job", "last_status", "last_started_at", "last_trigger", "last_success_at",
                               "last_error"], Format.table, title="jobs")
    if report["outages"]:
        emit_rows(report["outages"], ["started_at", "ended_at", "seconds", "alerted_at", "skipped_runs", "daemon"],
                  Format.table, title="database outages (latest first)")
    if report["warnings"]:
        emit_rows([{"warning": w} for w in report["warnings"]], ["warning"], Format.table, title="warnings")
