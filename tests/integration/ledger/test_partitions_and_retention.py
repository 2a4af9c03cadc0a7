"""The partitioned ledger and the retention job, on SQLite and PostgreSQL.

PostgreSQL wants the partition key in every unique constraint of a partitioned table
(https://www.postgresql.org/docs/15/ddl-partitioning.html, 5.11.2.3 "Limitations"), so the
event id's uniqueness lives in usage_event_ids: the same id with a timestamp in another month
is still one event. Retention exports old months to compressed JSONL with a sha256, removes
them, and `reports verify` still holds for reports built before.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date
from pathlib import Path

import orjson
import pytest
from freezegun import freeze_time
from sqlalchemy import func, select, text

from tests.helpers import PRICES, ingest, record, utc
from worker.ingest.ingestor import Ingestor
from worker.ledger import partitions, retention
from worker.models import DailySummary, IngestReject, LedgerExport, UsageEvent, UsageEventId
from worker.summaries import recompute


def _config(tmp_path: Path, extra: str = "") -> str:
    return (f'timezone = "America/New_York"\n[reports]\narchive_dir = "{tmp_path / "archive"}"\n'
            f'[channels.file]\ndir = "{tmp_path / "outbox"}"\n{extra}\n' + PRICES)


def _count(engine, query) -> int:
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def _events(engine) -> int:
    return _count(engine, select(func.count()).select_from(UsageEvent))


def _write(tmp_path: Path, name: str, records: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_the_same_event_id_in_another_month_is_still_one_event(make_settings, engine, tmp_path):
    settings = make_settings(_config(tmp_path))
    ingest(settings, engine, tmp_path, [record(utc("2026-10-05T12:00:00Z"), event_id="same-id", cost="0.10")])
    moved = _write(tmp_path, "again.jsonl", [record(utc("2026-11-05T12:00:00Z"), event_id="same-id", cost="0.10")])

    stats = Ingestor(settings, engine).ingest_paths([moved])

    assert (stats.accepted, stats.duplicates) == (0, 1)
    assert _events(engine) == 1
    assert _count(engine, select(func.count()).select_from(UsageEventId)) == 1


def test_a_batch_that_repeats_an_old_id_among_new_ones_books_only_the_new(make_settings, engine, tmp_path):
    settings = make_settings(_config(tmp_path))
    ingest(settings, engine, tmp_path, [record(utc("2026-10-05T12:00:00Z"), event_id="old", cost="0.10")])
    mixed = _write(tmp_path, "mixed.jsonl", [record(utc("2026-12-01T12:00:00Z"), event_id="old", cost="0.10"),
                                             record(utc("2026-12-01T12:00:00Z"), event_id="new-1", cost="0.20"),
                                             record(utc("2026-11-02T12:00:00Z"), event_id="new-2", cost="0.30")])

    stats = Ingestor(settings, engine).ingest_paths([mixed])

    assert (stats.accepted, stats.duplicates) == (2, 1)
    with engine.connect() as conn:
        assert sorted(conn.execute(select(UsageEvent.event_id)).scalars()) == ["new-1", "new-2", "old"]


def test_a_month_without_a_partition_gets_one_when_its_first_record_arrives(make_settings, engine, tmp_path):
    settings = make_settings(_config(tmp_path))
    ingest(settings, engine, tmp_path, [record(utc("2021-03-04T05:06:07Z"), cost="0.10"),
                                        record(utc("1990-01-01T00:00:00Z"), cost="0.20")])
    assert _events(engine) == 2
    if engine.dialect.name != "postgresql":  # SQLite: one table, nothing to partition
        return
    with engine.connect() as conn:
        assert date(2021, 3, 1) in partitions.existing(conn)
        placed = dict(conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM usage_events GROUP BY 1")).all())
    assert placed == {"usage_events_p202103": 1, partitions.DEFAULT: 1}  # before the floor: the default partition


def _old_and_new(settings, engine, tmp_path, new: bool = True):
    ingest(settings, engine, tmp_path, [
        record(utc("2025-01-10T15:00:00Z"), account="a1", tenant="t1", cost="1.25"),
        record(utc("2025-01-31T23:30:00Z"), account="a2", tenant="t2", cost="0.75", status="error"),
        record(utc("2025-02-14T12:00:00Z"), account="a1", tenant="t1", cost=None, model="unknown-model"),
    ] + ([record(utc("2026-11-20T12:00:00Z"), account="a1", tenant="t1", cost="2.00")] if new else []))


def test_retention_exports_the_old_months_with_a_sha256_and_removes_them(make_settings, engine, tmp_path):
    settings = make_settings(_config(tmp_path, "[retention]\nledger_months = 12\n"))
    with freeze_time("2026-12-01T12:00:00Z"):
        _old_and_new(settings, engine, tmp_path)
        planned = retention.run(engine, settings.reports.archive_dir, 12, 2, utc("2026-12-01T12:00:00Z"),
                                dry_run=True)
        done = retention.run(engine, settings.reports.archive_dir, 12, 2, utc("2026-12-01T12:00:00Z"))

    # (on PostgreSQL the session's database may hold other old, empty partitions that other tests
    # made: those are dropped too, each with an export of 0 rows)
    assert {"2025-01", "2025-02"} <= set(planned["would_export"])
    exported = [e for e in done.exported if e.rows]
    assert [(e.month, e.rows) for e in exported] == [(date(2025, 1, 1), 2), (date(2025, 2, 1), 1)]
    assert len(done.exported) == len(planned["would_export"])
    january = Path(exported[0].path)
    assert january == tmp_path / "archive" / "ledger" / "2025-01" / "usage_events.jsonl.gz"
    assert hashlib.sha256(january.read_bytes()).hexdigest() == exported[0].sha256
    manifest = orjson.loads((january.parent / "manifest.json").read_bytes())
    assert (manifest["rows"], manifest["cost_usd"], manifest["sha256"]) == (2, "2.0000000000", exported[0].sha256)
    lines = [orjson.loads(line) for line in gzip.decompress(january.read_bytes()).splitlines()]
    assert sorted(r["account_id"] for r in lines) == ["a1", "a2"]
    assert {r["cost_usd"] for r in lines} == {"1.2500000000", "0.7500000000"}

    with engine.connect() as conn:
        assert conn.execute(select(UsageEvent.account_id, UsageEvent.occurred_at)).all() == [
            ("a1", utc("2026-11-20T12:00:00Z"))]
        assert conn.execute(select(func.count()).select_from(LedgerExport)).scalar_one() == len(done.exported)
        assert conn.execute(select(func.count()).select_from(UsageEventId)).scalar_one() == 4  # ids stay booked
        if engine.dialect.name == "postgresql":
            months = partitions.existing(conn)
            assert date(2025, 1, 1) not in months and date(2025, 2, 1) not in months
            assert {date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)} <= months  # two months ahead

    with freeze_time("2026-12-02T12:00:00Z"):  # a second run has nothing left to do
        again = retention.run(engine, settings.reports.archive_dir, 12, 2, utc("2026-12-02T12:00:00Z"))
    assert again.exported == []


def test_after_retention_an_old_record_is_quarantined_and_a_reread_books_nothing(make_settings, engine, tmp_path):
    settings = make_settings(_config(tmp_path))
    with freeze_time("2026-12-01T12:00:00Z"):
        _old_and_new(settings, engine, tmp_path)
        retention.run(engine, settings.reports.archive_dir, 12, 2, utc("2026-12-01T12:00:00Z"))
        # Feb 2025 was exported: its end is 2025-03-01 00:00 UTC, and the New York day across it
        # (Feb 28) is final too, so the ledger's books start at 2025-03-01 05:00 UTC.
        late = _write(tmp_path, "late.jsonl", [record(utc("2025-03-01T03:00:00Z"), event_id="late-1", cost="1"),
                                               record(utc("2025-03-01T06:00:00Z"), event_id="late-2", cost="1")])
        stats = Ingestor(settings, engine).ingest_paths([late])

    assert (stats.accepted, stats.rejected) == (1, 1)
    with engine.connect() as conn:
        [reason] = conn.execute(select(IngestReject.reason)).scalars()
    assert "exported" in reason and "2025-03-01T05:00:00+00:00" in reason


def test_summaries_of_exported_days_stay_and_a_rebuild_leaves_them(make_settings, engine, tmp_path):
    settings = make_settings(_config(tmp_path))
    with freeze_time("2026-12-01T12:00:00Z"):
        _old_and_new(settings, engine, tmp_path)
        recompute.run_dirty(engine, settings)
        with engine.connect() as conn:
            before = conn.execute(select(func.sum(DailySummary.cost_usd))).scalar_one()
        retention.run(engine, settings.reports.archive_dir, 12, 2, utc("2026-12-01T12:00:00Z"))
        stats = recompute.rebuild(engine, settings, date(2025, 1, 1), date(2026, 11, 30))
    with engine.connect() as conn:
        after = conn.execute(select(func.sum(DailySummary.cost_usd))).scalar_one()
    assert after == before == 4
    with engine.connect() as conn:
        kept_from = retention.horizon(conn, settings.tz).astimezone(settings.tz).date()
    # 2025-01-01 .. 2025-02-28 as New York days at least (on PostgreSQL the session's database may
    # hold later empty partitions other tests made: retention drops those too, and the horizon moves)
    assert kept_from >= date(2025, 3, 1)
    assert stats.retired == (kept_from - date(2025, 1, 1)).days


def test_reports_verify_reads_the_export_and_flags_an_altered_one(make_settings, engine, tmp_path, cli):
    cfg = tmp_path / "cli.toml"
    cfg.write_text(_config(tmp_path), encoding="utf-8")
    settings = make_settings(_config(tmp_path))
    with freeze_time("2025-03-02T12:00:00Z"):
        _old_and_new(settings, engine, tmp_path, new=False)
        made = orjson.loads(cli("report", "monthly", "--date", "2025-01-15", "--format", "json", config=cfg).stdout)
    assert made["cost_usd"] == "2.0000000000"
    with freeze_time("2026-12-01T12:00:00Z"):
        ingest(settings, engine, tmp_path, [record(utc("2026-11-20T12:00:00Z"), cost="2.00")])
        retention.run(engine, settings.reports.archive_dir, 12, 2, utc("2026-12-01T12:00:00Z"))
        assert _events(engine) == 1
        checked = cli("reports", "verify", str(made["report"]), "--format", "json", config=cfg)
        assert checked.exit_code == 0, checked.stdout
        assert orjson.loads(checked.stdout)[0]["verdict"] == "ok"

        export = tmp_path / "archive" / "ledger" / "2025-01" / "usage_events.jsonl.gz"
        export.write_bytes(gzip.compress(b"{}\n"))
        tampered = cli("reports", "verify", str(made["report"]), "--format", "json", config=cfg)
    assert tampered.exit_code == 2
    assert orjson.loads(tampered.stdout)[0]["altered"] == ["ledger export 2025-01"]


def test_the_retention_job_runs_from_the_cli_and_a_bad_setting_exits_2(cli, tmp_path):
    cfg = tmp_path / "cli.toml"
    cfg.write_text(_config(tmp_path, "[retention]\nledger_months = 12\n"), encoding="utf-8")
    with freeze_time("2026-12-01T12:00:00Z"):
        ran = cli("jobs", "run", "retention", "--dry-run", "--format", "json", config=cfg)
    assert ran.exit_code == 0, ran.stdout
    assert "2026-12" in ran.stdout and "would_create" in ran.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(_config(tmp_path, "[retention]\nledger_months = -1\n"), encoding="utf-8")
    result = cli("status", config=bad)
    assert result.exit_code == 2 and "retention.ledger_months" in result.output
