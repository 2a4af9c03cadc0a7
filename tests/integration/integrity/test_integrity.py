"""Integrity checks on both databases: each gap found when it is there, nothing found on clean data."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select, text

from cli.integrity import finding_sentence
from tests.helpers import PRICES, alert_sentence, record, utc
from worker.integrity import run as integrity
from reports import outbox
from worker.summaries import recompute as summaries
from worker.ingest.ingestor import Ingestor
from worker.models import Alert, CallAttempt, DirtyDay, Notification, SourceStatus, SummaryDay

NOW = "2026-11-23T12:00:00Z"


@pytest.fixture
def settings(make_settings):
    return make_settings(PRICES)


def feed(settings, engine, tmp_path: Path, records: list[dict[str, Any]], name: str = "feed.jsonl",
         source=None) -> Any:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return Ingestor(settings, engine).ingest_paths([path], source=source)


def attempt(attempt_id: str, at: str, estimated: int | None = 1500, **extra: Any) -> dict[str, Any]:
    rec = {"record_type": "attempt", "attempt_id": attempt_id, "started_at": at, "user_id": "a1",
           "service": "chat", "model": "house-llm", **extra}
    if estimated is not None:
        rec["estimated_tokens"] = estimated
    return rec


def findings(engine, settings, check: str | None = None, first: str = "2026-11-22", last: str = "2026-11-23"):
    from datetime import date

    with engine.connect() as conn:
        found = integrity.run_checks(conn, settings, utc(NOW), date.fromisoformat(first), date.fromisoformat(last))
    return found if check is None else [f for f in found if f.check == check]


def check_now(engine, settings, first: str = "2026-11-22", last: str = "2026-11-23", apply: bool = False):
    from datetime import date

    from worker import clock

    now = clock.now()
    with engine.begin() as conn:
        found = integrity.run_checks(conn, settings, now, date.fromisoformat(first), date.fromisoformat(last))
        applied = integrity.apply(conn, settings, now, date.fromisoformat(first), date.fromisoformat(last),
                                  found) if apply else None
    return found, applied


def clean_day(settings, engine, tmp_path) -> None:
    """A morning of ordinary usage: attempts matched, sequences whole, ids unique, summaries built."""
    records = []
    for i in range(20):
        at = utc("2026-11-23T08:00:00Z") + timedelta(minutes=5 * i)
        stamp = at.isoformat().replace("+00:00", "Z")
        records.append(attempt(f"call-{i}", stamp, estimated=1400 + i))
        rec = record(at, event_id=f"call-{i}", cost="0.0020")
        rec.update(seq=i + 1, process_id="web-1", provider_request_id=f"chatcmpl-{i}")
        records.append(rec)
    stats = feed(settings, engine, tmp_path, records)
    assert stats.accepted == 20 and stats.attempts == 20 and stats.rejected == 0
    summaries.run_dirty(engine, settings)


@freeze_time(NOW)
def test_clean_usage_raises_no_finding(settings, engine, tmp_path) -> None:
    clean_day(settings, engine, tmp_path)
    found, applied = check_now(engine, settings, apply=True)
    assert found == []
    assert applied.attempts_matched == 20 and applied.attempts_unlogged == 0
    with engine.connect() as conn:
        assert conn.execute(select(Alert)).all() == []


def test_attempts_without_events_become_unlogged_calls_after_the_grace_and_late_events_match(
        settings, engine, tmp_path) -> None:
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, [
            attempt("r1", "2026-11-23T09:40:00Z"), attempt("r2", "2026-11-23T09:45:00Z", estimated=900),
            attempt("r3", "2026-11-23T09:55:00Z"),  # within the 10-minute grace at 10:00
            record(utc("2026-11-23T09:40:02Z"), event_id="r1", prompt=1000, completion=500)], "a.jsonl")
        found, applied = check_now(engine, settings, apply=True)
    [unlogged] = [f for f in found if f.check == "unlogged_calls"]
    assert (unlogged.scope, unlogged.scope_id, unlogged.period, unlogged.count) == ("source", "cli", "2026-11-23", 1)
    assert [e["attempt_id"] for e in unlogged.examples] == ["r2"]
    assert unlogged.data["estimated_tokens"] == 900
    assert applied.attempts_matched == 1 and applied.attempts_unlogged == 1
    with engine.connect() as conn:
        states = dict(conn.execute(select(CallAttempt.attempt_id, CallAttempt.state)).all())
        alert = conn.execute(select(Alert).where(Alert.kind == "integrity.unlogged_calls")).one()
    assert states == {"r1": "matched", "r2": "unlogged", "r3": "open"}
    assert alert.payload["count"] == 1 and "not in the books" in alert_sentence(alert)

    with freeze_time("2026-11-23T10:20:00Z"):  # r3's grace is over too
        found, _ = check_now(engine, settings, apply=True)
        assert [f.count for f in found if f.check == "unlogged_calls"] == [2]
        # the late events arrive: both match and the alert resolves
        feed(settings, engine, tmp_path, [record(utc("2026-11-23T09:45:01Z"), event_id="r2"),
                                          record(utc("2026-11-23T09:55:01Z"), event_id="r3")], "late.jsonl")
        found, applied = check_now(engine, settings, apply=True)
    assert [f for f in found if f.check == "unlogged_calls"] == []
    assert applied.attempts_matched == 2 and applied.alerts_resolved == 1
    with engine.connect() as conn:
        assert set(conn.execute(select(CallAttempt.state)).scalars()) == {"matched"}
        assert conn.execute(select(Alert.state).where(Alert.kind == "integrity.unlogged_calls")).scalar() == "resolved"


def test_an_attempt_source_ingests_attempts_idempotently_and_refuses_what_cannot_match(make_settings, engine,
                                                                                       tmp_path) -> None:
    attempts_dir = tmp_path / "attempts"
    attempts_dir.mkdir()
    settings = make_settings(PRICES + f"""
