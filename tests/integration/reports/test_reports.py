"""Cost reports on SQLite and PostgreSQL: figures equal the summaries, the archive and its
verification, catch-up of a missed 09:00 report, tenant isolation, delivery through a real
SMTP server and a local Slack stand-in. Time is frozen through ``worker.clock.now()``."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from freezegun import freeze_time
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, select

from tests.helpers import PRICES, ingest, record, utc
from reports import outbox, figures as report
from reports.periods import period_containing
from worker.summaries import usage
from worker.models import Report
from worker.registry import registry
from worker.scheduler import Daemon, run_job
from worker.settings import Settings, load

BERLIN = ZoneInfo("Europe/Berlin")
TENANTS = ("t-alpha", "t-beta", "t-gamma")
MODELS = ("house-llm", "house-mini")


def config(tmp_path: Path, extra: str = "", reports: str = "") -> str:
    return (f'timezone = "Europe/Berlin"\n[reports]\narchive_dir = "{tmp_path / "archive"}"\n{reports}\n'
            f'[channels.file]\ndir = "{tmp_path / "outbox"}"\n{extra}\n' + PRICES)


def month_of_usage(settings: Settings, engine: Engine, tmp_path: Path, month: date = date(2026, 10, 1),
                   n: int = 400, seed: int = 7) -> list[dict[str, Any]]:
    """n calls spread over a local month: 3 tenants, 12 accounts, 2 models, 3 services, a few
    errors, reported costs on some, and some unattributed calls."""
    rng = random.Random(seed)
    start = datetime.combine(month, time(0), tzinfo=BERLIN)
    days = (date(month.year + month.month // 12, month.month % 12 + 1, 1) - month).days
    records = []
    for i in range(n):
        at = start + timedelta(seconds=rng.randrange(days * 86400))
        tenant = TENANTS[i % 3]
        account = None if i % 37 == 0 else f"{tenant}-u{rng.randrange(4)}"
        records.append(record(at, model=rng.choice(MODELS), account=account, tenant=tenant,
                              service=rng.choice(["chat", "summarise", "draft"]),
                              status="error" if i % 29 == 0 else "success", prompt=rng.randint(100, 5000),
                              completion=rng.randint(10, 900),
                              cost=f"{rng.randint(1, 900) / 10000}" if i % 5 == 0 else None))
    ingest(settings, engine, tmp_path, records)
    return records


def run(settings: Settings, engine: Engine, job: str, **options: Any) -> dict[str, Any]:
    result = run_job(registry.get(job), settings, engine, **options)
    assert result is not None and result.status == "success", result.error if result else None
    return result.stats


def reports(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(Report).order_by(Report.id)))


# --------------------------------------------------------------------------- figures


@freeze_time("2026-11-05T08:00:00Z")
def test_a_monthly_report_equals_the_summaries(make_settings, engine, tmp_path) -> None:
    settings = make_settings(config(tmp_path))
    month_of_usage(settings, engine, tmp_path)
    run(settings, engine, "summaries_nightly", date_from=date(2026, 9, 1), date_to=date(2026, 11, 5))
    period = period_containing("monthly", date(2026, 10, 15))
    with engine.connect() as conn:
        figures = report.build(conn, settings, period)
        by_day = usage.usage(conn, BERLIN, period.first, period.last, "day")
        by_model = {r.key: r for r in usage.usage(conn, BERLIN, period.first, period.last, "model")}
        by_tenant = {r.key: r for r in usage.usage(conn, BERLIN, period.first, period.last, "tenant")}
        ledger = report.ledger_totals(conn, settings, period, None)
    totals = figures["totals"]
    assert totals["requests"] == sum(r.requests for r in by_day) == 400
    assert Decimal(totals["cost_usd"]) == sum(r.cost_usd for r in by_day)
    assert totals["total_tokens"] == sum(r.total_tokens for r in by_day)
    assert totals == ledger["totals"] and figures["build"]["ledger_rows"] == 400
    assert {r["key"]: (r["requests"], Decimal(r["cost_usd"])) for r in figures["by_model"]} == {
        k: (v.requests, v.cost_usd) for k, v in by_model.items()}
    assert {r["key"]: r["requests"] for r in figures["by_tenant"]} == {k: v.requests for k, v in by_tenant.items()}
    assert sum(Decimal(r["share"]) for r in figures["by_model"]) == pytest.approx(Decimal(1), abs=Decimal("0.001"))
    assert figures["status"] == "final"  # October ended more than 48 hours ago
    assert figures["quality"]["unattributed_requests"] == len([i for i in range(400) if i % 37 == 0])
    assert figures["previous_totals"]["requests"] == 0 and figures["change"]["cost_usd"] is None
    in_period = [d for d in figures["daily_cost"] if d["in_period"]]
    assert len(figures["daily_cost"]) == 30 and len(in_period) == 30  # the last 30 days of October
    assert figures["top_accounts"][0]["cost_usd"] == max(r["cost_usd"] for r in figures["top_accounts"])


@freeze_time("2026-11-05T08:00:00Z")
def test_tenant_reports_never_contain_another_tenants_rows(make_settings, engine, tmp_path) -> None:
    settings = make_settings(config(tmp_path, '[reports.tenants]\n"t-alpha" = ["file:alpha"]\n'
                                              '"t-beta" = ["file:beta"]\n'))
    records = month_of_usage(settings, engine, tmp_path)
    stats = run(settings, engine, "monthly_report")
    assert [r["tenant"] for r in stats["reports"]] == [None, "t-alpha", "t-beta"]
    rows = {r.tenant: r for r in reports(engine)}
    for tenant in ("t-alpha", "t-beta"):
        directory = Path(rows[tenant].path)
        figures = orjson.loads((directory / "report.json").read_bytes())
        mine = [r for r in records if r.get("tenant_id") == tenant]
        assert figures["totals"]["requests"] == len(mine)
        others = {r["user_id"] for r in records if r.get("tenant_id") != tenant and r["user_id"]}
        for name in ("report.json", "report.csv", "report.html"):
            text = (directory / name).read_text(encoding="utf-8")
            assert not [a for a in others if a in text], (tenant, name)
            assert not [t for t in TENANTS if t != tenant and t in text], (tenant, name)
        assert figures["by_tenant"] == []
    assert outbox.deliver_pending(engine, settings).sent == 3
    sent = sorted(p.relative_to(tmp_path / "outbox").parent.as_posix() for p in (tmp_path / "outbox").rglob("*.eml"))
    assert sent == [".", "alpha", "beta"]  # the whole report by the default route; each tenant's to its contacts


# --------------------------------------------------------------------------- archive and verify


def test_the_archive_keeps_every_version_and_verify_finds_changes(make_settings, engine, tmp_path, cli) -> None:
    cfg = tmp_path / "cli.toml"
    cfg.write_text(config(tmp_path), encoding="utf-8")
    settings = make_settings(config(tmp_path))
    with freeze_time("2026-11-23T08:00:00Z"):
        ingest(settings, engine, tmp_path, [record(utc("2026-11-22T10:00:00Z"), account="a1", cost="0.25"),
                                            record(utc("2026-11-22T11:00:00Z"), account="a2", cost="0.50")])
        first = orjson.loads(cli("report", "daily", "--format", "json", config=cfg).stdout)
        second = orjson.loads(cli("report", "daily", "--date", "2026-11-22", "--format", "json", config=cfg).stdout)
    assert (first["period"], first["version"], second["version"]) == ("2026-11-22", 1, 2)
    assert first["cost_usd"] == "0.7500000000" and first["status"] == "provisional"
    directory = Path(first["path"])
    assert sorted(p.name for p in directory.iterdir()) == ["chart.png", "manifest.json", "report.csv",
                                                           "report.html", "report.json"]
    manifest = orjson.loads((directory / "manifest.json").read_bytes())
    assert set(manifest["files"]) == {"report.json", "report.csv", "report.html", "chart.png"}
    assert manifest["ledger_rows"] == 2 and manifest["totals"]["cost_usd"] == "0.7500000000"
    listed = orjson.loads(cli("reports", "list", "--format", "json", config=cfg).stdout)
    assert [(r["period"], r["version"]) for r in listed] == [("2026-11-22", 2), ("2026-11-22", 1)]
    assert cli("reports", "verify", "--all", config=cfg).exit_code == 0

    html = directory / "report.html"  # one changed byte
    data = bytearray(html.read_bytes())
    data[100] ^= 1
    html.write_bytes(bytes(data))
    result = cli("reports", "verify", str(first["report"]), config=cfg)
    assert result.exit_code == 2 and "files altered (report.html)" in result.stdout

    with freeze_time("2026-11-23T12:00:00Z"):  # late data for the day: the ledger changed since
        ingest(settings, engine, tmp_path, [record(utc("2026-11-22T12:00:00Z"), account="a1", cost="0.10")])
    result = cli("reports", "verify", str(second["report"]), "--format", "json", config=cfg)
    assert result.exit_code == 1
    [checked] = orjson.loads(result.stdout)
    assert checked["verdict"] == "data changed since"
    assert checked["changed"]["cost_usd"] == ["0.7500000000", "0.8500000000"]
    assert checked["changed"]["ledger_rows"] == [2, 3]
    shown = orjson.loads(cli("reports", "show", str(second["report"]), "--format", "json", config=cfg).stdout)
    assert shown["report"]["build"]["version"] == 2


def test_a_missed_nine_oclock_report_is_caught_up_once(make_settings, engine, tmp_path) -> None:
    # (frozen time is kept more than 32 days clear of a DST change: freezegun's datetime has no
    # fold, and APScheduler's cron search cannot step over a repeated hour under it)
    settings = make_settings(config(tmp_path))
    with freeze_time("2026-12-02T07:00:00Z"):
        ingest(settings, engine, tmp_path, [record(utc("2026-12-01T10:00:00Z"), account="a1", cost="0.25")])
    with freeze_time("2026-12-02T10:30:00Z"):  # 11:30 in Berlin: 09:00 passed while no daemon ran
        daemon = Daemon(settings, engine)
        daemon.setup()
        missed = dict(daemon.catch_up())
        assert missed["daily_report"] == utc("2026-12-02T08:00:00Z")
        daemon._run_missed("daily_report", missed["daily_report"])
        again = Daemon(settings, engine)  # a restart: nothing to catch up any more
        again.setup()
        assert "daily_report" not in dict(again.catch_up())
    [row] = reports(engine)
    assert (row.kind, row.period, row.trigger, row.sent) == ("daily", "2026-12-01", "catch-up", 1)
    with freeze_time("2026-12-02T10:31:00Z"):  # and a scheduled/catch-up run of the period again sends nothing
        stats = run(settings, engine, "daily_report", trigger="schedule")
    assert stats["reports"][0]["skipped"].startswith("already sent")
    assert len(reports(engine)) == 1


# --------------------------------------------------------------------------- delivery


@freeze_time("2026-11-23T08:00:00Z")
def test_the_report_arrives_by_email_with_the_chart_inline(make_settings, engine, tmp_path, mailbox) -> None:
    box, port = mailbox
    settings = make_settings(config(tmp_path, f'[channels.email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
                                              'sender = "tokentally@example.com"\n'
                                              '[[routes]]\nkinds = ["report.*"]\nto = ["email:admins@example.com"]\n'))
    ingest(settings, engine, tmp_path, [record(utc("2026-11-22T10:00:00Z"), account="a1", cost="1.25")])
    run(settings, engine, "daily_report")
    assert outbox.deliver_pending(engine, settings).sent == 1
    [mail] = box.mails()
    assert "2026-11-22" in mail["Subject"] and "1.25" in mail["Subject"]
    assert "1.25" in mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert 'src="cid:chart"' in html
    images = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"] == "<chart>"
    [row] = reports(engine)
    assert images[0].get_content() == (Path(row.path) / "chart.png").read_bytes()


@freeze_time("2026-11-23T08:00:00Z")
def test_the_report_posts_to_slack(db_url, engine, tmp_path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_json(
        {"ok": True, "ts": "1700000000.000100", "channel": "C1"})
    path = tmp_path / "slack.toml"
    path.write_text(config(tmp_path, f'[channels.slack]\nbase_url = "{httpserver.url_for("/api/")}"\n'
                                     '[[routes]]\nkinds = ["report.*"]\nto = ["slack:#llm-costs"]\n',
                           reports='base_url = "https://reports.example.com"'), encoding="utf-8")
    settings = load(path, env={"TOKENTALLY_DATABASE_URL": db_url, "TOKENTALLY_CHANNELS_SLACK_TOKEN": "xoxb-test"})
    ingest(settings, engine, tmp_path, [record(utc("2026-11-22T10:00:00Z"), account="a1", cost="1.25")])
    run(settings, engine, "daily_report")
    assert outbox.deliver_pending(engine, settings).sent == 1
    [(request, _)] = httpserver.log
    body = request.get_json()
    assert body["channel"] == "#llm-costs" and "1.25" in body["text"]
    assert "https://reports.example.com/daily/2026-11-22/v1/report.html" in orjson.dumps(body["blocks"]).decode()
