"""A period's report is sent once: later manual runs archive a new version and send it only
with --resend; ``report --send`` queues for the notify job and says when, ``--wait`` sends now.
On SQLite and PostgreSQL, through the file channel; time frozen through ``worker.clock.now()``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from freezegun import freeze_time
from sqlalchemy import Engine, func, select

from tests.helpers import PRICES, ingest, record, utc
from worker.models import Notification, Report
from worker.registry import registry
from worker.scheduler import run_job


def config(tmp_path: Path) -> str:
    return (f'timezone = "Europe/Berlin"\n[reports]\narchive_dir = "{tmp_path / "archive"}"\n'
            f'[channels.file]\ndir = "{tmp_path / "outbox"}"\n' + PRICES)


def daily_report(settings: Any, engine: Engine, **options: Any) -> dict[str, Any]:
    result = run_job(registry.get("daily_report"), settings, engine, **options)
    assert result is not None and result.status == "success", result.error if result else None
    return result.stats["reports"][0]


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


@freeze_time("2026-11-23T08:00:00Z")
def test_a_manual_run_of_a_period_already_sent_archives_a_new_version_but_sends_it_only_with_resend(
        make_settings, engine, tmp_path, cli) -> None:
    settings = make_settings(config(tmp_path))
    ingest(settings, engine, tmp_path, [record(utc("2026-11-22T10:00:00Z"), account="a1", cost="0.25")])

    first = daily_report(settings, engine)
    second = daily_report(settings, engine)
    third = daily_report(settings, engine)

    assert (first["version"], first["messages"]) == (1, 1)
    assert [(r["version"], r["messages"]) for r in (second, third)] == [(2, 0), (3, 0)]
    assert second["not_sent"] == "already sent (report 1); --resend sends it again"
    assert count(engine, Notification) == 1  # finance got one message, not three

    resent = daily_report(settings, engine, resend=True)
    assert (resent["version"], resent["messages"], resent["resent"]) == (4, 1, "sent again (first sent as report 1)")
    assert count(engine, Notification) == 2

    cfg = tmp_path / "cli.toml"
    cfg.write_text(config(tmp_path), encoding="utf-8")
    out = orjson.loads(cli("jobs", "run", "daily_report", "--format", "json", config=cfg).stdout)
    assert out["reports"][0]["not_sent"].startswith("already sent (report 1)")
    refused = cli("jobs", "run", "summaries", "--resend", config=cfg)
    assert refused.exit_code == 2 and "does not take --resend" in refused.output


@freeze_time("2026-11-23T08:00:00Z")
def test_report_send_says_it_is_queued_for_the_notify_job_and_wait_sends_it_now(
        make_settings, engine, tmp_path, cli) -> None:
    settings = make_settings(config(tmp_path))
    ingest(settings, engine, tmp_path, [record(utc("2026-11-22T10:00:00Z"), account="a1", cost="0.25")])
    cfg = tmp_path / "cli.toml"
    cfg.write_text(config(tmp_path), encoding="utf-8")

    def report(*args: str) -> dict[str, Any]:
        result = cli("report", "daily", "--format", "json", *args, config=cfg)
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)

    queued = report("--send")
    assert queued["messages"] == 1
    assert queued["delivery"].startswith("queued; the notify job sends it at 2026-11-23 09:0")
    assert queued["delivery"].endswith("CET if the daemon runs (--wait sends it now)")
    assert not list((tmp_path / "outbox").rglob("*.eml"))  # nothing delivered yet

    again = report("--send")
    assert (again["version"], again["messages"]) == (2, 0)
    assert again["delivery"] == "not sent: this period was already sent (report 1); --resend sends it again"

    now = report("--send", "--resend", "--wait")
    assert now["delivery"] == "sent now: 1 of 1 (sent again: first sent as report 1)"
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 1  # v3 only; v1 waits for the notify job
    with engine.connect() as conn:
        assert conn.execute(select(Report.version, Report.sent).order_by(Report.version)).all() == [
            (1, 1), (2, 0), (3, 1)]
    assert cli("report", "daily", "--wait", config=cfg).exit_code == 2