[[sources]]
name = "intents"
kind = "csv"
path = "{attempts_dir}/*.csv"
record_type = "attempt"
event_id_namespace = "shop"
""")
    path = attempts_dir / "a.csv"
    path.write_text("request_id,timestamp,user_id,estimated_prompt_tokens,estimated_completion_tokens\n"
                    "x1,2026-11-23T09:00:00Z,u1,800,200\n"
                    ",2026-11-23T09:01:00Z,u2,10,10\n", encoding="utf-8")
    source = settings.source("intents")
    ingestor = Ingestor(settings, engine)
    first = ingestor.ingest_source(source)
    again = ingestor.ingest_paths([path], source=source)
    assert (first.attempts, first.rejected) == (1, 1)
    assert (again.attempts, again.duplicates) == (0, 1)
    with engine.connect() as conn:
        row = conn.execute(select(CallAttempt)).one()
        reason = conn.execute(text("SELECT reason FROM ingest_rejects")).scalar()
    assert (row.attempt_id, row.account_id, row.estimated_tokens, row.source) == ("shop:x1", "u1", 1000, "intents")
    assert "attempt without an id" in reason


def test_an_unknown_record_type_is_quarantined_with_the_reason(settings, engine, tmp_path) -> None:
    stats = feed(settings, engine, tmp_path, [{**record(utc("2026-11-23T09:00:00Z")), "record_type": "invoice"}])
    assert stats.rejected == 1
    with engine.connect() as conn:
        assert "unknown record_type 'invoice'" in conn.execute(text("SELECT reason FROM ingest_rejects")).scalar()


@freeze_time(NOW)
def test_a_token_estimate_far_from_the_usage_is_flagged(settings, engine, tmp_path) -> None:
    feed(settings, engine, tmp_path, [
        attempt("near", "2026-11-23T09:00:00Z", estimated=1400),
        record(utc("2026-11-23T09:00:01Z"), event_id="near"),  # 1500 used: 7% off
        attempt("far", "2026-11-23T09:10:00Z", estimated=1000),
        record(utc("2026-11-23T09:10:01Z"), event_id="far", prompt=2000, completion=1000)])  # 3000: 200% off
    [f] = findings(engine, settings, "estimate_mismatch")
    assert f.count == 1 and f.examples == [{"attempt_id": "far", "account_id": "a1", "service": "chat",
                                            "model": "house-llm", "estimated_tokens": 1000, "actual_tokens": 3000}]


@freeze_time(NOW)
def test_missing_sequence_numbers_are_calls_never_logged(settings, engine, tmp_path) -> None:
    def numbered(process: str, seq: int, minute: int) -> dict[str, Any]:
        return {**record(utc("2026-11-23T09:00:00Z") + timedelta(minutes=minute)), "seq": seq,
                "process_id": process}

    feed(settings, engine, tmp_path, [
        *[numbered("web-1", s, s) for s in (1, 2, 3, 6, 7)],  # 4 and 5 missing
        *[numbered("web-2", s, s) for s in (1, 2, 3, 4)],  # whole
        numbered("web-3", 1, 0), numbered("web-3", 3, 175),  # 2 missing, but 3 arrived 5 minutes ago: in flight
    ])
    [f] = findings(engine, settings, "sequence_gap")
    assert (f.scope_id, f.period, f.count) == ("cli", "2026-11-23", 2)
    assert f.examples == [{"process_id": "web-1", "after_seq": 3, "next_seq": 6, "missing": 2}]


@freeze_time(NOW)
def test_unattributed_usage_above_the_share_is_flagged_and_below_it_is_not(make_settings, engine, tmp_path) -> None:
    settings = make_settings(PRICES + "[integrity]\nunattributed_share = 0.05\n")
    base = utc("2026-11-22T09:00:00Z")
    feed(settings, engine, tmp_path, [record(base + timedelta(minutes=i)) for i in range(96)]
         + [{k: v for k, v in record(base + timedelta(minutes=100 + i)).items() if k != "user_id"} for i in range(4)]
         + [record(base + timedelta(days=1, minutes=i)) for i in range(90)]
         + [{k: v for k, v in record(base + timedelta(days=1, minutes=100 + i)).items() if k != "user_id"}
            for i in range(10)])
    [f] = findings(engine, settings, "unattributed")  # 4% on the 22nd is under 5%; 10% on the 23rd is over
    assert (f.period, f.count, f.data["events"], f.data["share"]) == ("2026-11-23", 10, 100, 0.1)
    assert len(f.examples) == 5 and f.examples[0]["source"] == "cli"


@freeze_time(NOW)
def test_any_unattributed_usage_is_flagged_by_default(make_settings, engine, tmp_path) -> None:
    settings = make_settings(PRICES)
    assert settings.integrity.unattributed_share == 0
    base = utc("2026-11-23T09:00:00Z")
    anonymous = {k: v for k, v in record(base + timedelta(minutes=500)).items() if k != "user_id"}
    feed(settings, engine, tmp_path, [record(base + timedelta(minutes=i)) for i in range(499)] + [anonymous])
    [f] = findings(engine, settings, "unattributed")  # 1 of 500 events: 0.2%, flagged
    assert (f.period, f.count, f.data["events"]) == ("2026-11-23", 1, 500)


@freeze_time(NOW)
def test_quarantined_records_and_unpriced_models_are_flagged_with_examples(settings, engine, tmp_path) -> None:
    at = utc("2026-11-23T09:00:00Z")
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(record(at)) + "\nnot json\n" + json.dumps(record(at, model="mystery-9000")) + "\n",
                    encoding="utf-8")
    Ingestor(settings, engine).ingest_paths([path])
    [rejected] = findings(engine, settings, "rejects")
    assert (rejected.scope_id, rejected.period, rejected.count) == ("cli", "2026-11-23", 1)
    assert rejected.examples[0]["position"] == 2 and rejected.examples[0]["location"] == str(path)
    [unpriced] = findings(engine, settings, "unpriced")
    assert unpriced.count == 1 and unpriced.examples[0]["model"] == "mystery-9000"
    assert "mystery-9000" in finding_sentence(unpriced)


@freeze_time(NOW)
def test_one_provider_request_booked_under_two_event_ids_is_a_duplicate(settings, engine, tmp_path) -> None:
    at = utc("2026-11-23T09:00:00Z")
    first = {**record(at, event_id="app-1", cost="0.25"), "provider_request_id": "chatcmpl-A"}
    copy = {**record(at + timedelta(seconds=3), event_id="retry-1", cost="0.25"), "provider_request_id": "chatcmpl-A"}
    other = {**record(at, event_id="app-2", cost="0.25"), "response_id": "chatcmpl-B"}
    feed(settings, engine, tmp_path, [first, copy, other])
    [f] = findings(engine, settings, "duplicates")
    assert f.count == 1 and f.data == {"requests": 1, "extra_cost_usd": "0.250000"}
    assert f.examples[0]["event_ids"] == ["app-1", "retry-1"]


@freeze_time(NOW)
def test_token_counts_that_do_not_add_up_and_costs_far_from_the_price_are_flagged(settings, engine,
                                                                                   tmp_path) -> None:
    at = utc("2026-11-23T09:00:00Z")
    good = record(at, cost="0.0020")  # house-llm: 1000 in at $1/M + 500 out at $2/M = $0.002
    short_total = {**record(at, event_id="short"), "total_tokens": 1200}  # < 1000 + 500
    too_cached = record(at, event_id="cached", cached=5000)
    pricey = record(at, event_id="pricey", cost="0.0100")  # 5x the price
    feed(settings, engine, tmp_path, [good, short_total, too_cached, pricey])
    [tokens] = findings(engine, settings, "token_mismatch")
    assert tokens.count == 2 and sorted(e["event_id"] for e in tokens.examples) == ["cached", "short"]
    [cost] = findings(engine, settings, "cost_mismatch")
    assert cost.count == 1
    assert cost.examples == [{"model": "house-llm", "events": 1, "reported_usd": "0.010000",
                              "computed_usd": "0.002000", "example_event_id": "pricey"}]


@freeze_time(NOW)
def test_a_skipped_check_is_left_out_unless_asked_for_by_name(make_settings, engine, tmp_path) -> None:
    settings = make_settings(PRICES + '[integrity]\nskip = ["cost_mismatch"]\n')
    feed(settings, engine, tmp_path, [record(utc("2026-11-23T09:00:00Z"), cost="0.0100")])  # 5x the price
    assert findings(engine, settings) == []
    from datetime import date

    with engine.connect() as conn:
        asked = integrity.run_checks(conn, settings, utc(NOW), date(2026, 11, 23), date(2026, 11, 23),
                                     only=["cost_mismatch"])
    assert [f.check for f in asked] == ["cost_mismatch"]


@freeze_time(NOW)
def test_summaries_that_differ_from_the_ledger_or_are_missing_are_flagged_but_dirty_days_wait(
        settings, engine, tmp_path) -> None:
    feed(settings, engine, tmp_path, [record(utc("2026-11-21T09:00:00Z")), record(utc("2026-11-22T09:00:00Z")),
                                      record(utc("2026-11-23T09:00:00Z"))])
    summaries.run_dirty(engine, settings)
    assert findings(engine, settings, "summaries", first="2026-11-21") == []
    with engine.begin() as conn:
        conn.execute(text("UPDATE daily_summaries SET requests = requests + 1 WHERE day = :d"), {"d": "2026-11-21"})
        conn.execute(SummaryDay.__table__.delete().where(SummaryDay.day == utc("2026-11-22T00:00:00Z").date()))
        conn.execute(text("DELETE FROM daily_summaries WHERE day = :d"), {"d": "2026-11-22"})
    feed(settings, engine, tmp_path, [record(utc("2026-11-23T10:00:00Z"))], "more.jsonl")  # marks the 23rd dirty
    found = {f.period: f for f in findings(engine, settings, "summaries", first="2026-11-21")}
    assert set(found) == {"2026-11-21", "2026-11-22"}
    assert found["2026-11-21"].count == 1 and found["2026-11-21"].examples[0]["summary"]["requests"] == 2
    assert found["2026-11-22"].data == {"missing": True}
    with engine.connect() as conn:
        assert conn.execute(select(DirtyDay.day)).scalars().all() == [utc(NOW).date()]


def _history(settings, engine, tmp_path: Path, name: str) -> None:
    """Two weeks of a business-hours app: 30 events an hour, 09:00-17:00 UTC on weekdays."""
    records, day = [], utc("2026-11-09T00:00:00Z")  # a Monday
    while day < utc("2026-11-23T00:00:00Z"):
        if day.weekday() < 5:
            for hour in range(9, 17):
                records += [record(day + timedelta(hours=hour, minutes=2 * i)) for i in range(30)]
        day += timedelta(days=1)
    feed(settings, engine, tmp_path, records, name, source=settings.source(name))


def test_a_source_silent_when_its_history_expects_traffic_is_flagged_and_resolves_when_it_delivers(
        make_settings, engine, tmp_path) -> None:
    settings = make_settings(PRICES + f"""
