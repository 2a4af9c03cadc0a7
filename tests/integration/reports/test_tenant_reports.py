"""A tenant's report is that tenant's alone, wherever its id leads: on SQLite and PostgreSQL.

- accounts that move between tenants: each tenant's report shows its own share under its own
  name, never another tenant's; no organisation-wide counts (rejects, integrity alerts) and no
  source names or ingest times;
- tenant ids as archive folders: ``..``, ``.``, ``a/b`` vs ``a_b``, ``東京`` vs ``大阪`` each get a
  folder of their own inside ``tenants/``, and verify still reads them (a mathtext-looking id
  ``$\\notacommand{$`` in the chart title is text too);
- a non-ASCII tenant's report reaches a webhook (its delivery id percent-encoded in the header).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import orjson
from freezegun import freeze_time
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from reports import outbox
from reports.archive import archive, verify
from reports.messages import make_message
from reports.periods import period_containing
from reports.send import send
from tests.helpers import PRICES, record, utc
from worker.alerts import state as alerts
from worker.models import Notification, Report
from worker.registry import registry
from worker.scheduler import run_job

SOURCE = "billing-inbox-7f"  # an organisation's source name: no tenant's report may show it
DAY = date(2026, 11, 22)


def settings_text(tmp_path: Path, extra: str = "") -> str:
    return (f'timezone = "Europe/Berlin"\n[reports]\narchive_dir = "{tmp_path / "archive"}"\n'
            f'[channels.file]\ndir = "{tmp_path / "outbox"}"\n'
            f'[[sources]]\nname = "{SOURCE}"\nkind = "jsonl"\npath = "{tmp_path / "inbox"}/*.jsonl"\n'
            f'{extra}\n' + PRICES)


def ingest_day(settings, engine, tmp_path: Path) -> None:
    """'mover' spends in northwind and then in globex on one day; each tenant has a stayer; one line is bad."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    rows = [record(utc("2026-11-22T08:00:00Z"), account="mover", tenant="northwind", cost="0.25"),
            record(utc("2026-11-22T12:00:00Z"), account="mover", tenant="globex", cost="0.50"),
            record(utc("2026-11-22T09:00:00Z"), account="stay-northwind", tenant="northwind", cost="0.10"),
            record(utc("2026-11-22T10:00:00Z"), account="stay-globex", tenant="globex", cost="0.40")]
    (inbox / "usage.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '"not a record"\n',
                                       encoding="utf-8")
    run = run_job(registry.get("ingest"), settings, engine)
    assert run is not None and run.status == "success", run.error if run else None
    assert run.stats["accepted"] == 4 and run.stats["rejected"] == 1
    with engine.begin() as conn:
        alerts.raise_alert(conn, settings, kind="integrity.unlogged_calls", scope="source", scope_id=SOURCE,
                           period=DAY.isoformat(), payload={"count": 3})


def shown_texts(archived) -> dict[str, str]:
    """Every text a reader of the report sees: the archived files and the message sent."""
    texts = {name: (archived.directory / name).read_text(encoding="utf-8")
             for name in ("report.json", "report.csv", "report.html", "manifest.json")}
    message = make_message("report", {"report": archived.report, "chart_cid": "chart", "report_url": None,
                                      "channel": "email", "target": "someone@example.com"},
                           kind="report.daily", key="k")
    texts.update(subject=message.subject, text=message.text, html=message.html or "",
                 slack=json.dumps(message.slack, ensure_ascii=False))
    return texts


@freeze_time("2026-11-23T08:00:00Z")
def test_a_tenant_report_shows_only_its_tenant_when_accounts_move_between_tenants(make_settings, engine,
                                                                                    tmp_path) -> None:
    settings = make_settings(settings_text(tmp_path))
    ingest_day(settings, engine, tmp_path)
    period = period_containing("daily", DAY)

    for tenant, other, share, stayer, stranger in (("northwind", "globex", "0.25", "stay-northwind", "stay-globex"),
                                                   ("globex", "northwind", "0.5", "stay-globex", "stay-northwind")):
        archived = archive(engine, settings, period, tenant=tenant)
        report = archived.report
        accounts = {a["account_id"]: a for a in report["top_accounts"]}
        assert set(accounts) == {"mover", stayer}
        assert accounts["mover"]["tenant_id"] == tenant
        assert accounts["mover"]["cost_usd"].rstrip("0") == share
        assert report["quality"]["open_rejects"] is None and report["quality"]["rejects_in_period"] is None
        assert report["quality"]["open_integrity_alerts"] is None
        assert report["freshness"] == [] and report["by_tenant"] == []
        for where, text in shown_texts(archived).items():
            assert other not in text, (tenant, where)
            assert stranger not in text, (tenant, where)
            assert SOURCE not in text, (tenant, where)
        assert "integrity alert" not in shown_texts(archived)["text"]
        assert "Rejected records" not in shown_texts(archived)["text"]

    whole = archive(engine, settings, period)
    accounts = {a["account_id"]: a for a in whole.report["top_accounts"]}
    assert accounts["mover"]["tenant_id"] == "globex, northwind"  # every tenant it spent in, none hidden
    assert accounts["mover"]["cost_usd"].rstrip("0") == "0.75"
    assert whole.report["quality"]["open_rejects"] == 1 and whole.report["quality"]["open_integrity_alerts"] == 1
    assert [s["source"] for s in whole.report["freshness"]] == [SOURCE]
    assert SOURCE in shown_texts(whole)["text"]


