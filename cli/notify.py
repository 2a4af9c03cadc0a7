"""notify test; notifications list / retry."""

from __future__ import annotations

import socket
from typing import Optional

import typer
from sqlalchemy import select

from worker import clock, redact
from reports import outbox
from reports.channels import ChannelError, open_channel
from reports.messages import make_message
from worker.models import Notification
from cli.output import Format, ObjectFormat, emit_object, emit_rows
from cli.state import fail, state

notify_app = typer.Typer(no_args_is_help=True, help="Try a delivery channel.")
notifications_app = typer.Typer(no_args_is_help=True, help="The outbox: messages sent, pending and failed.")


@notify_app.command("test")
def test(
    ctx: typer.Context,
    channel: str = typer.Argument(..., help="email, slack, webhook or file (as configured in [channels.*])"),
    target: str = typer.Argument("", help="An address, a Slack channel, a URL or a file subdirectory"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Send a test message now, straight through the channel (not the outbox), and say what happened."""
    settings = state(ctx).settings()
    if channel not in settings.channels:
        fail(f"channel {channel!r} is not configured (configured: {', '.join(sorted(settings.channels))}); "
             f"add a [channels.{channel}] table", code=2)
    now = clock.now()
    shown = redact.target(target)
    message = make_message("test", {"sent_at": now, "target": shown, "channel": channel,
                                    "hostname": socket.gethostname(), "timezone": settings.timezone},
                           kind="test", key=f"test-{now:%Y%m%dT%H%M%S%f}")
    try:
        external_id = open_channel(settings.channels[channel]).send(target, message)
    except ChannelError as exc:
        fail(f"{channel} {shown}: {redact.scrub(str(exc), target)} ({'permanent' if exc.permanent else 'temporary'} error)")
    emit_object({"channel": channel, "target": shown, "sent": True, "id": external_id}, fmt, title="notify test")


@notifications_app.command("list")
def list_(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status", help="pending, sending, sent or failed"),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, csv or json"),
) -> None:
    """Notifications, newest first: channel, target (passwords, path tokens and query values hidden),
    subject, status, attempts, last error."""
    if status is not None and status not in ("pending", "sending", "sent", "failed"):
        fail(f"--status: one of pending, sending, sent, failed; got {status!r}", code=2)
    query = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if status:
        query = query.where(Notification.status == status)
    with state(ctx).engine().connect() as conn:
        rows = [{"id": n.id, "kind": n.kind, "channel": n.channel, "target": redact.target(n.target), "subject": n.subject,
                 "status": n.status, "attempts": n.attempts, "created_at": n.created_at.isoformat(),
                 "next_attempt_at": n.next_attempt_at.isoformat(),
                 "sent_at": n.sent_at.isoformat() if n.sent_at else None, "external_id": n.external_id,
                 "last_error": n.last_error} for n in conn.execute(query).all()]
    emit_rows(rows, ["id", "kind", "channel", "target", "subject", "status", "attempts", "sent_at", "last_error"],
              fmt, title="notifications")


@notifications_app.command("retry")
def retry(
    ctx: typer.Context,
    notification_id: int = typer.Argument(..., help="Notification id (see `notifications list`)"),
    fmt: ObjectFormat = typer.Option(ObjectFormat.table, "--format", help="table or json"),
) -> None:
    """Queue a failed notification again and try it now."""
    st = state(ctx)
    engine = st.engine()
    if not outbox.retry(engine, notification_id):
        fail(f"notification {notification_id} is not failed or pending (see `tokentally notifications list`)")
    stats = outbox.deliver_pending(engine, st.settings(), only=notification_id)
    with engine.connect() as conn:
        row = conn.execute(select(Notification).where(Notification.id == notification_id)).one()
    emit_object({"id": row.id, "status": row.status, "attempts": row.attempts, "last_error": row.last_error,
                 **stats.as_dict()}, fmt, title="notifications retry")
    if row.status != "sent":
        raise typer.Exit(1)
