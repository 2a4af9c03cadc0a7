"""`tokentally jobs list/run/history`, `status` and `run`'s settings check, through the CLI, on both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from worker import db
from worker.models import DirtyDay, JobRun


def ok(result) -> Any:
    assert result.exit_code == 0, result.output
    return result


def as_json(result) -> Any:
    return json.loads(ok(result).stdout)


def write_inbox(inbox: Path, name: str = "app.jsonl", days: tuple[str, ...] = ("2026-11-20", "2026-11-21")) -> Path:
    inbox.mkdir(exist_ok=True)
    path = inbox / name
    lines = [json.dumps({"request_id": f"{name}-{day}-{i}", "timestamp": f"{day}T{10 + i}:00:00Z",
                         "model": "gpt-4o-mini", "provider": "openai", "user_id": "u1",
                         "prompt_tokens": 1000, "completion_tokens": 200})
             for day in days for i in range(3)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    write_inbox(inbox)
    cfg = tmp_path / "jobs.toml"
    cfg.write_text(f'timezone = "Europe/Berlin"\n[[sources]]\nname = "app"\nkind = "jsonl"\npath = "{inbox}/*.jsonl*"\n'
                   '[schedule]\nsummaries = "off"\nsummaries_nightly = "30 3 * * *"\n', encoding="utf-8")
    return cfg


def count_rows(db_url: str, model: Any) -> int:
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(model)).scalar_one()
    finally:
        engine.dispose()


def history(cli, config: Path, *args: str) -> list[dict[str, Any]]:
    return as_json(cli("jobs", "history", *args, "--format", "json", config=config))


# --------------------------------------------------------------------------- jobs list


@freeze_time("2026-11-23T10:07:30Z")
def test_jobs_list_shows_schedule_next_run_and_last_run(cli, config) -> None:
    jobs = {j["job"]: j for j in as_json(cli("jobs", "list", "--format", "json", config=config))}
    assert set(jobs) >= {"ingest", "summaries", "summaries_nightly"}
    assert jobs["ingest"]["schedule"] == "every 1m"  # the job's default
    assert jobs["ingest"]["next_run"] == "2026-11-23T10:08:00+00:00"
    assert jobs["summaries"]["schedule"] == "off" and jobs["summaries"]["next_run"] is None
    assert jobs["summaries_nightly"]["next_run"] == "2026-11-24T03:30:00+01:00"  # local time zone
    assert all(j["last_status"] is None and j["description"] for j in jobs.values())

    ok(cli("jobs", "run", "ingest", config=config))
    jobs = {j["job"]: j for j in as_json(cli("jobs", "list", "--format", "json", config=config))}
    assert jobs["ingest"]["last_status"] == "success"
    assert jobs["ingest"]["last_started_at"] == "2026-11-23T10:07:30+00:00"
    table = ok(cli("jobs", "list", config=config)).stdout
    assert "summaries_nightly" in table and "30 3 * * *" in table


def test_jobs_list_names_a_bad_schedule(cli, tmp_path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[schedule]\ningest = "every blue moon"\n', encoding="utf-8")
    result = cli("jobs", "list", config=cfg)
    assert result.exit_code == 2
    assert "schedule.ingest:" in result.output


# --------------------------------------------------------------------------- jobs run


def test_jobs_run_records_a_manual_run_and_prints_its_stats(cli, config, db_url) -> None:
    out = as_json(cli("jobs", "run", "ingest", "--format", "json", config=config))
    assert out["job"] == "ingest" and out["status"] == "success"
    assert (out["files"], out["accepted"], out["rejected"]) == (1, 6, 0)
    assert out["sources"]["app"]["accepted"] == 6
    [run] = history(cli, config, "ingest")
    assert (run["id"], run["job"], run["trigger"], run["status"]) == (out["run_id"], "ingest", "manual", "success")
    assert run["scheduled_for"] is None and run["stats"]["accepted"] == 6
    # as the daemon does, the budgets job ran right after the ingest
    [budgets] = history(cli, config, "budgets")
    assert out["chained"] == [{"job": "budgets", "run_id": budgets["id"], "status": "success"}]
    assert budgets["trigger"] == "after:ingest" and budgets["id"] > run["id"]
    # nothing new: the second run reads nothing
    again = as_json(cli("jobs", "run", "ingest", "--format", "json", config=config))
    assert again["accepted"] == 0 and again["run_id"] != out["run_id"]


def test_jobs_run_dry_run_changes_nothing(cli, config, db_url) -> None:
    pending = as_json(cli("jobs", "run", "ingest", "--dry-run", "--format", "json", config=config))
    files = pending["sources"]["app"]["files_with_new_data"]
    assert pending["dry_run"] is True and len(files) == 1 and files[0]["from_byte"] == 0
    assert as_json(cli("usage", "--from", "2026-11-20", "--to", "2026-11-21", "--by", "day", "--format", "json",
                       config=config)) == []
    ok(cli("jobs", "run", "ingest", config=config))
    would = as_json(cli("jobs", "run", "summaries", "--dry-run", "--format", "json", config=config))
    assert would["would_recompute"] == ["2026-11-20", "2026-11-21"]
    assert count_rows(db_url, DirtyDay) == 2
    done = as_json(cli("jobs", "run", "summaries", "--format", "json", config=config))
    assert done["days"] == 2
    assert as_json(cli("jobs", "run", "summaries", "--dry-run", "--format", "json", config=config))[
        "would_recompute"] == []
    assert [r["trigger"] for r in history(cli, config, "summaries")] == ["manual", "manual", "manual"]


def test_jobs_run_for_dates(cli, config) -> None:
    ok(cli("jobs", "run", "ingest", config=config))
    one = as_json(cli("jobs", "run", "summaries_nightly", "--date", "2026-11-21", "--format", "json", config=config))
    assert (one["from"], one["to"], one["days"]) == ("2026-11-21", "2026-11-21", 1)
    span = as_json(cli("jobs", "run", "summaries_nightly", "--from", "2026-11-19", "--to", "2026-11-21",
                       "--format", "json", config=config))
    assert (span["from"], span["to"], span["days"]) == ("2026-11-19", "2026-11-21", 3)
    rows = as_json(cli("usage", "--from", "2026-11-19", "--to", "2026-11-21", "--by", "day", "--format", "json",
                       config=config))
    assert [(r["day"], r["requests"]) for r in rows] == [("2026-11-20", 3), ("2026-11-21", 3)]


@pytest.mark.parametrize("args, message", [
    (("nope",), "no job named 'nope'"),
    (("summaries", "--date", "2026-11-21", "--from", "2026-11-20"), "--date and --from/--to exclude each other"),
    (("summaries", "--date", "21/11/2026"), "--date: expected a date like"),
    (("summaries", "--to", "2026-11-21"), "--to needs --from"),
    (("summaries", "--from", "2026-11-22", "--to", "2026-11-21"), "--to is before --from"),
])
def test_jobs_run_refuses_bad_arguments_and_records_nothing(cli, config, db_url, args, message) -> None:
    result = cli("jobs", "run", *args, config=config)
    assert result.exit_code == 2 and message in result.output
    assert history(cli, config) == []


def test_a_failing_job_exits_1_and_keeps_its_error_and_partial_stats(cli, config, tmp_path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"not a deflate stream" * 50)
    result = cli("jobs", "run", "ingest", "--format", "json", config=config)
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["status"] == "failed" and "broken.jsonl.gz" in out["error"]
    assert out["accepted"] == 6  # the good file still went in
    [run] = history(cli, config, "ingest")
    assert run["status"] == "failed" and "broken.jsonl.gz" in run["error"] and run["stats"]["accepted"] == 6


# --------------------------------------------------------------------------- jobs history


def test_jobs_history_newest_first_filtered_and_limited(cli, config) -> None:
    for name in ("ingest", "summaries", "ingest", "summaries_nightly"):
        ok(cli("jobs", "run", name, "--no-chain", config=config))
    assert [r["job"] for r in history(cli, config)] == ["summaries_nightly", "ingest", "summaries", "ingest"]
    assert [r["job"] for r in history(cli, config, "ingest")] == ["ingest", "ingest"]
    latest = history(cli, config, "--limit", "1")
    assert len(latest) == 1 and latest[0]["job"] == "summaries_nightly"
    assert history(cli, config, "nope") == []
    table = ok(cli("jobs", "history", config=config)).stdout
    assert "summaries_nightly" in table and "manual" in table


def test_jobs_run_no_chain_runs_only_the_job_asked_for(cli, config) -> None:
    out = as_json(cli("jobs", "run", "ingest", "--no-chain", "--format", "json", config=config))
    assert "chained" not in out
    assert [r["job"] for r in history(cli, config)] == ["ingest"]


@pytest.mark.parametrize(("args", "named"), [
    (("summaries", "--resend"), "--resend"),  # (budgets takes --date: it judges that day's windows)
    (("limits", "--from", "2026-11-20", "--to", "2026-11-21"), "--from/--to"),
    (("ingest", "--date", "2026-11-20"), "--date"),
    (("notify", "--from", "2026-11-20"), "--from"),
])
def test_an_option_a_job_does_not_take_is_refused_in_one_line(cli, config, args, named) -> None:
    result = cli("jobs", "run", *args, config=config)
    assert result.exit_code == 2
    assert f"does not take {named}" in " ".join(result.output.split())
    assert history(cli, config) == []  # nothing ran


# --------------------------------------------------------------------------- status


@freeze_time("2026-11-23T10:00:00Z")
def test_status_shows_freshness_counts_and_last_runs(cli, config, tmp_path) -> None:
    before = as_json(cli("status", "--format", "json", config=config))
    assert before["timezone"] == "Europe/Berlin" and before["schema_revision"]
    assert before["counts"]["events"] == 0
    assert before["sources"] == [{"source": "app", "kind": "jsonl", "enabled": True, "silent": False, "last_ingest_at": None,
                                  "newest_event_at": None, "events": 0, "unattributed": 0}]
    (tmp_path / "inbox" / "bad.jsonl").write_text('{"request_id": "x", "model": "m"}\nnot json\n', encoding="utf-8")
    ok(cli("jobs", "run", "ingest", config=config))
    after = as_json(cli("status", "--format", "json", config=config))
    [app] = after["sources"]
    assert app["last_ingest_at"] == "2026-11-23T10:00:00+00:00"
    assert app["newest_event_at"] == "2026-11-21T12:00:00+00:00" and app["events"] == 6
    assert after["counts"]["events"] == 6 and after["counts"]["open_rejects"] == 2
    assert after["counts"]["days_awaiting_summary"] == 2
    assert (after["counts"]["open_alerts"], after["counts"]["pending_notifications"],
            after["counts"]["failed_notifications"]) == (0, 0, 0)
    jobs = {j["job"]: j for j in after["jobs"]}
    assert jobs["ingest"]["last_status"] == "success" and jobs["ingest"]["last_trigger"] == "manual"
    assert jobs["summaries"]["last_status"] is None
    table = ok(cli("status", config=config)).stdout
    assert "app" in table and "open_rejects" in table


@freeze_time("2026-11-23T10:00:00Z")
def test_status_counts_each_sources_unattributed_events_of_the_last_days(cli, config, tmp_path) -> None:
    lines = [json.dumps({"request_id": f"anon-{day}", "timestamp": f"{day}T10:00:00Z", "model": "gpt-4o-mini",
                         "provider": "openai", "prompt_tokens": 10, "completion_tokens": 2})
             for day in ("2026-11-01", "2026-11-20", "2026-11-22")]  # no user_id; the 1st is too old to count
    (tmp_path / "inbox" / "anon.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ok(cli("jobs", "run", "ingest", config=config))
    report = as_json(cli("status", "--format", "json", config=config))
    [app] = report["sources"]
    assert (app["events"], app["unattributed"], report["counts"]["unattributed_events"]) == (9, 2, 2)
    assert report["unattributed_since"] == "2026-11-17T00:00:00+01:00"
    table = ok(cli("status", config=config)).stdout
    assert "unattributed" in table and "since 2026-11-17" in table


# --------------------------------------------------------------------------- run: settings checked at start


def test_run_refuses_to_start_on_an_unknown_or_bad_schedule(cli, tmp_path, db_url) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[schedule]\nnightly_report = "0 9 * * *"\n', encoding="utf-8")
    result = cli("run", config=cfg)
    assert result.exit_code == 2 and "schedule.nightly_report: no such job" in result.output
    cfg.write_text('[schedule]\nsummaries_nightly = "0 25 * * *"\n', encoding="utf-8")
    result = cli("run", config=cfg)
    assert result.exit_code == 2 and "schedule.summaries_nightly:" in result.output
    assert count_rows(db_url, JobRun) == 0