HOSTILE_TENANTS = ("..", ".", "a/b", "a_b", "東京", "大阪", "50%", "plain-id.v2",
                   "$\\notacommand{$")  # the last: mathtext that cannot parse, in the chart title


@freeze_time("2026-11-23T08:00:00Z")
def test_every_tenant_id_gets_its_own_folder_inside_tenants_and_verifies(make_settings, engine, tmp_path) -> None:
    settings = make_settings(settings_text(tmp_path))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = [record(utc("2026-11-22T08:00:00Z"), account=f"u{i}", tenant=t, cost="0.25")
            for i, t in enumerate(HOSTILE_TENANTS)]
    (inbox / "usage.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert run_job(registry.get("ingest"), settings, engine).status == "success"
    period = period_containing("daily", DAY)
    org = archive(engine, settings, period)
    tenants_dir = (tmp_path / "archive" / "daily" / period.label / "tenants").resolve()
    folders = {}
    for tenant in HOSTILE_TENANTS:
        archived = archive(engine, settings, period, tenant=tenant)
        folder = archived.directory.parent
        assert folder.resolve().parent == tenants_dir, (tenant, folder)  # inside tenants/, one level down
        assert archived.directory.name == "v1"  # its own first version, not another scope's
        assert unquote(folder.name) == tenant  # reversible
        folders[tenant] = folder.name
        assert archived.report["totals"]["requests"] == 1
        assert json.loads((archived.directory / "manifest.json").read_bytes())["tenant"] == tenant
    assert len(set(folders.values())) == len(HOSTILE_TENANTS)  # one-to-one
    assert folders["plain-id.v2"] == "plain-id.v2" and folders["a_b"] == "a_b"  # safe ids keep their paths
    assert org.directory == tmp_path / "archive" / "daily" / period.label / "v1"
    assert sorted(p.name for p in org.directory.iterdir()) == sorted(["chart.png", "manifest.json", "report.csv",
                                                                     "report.html", "report.json"])
    with engine.connect() as conn:
        rows_ = conn.execute(select(Report).order_by(Report.id)).all()
    assert [verify(engine, settings, r).as_dict()["verdict"] for r in rows_] == ["ok"] * (len(HOSTILE_TENANTS) + 1)


@freeze_time("2026-11-23T08:00:00Z")
def test_a_non_ascii_tenants_report_reaches_a_webhook(make_settings, engine, tmp_path,
                                                      httpserver: HTTPServer) -> None:
    hook = httpserver.url_for("/hook")
    settings = make_settings(settings_text(tmp_path, f'[channels.webhook]\ntimeout_seconds = 5\n'
                                                     f'[reports.tenants]\n"東京" = ["webhook:{hook}"]\n'))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "usage.jsonl").write_text(json.dumps(record(utc("2026-11-22T08:00:00Z"), tenant="東京",
                                                         cost="0.25")) + "\n", encoding="utf-8")
    assert run_job(registry.get("ingest"), settings, engine).status == "success"
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    archived = archive(engine, settings, period_containing("daily", DAY), tenant="東京")
    assert send(engine, settings, archived) == 1
    stats = outbox.deliver_pending(engine, settings)
    assert stats.sent == 1, stats
    [(request, _)] = httpserver.log
    delivery = request.headers["X-Tokentally-Delivery"]
    assert delivery.isascii() and unquote(delivery) == "report-daily-2026-11-22-東京-v1"
    assert orjson.loads(request.get_data())["key"] == "report-daily-2026-11-22-東京-v1"
    with engine.connect() as conn:
        assert conn.execute(select(Notification.status)).scalars().all() == ["sent"]