[[sources]]
name = "shop"
kind = "jsonl"
path = "{tmp_path}/shop/*.jsonl"

[[sources]]
name = "batch"
kind = "jsonl"
path = "{tmp_path}/batch/*.jsonl"
expect_every = "15m"
""")
    with freeze_time("2026-11-20T16:59:00Z"):  # Friday evening: the last delivery
        _history(settings, engine, tmp_path, "shop")
    with freeze_time("2026-11-23T04:00:00Z"):  # Monday before dawn: a quiet weekend and night are normal
        found, _ = check_now(engine, settings, "2026-11-23", "2026-11-23", apply=True)
    assert [(f.scope_id, f.data["basis"]) for f in found if f.check == "source_silent"] == [
        ("batch", "expect_every 15 minutes")]
    with freeze_time("2026-11-23T10:30:00Z"):  # 90 minutes of business hours without a record
        found, applied = check_now(engine, settings, "2026-11-23", "2026-11-23", apply=True)
    silent = {f.scope_id: f for f in found if f.check == "source_silent"}
    assert set(silent) == {"shop", "batch"}
    assert silent["shop"].data["expected_events"] == 45.5  # Friday 16:59-17:00 and Monday 09:00-10:30, 30 an hour
    assert silent["shop"].data["silent_since"] == "2026-11-20T16:59:00+00:00"
    assert "never delivered" in finding_sentence(silent["batch"])
    with freeze_time("2026-11-23T10:31:00Z"):
        feed(settings, engine, tmp_path, [record(utc("2026-11-23T10:30:30Z"))], "back.jsonl",
             source=settings.source("shop"))
        found, applied = check_now(engine, settings, "2026-11-23", "2026-11-23", apply=True)
    assert {f.scope_id for f in found if f.check == "source_silent"} == {"batch"}
    with engine.connect() as conn:
        states = dict(conn.execute(select(Alert.scope_id, Alert.state).where(Alert.kind == "source.silent")).all())
        assert conn.execute(select(SourceStatus.source)).scalars().all() == ["shop"]
    assert states == {"shop": "resolved", "batch": "open"}
    from worker.status import status

    with freeze_time("2026-11-23T10:31:00Z"):
        report = status(settings, engine)
    assert {s["source"]: s["silent"] for s in report["sources"]} == {"shop": False, "batch": True}
    assert report["counts"]["open_integrity_alerts"] == 1


def test_a_source_silent_for_less_than_its_history_expects_is_not_flagged(make_settings, engine,
                                                                         tmp_path) -> None:
    settings = make_settings(PRICES + f'[[sources]]\nname = "shop"\nkind = "jsonl"\npath = "{tmp_path}/x/*.jsonl"\n')
    with freeze_time("2026-11-22T16:59:00Z"):  # Sunday: no traffic on weekends
        _history(settings, engine, tmp_path, "shop")
    with freeze_time("2026-11-23T08:50:00Z"):  # Monday before 09:00: ~16 quiet hours, all expected quiet
        found, _ = check_now(engine, settings, "2026-11-23", "2026-11-23")
    assert [f for f in found if f.check == "source_silent"] == []
    with freeze_time("2026-11-23T09:15:00Z"):  # 15 minutes into business hours: ~7 events expected, under 10
        found, _ = check_now(engine, settings, "2026-11-23", "2026-11-23")
    assert [f for f in found if f.check == "source_silent"] == []


def test_an_unlogged_call_alert_reaches_the_admins_by_email_once(make_settings, engine, tmp_path, mailbox) -> None:
    box, port = mailbox
    settings = make_settings(PRICES + f"""
[channels.email]
smtp_host = "127.0.0.1"
smtp_port = {port}
sender = "tokentally@example.com"

[[routes]]
kinds = ["integrity.*"]
to = ["email:admins@example.com"]
""")
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, [attempt("lost-1", "2026-11-23T09:00:00Z", estimated=4200)])
        check_now(engine, settings, apply=True)
        check_now(engine, settings, apply=True)  # the same condition again: no second message
        outbox.deliver_pending(engine, settings)
    [mail] = box.mails()
    assert "integrity.unlogged_calls" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    assert "lost-1" in body and "not in the books" in body
    with engine.connect() as conn:
        assert conn.execute(select(Notification.status)).scalars().all() == ["sent"]


def test_integrity_check_prints_findings_and_exits_1_and_alert_acts(settings, engine, tmp_path, cli) -> None:
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, [attempt("lost-1", "2026-11-23T09:00:00Z")])
        looked = cli("integrity", "check", "--format", "json")
        with engine.connect() as conn:
            assert conn.execute(select(Alert)).all() == []  # looking changes nothing
        acted = cli("integrity", "check", "--alert")
        only = cli("integrity", "check", "--only", "duplicates")
        bad = cli("integrity", "check", "--only", "nonsense")
    assert looked.exit_code == 1, looked.output
    report = json.loads(looked.stdout)
    assert report["from"] == "2026-11-22" and report["to"] == "2026-11-23" and not report["ok"]
    assert [f["kind"] for f in report["findings"]] == ["integrity.unlogged_calls"]
    [lost] = report["findings"]  # the facts, and the sentence the alert would carry
    assert (lost["count"], lost["data"]["grace_minutes"], lost["examples"][0]["attempt_id"]) == (1, 10, "lost-1")
    assert lost["message"].startswith("1 call(s) announced by an attempt on 2026-11-23 (source cli)")
    assert acted.exit_code == 1 and "1 flagged unlogged" in acted.stdout
    assert only.exit_code == 0 and "no integrity findings" in only.stdout
    assert bad.exit_code == 2 and "no such check: nonsense" in bad.output
    with engine.connect() as conn:
        assert conn.execute(select(CallAttempt.state)).scalar() == "unlogged"
    with freeze_time("2026-11-23T10:00:00Z"):
        counts = json.loads(cli("status", "--format", "json").stdout)["counts"]
    assert (counts["unlogged_calls"], counts["open_integrity_alerts"]) == (1, 1)
    listed = cli("attempts", "list", "--format", "json")
    assert [a["attempt_id"] for a in json.loads(listed.stdout)] == ["lost-1"]


def test_the_integrity_job_runs_from_the_cli_and_records_its_figures(settings, engine, tmp_path, cli) -> None:
    with freeze_time("2026-11-23T10:00:00Z"):
        feed(settings, engine, tmp_path, [attempt("lost-1", "2026-11-23T09:00:00Z")])
        result = cli("jobs", "run", "integrity", "--format", "json")
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        stats = conn.execute(text("SELECT stats FROM job_runs WHERE job = 'integrity'")).scalar()
    stats = json.loads(stats) if isinstance(stats, str) else stats
    assert stats["attempts_unlogged"] == 1 and stats["by_check"] == {"unlogged_calls": 1}


def test_bad_integrity_settings_name_the_key(make_settings) -> None:
    from worker.settings import SettingsError

    with pytest.raises(SettingsError, match=r"integrity\.attempt_grace: expected a duration"):
        make_settings("[integrity]\nattempt_grace = 'soon'\n")
    with pytest.raises(SettingsError, match=r"unknown setting\(s\): integrity\.grace"):
        make_settings("[integrity]\ngrace = '5m'\n")
    with pytest.raises(SettingsError, match=r"integrity\.skip: no such check: costs \(checks: unlogged_calls, "):
        make_settings('[integrity]\nskip = ["costs"]\n')
    with pytest.raises(SettingsError, match=r"sources\[s\]\.record_type: expected one of usage, attempt"):
        make_settings('[[sources]]\nname = "s"\nkind = "jsonl"\npath = "x"\nrecord_type = "intent"\n')


def test_bench_integrity_prints_the_job_and_month_timings(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "settings.toml").write_text("", encoding="utf-8")
    result = CliRunner().invoke(app, ["bench", "integrity", "--events", "300", "--format", "json"],
                                env={"TOKENTALLY_CONFIG": str(tmp_path / "settings.toml")}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["dialect"] == "sqlite" and figures["events"] == 300 and figures["job_days"] == 2
    assert figures["job_seconds"] > 0 and figures["month_seconds"] > 0
    assert set(figures["findings"]) <= {"cost_mismatch"}  # the generated log prices a tenth of its calls itself
