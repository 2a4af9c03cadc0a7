"""The job registry, schedules, recorded runs, catch-up and replicas, on SQLite and PostgreSQL.

Time is frozen through ``worker.clock.now()`` (freezegun). Jobs are fired by calling
the daemon's fire/catch-up methods directly, never by waiting on the scheduler thread;
only the signal tests start a real daemon, in a subprocess.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from freezegun import freeze_time
from sqlalchemy import create_engine, func, select, text

from tests.helpers import run_together
from worker import db
from worker.models import JobRun, UsageEvent
from worker.registry import DuplicateJobError, JobContext, JobFailed, JobSpec, Registry, registry
from worker.scheduler import MISFIRE_GRACE, Daemon, latest_fire_time, make_trigger, previous_fire_time, run_job, validate_schedule
from worker.settings import Settings, SettingsError


def utc(text_: str) -> datetime:
    return datetime.fromisoformat(text_).astimezone(UTC)


def runs(engine) -> list[JobRun]:
    with engine.connect() as conn:
        return list(conn.execute(select(JobRun).order_by(JobRun.id)).all())


# --------------------------------------------------------------------------- registry


def test_duplicate_job_id_is_an_error_at_registration() -> None:
    reg = Registry()

    @reg.register("nightly", schedule="0 3 * * *", description="first")
    def first(ctx: JobContext) -> dict[str, Any]:
        return {}

    with pytest.raises(DuplicateJobError, match="'nightly' registered twice"):
        @reg.register("nightly", schedule="0 4 * * *", description="second")
        def second(ctx: JobContext) -> dict[str, Any]:
            return {}


def test_registry_loads_every_job_module_and_names_unknown_jobs() -> None:
    ids = [spec.id for spec in registry.all()]
    assert {"ingest", "summaries", "summaries_nightly"} <= set(ids)
    assert ids == sorted(ids)
    with pytest.raises(KeyError, match="no job named 'nope'.*ingest"):
        registry.get("nope")


# --------------------------------------------------------------------------- schedules


def test_schedule_expressions() -> None:
    berlin = Settings(timezone="Europe/Berlin")
    every = make_trigger("every 90s", berlin, "schedule.x")
    assert isinstance(every, IntervalTrigger) and every.interval == timedelta(seconds=90)
    assert make_trigger("every 5m", berlin, "k").interval == timedelta(minutes=5)
    cron = make_trigger("30 2 * * *", berlin, "k")
    assert isinstance(cron, CronTrigger) and str(cron.timezone) == "Europe/Berlin"
    assert make_trigger(" off ", berlin, "k") is None
    for bad in ("every", "every 0s", "every 5 minutes", "61 * * * *", "* * *", "daily"):
        with pytest.raises(SettingsError, match=r"^schedule\.summaries:"):
            make_trigger(bad, berlin, "schedule.summaries")


def test_interval_fire_times_are_aligned_so_replicas_agree() -> None:
    trig = make_trigger("every 5m", Settings(), "k")
    assert latest_fire_time(trig, utc("2026-11-23T10:07:31+00:00"), MISFIRE_GRACE) == utc("2026-11-23T10:05:00+00:00")
    assert trig.get_next_fire_time(None, utc("2026-11-23T10:07:31+00:00")) == utc("2026-11-23T10:10:00+00:00")


def test_cron_fire_times_are_local_and_run_once_across_dst() -> None:
    berlin = Settings(timezone="Europe/Berlin")
    nightly = make_trigger("30 2 * * *", berlin, "k")

    def fires(trig, start: str, count: int) -> list[str]:
        out, prev, now = [], None, utc(start)
        for _ in range(count):
            prev = trig.get_next_fire_time(prev, now)
            out.append(prev.astimezone(UTC).strftime("%m-%d %H:%M"))
            now = prev.astimezone(UTC) + timedelta(seconds=1)
        return out

    # 02:30 local: 01:30 UTC in winter, 00:30 in summer
    assert fires(nightly, "2026-03-27T12:00:00+00:00", 4) == ["03-28 01:30", "03-29 01:30", "03-30 00:30",
                                                               "03-31 00:30"]
    # the night 02:00-03:00 happens twice: a fixed-hour job runs at the first 02:30 only
    assert fires(nightly, "2026-10-24T12:00:00+00:00", 3) == ["10-25 00:30", "10-26 01:30", "10-27 01:30"]
    # an every-hour job runs in both (real, distinct) hours
    hourly = make_trigger("30 * * * *", berlin, "k")
    assert fires(hourly, "2026-10-24T23:00:00+00:00", 4) == ["10-24 23:30", "10-25 00:30", "10-25 01:30",
                                                              "10-25 02:30"]
    # looking back across the repeated hour terminates and finds the last run
    assert previous_fire_time(nightly, utc("2026-11-23T05:00:00+00:00"), timedelta(days=32)) == \
        utc("2026-11-23T01:30:00+00:00")
    assert previous_fire_time(nightly, utc("2026-10-25T01:45:00+00:00"), timedelta(days=2)) == \
        utc("2026-10-25T00:30:00+00:00")


def test_schedule_settings_override_disable_and_fail_with_the_key_named(make_settings) -> None:
    settings = make_settings('[schedule]\nsummaries = "every 10m"\n'
                             'summaries_nightly = { schedule = "0 4 * * *" }\n'
                             'ingest = { enabled = false }\n')
    assert settings.schedule == {"summaries": "every 10m", "summaries_nightly": "0 4 * * *", "ingest": "off"}
    validate_schedule(settings)
    with pytest.raises(SettingsError, match=r"schedule\.nightly: no such job \(jobs: anomalies, budgets, daily_report, "
                                            r"forecast, ingest, integrity, limits, monthly_report, notify, reconcile, "
                                            r"retention, summaries"):
        validate_schedule(make_settings('[schedule]\nnightly = "0 3 * * *"\n'))
    with pytest.raises(SettingsError, match=r"^schedule\.summaries:"):
        validate_schedule(make_settings('[schedule]\nsummaries = "every now and then"\n'))
    with pytest.raises(SettingsError, match=r"schedule\.ingest\.enabled: expected true/false"):
        make_settings('[schedule]\ningest = { enabled = "no" }\n')
    with pytest.raises(SettingsError, match=r"unknown setting\(s\): schedule\.ingest\.cron"):
        make_settings('[schedule]\ningest = { cron = "0 3 * * *" }\n')


@freeze_time("2026-11-23T10:07:00Z")
def test_daemon_schedules_each_enabled_job_with_coalesce_one_instance_and_grace(make_settings, engine) -> None:
    settings = make_settings('timezone = "Europe/Berlin"\n[schedule]\nsummaries = "off"\n')
    daemon = Daemon(settings, engine)
    assert daemon.setup() == ["anomalies", "budgets", "daily_report", "forecast", "ingest", "integrity", "limits",
                              "monthly_report", "notify", "reconcile", "retention", "summaries_nightly",
                              "weekly_report"]
    jobs = {job.id: job for job in daemon.scheduler.get_jobs()}
    assert set(jobs) == {"anomalies", "budgets", "daily_report", "forecast", "ingest", "integrity", "limits",
                         "monthly_report", "notify", "reconcile", "retention", "summaries_nightly", "weekly_report"}
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time == MISFIRE_GRACE.total_seconds()
    assert isinstance(jobs["ingest"].trigger, IntervalTrigger)
    assert str(jobs["summaries_nightly"].trigger.timezone) == "Europe/Berlin"
    assert str(daemon.scheduler.timezone) == "UTC"


# --------------------------------------------------------------------------- recorded runs


def _spec(func, job_id: str = "probe") -> JobSpec:
    return JobSpec(job_id, func, "every 1m", "test job")


def test_every_run_is_recorded_with_its_stats(make_settings, engine) -> None:
    settings = make_settings()
    with freeze_time("2026-11-23T10:00:05Z") as frozen:
        def work(ctx: JobContext) -> dict[str, Any]:
            assert ctx.trigger == "schedule" and ctx.scheduled_for == utc("2026-11-23T10:00:00+00:00")
            frozen.tick(2)
            return {"rows": 3, "cost_usd": "0.25"}

        run = run_job(_spec(work), settings, engine, trigger="schedule",
                      scheduled_for=utc("2026-11-23T10:00:00+00:00"))
    [row] = runs(engine)
    assert row.id == run.id
    assert (row.job, row.trigger, row.status) == ("probe", "schedule", "success")
    assert row.scheduled_for == utc("2026-11-23T10:00:00+00:00")
    assert row.started_at == utc("2026-11-23T10:00:05+00:00")
    assert row.finished_at == utc("2026-11-23T10:00:07+00:00")
    assert row.stats == {"rows": 3, "cost_usd": "0.25"} and row.error is None


def test_a_crashing_job_is_recorded_with_its_traceback_and_logged(make_settings, engine, caplog) -> None:
    def broken(ctx: JobContext) -> dict[str, Any]:
        raise ZeroDivisionError("the numbers are wrong")

    def partial(ctx: JobContext) -> dict[str, Any]:
        raise JobFailed("source x unreadable", {"accepted": 5})

    with caplog.at_level(logging.INFO):
        crashed = run_job(_spec(broken), make_settings(), engine)
        failed = run_job(_spec(partial, "probe2"), make_settings(), engine)
        after = run_job(_spec(lambda ctx: {"ok": 1}, "probe3"), make_settings(), engine)
    assert crashed.status == "failed" and failed.status == "failed" and after.status == "success"
    first, second, third = runs(engine)
    assert first.status == "failed" and first.stats is None and first.finished_at is not None
    assert "Traceback" in first.error and "ZeroDivisionError: the numbers are wrong" in first.error
    assert second.error == "source x unreadable" and second.stats == {"accepted": 5}
    assert third.stats == {"ok": 1}
    crash_logs = [r for r in caplog.records if getattr(r, "action", None) == "job_failed" and r.job == "probe"]
    assert crash_logs and crash_logs[0].exc_info is not None  # logger.exception


def test_a_scheduled_run_is_claimed_once(make_settings, engine) -> None:
    calls = []
    spec = _spec(lambda ctx: calls.append(1) or {})
    fire = utc("2026-11-23T10:00:00+00:00")
    assert run_job(spec, make_settings(), engine, trigger="schedule", scheduled_for=fire) is not None
    assert run_job(spec, make_settings(), engine, trigger="catch-up", scheduled_for=fire) is None
    assert run_job(spec, make_settings(), engine, trigger="schedule", scheduled_for=fire + timedelta(minutes=1))
    # manual runs have no scheduled time and never collide
    assert run_job(spec, make_settings(), engine) and run_job(spec, make_settings(), engine)
    assert len(calls) == 4 and len(runs(engine)) == 4


# --------------------------------------------------------------------------- catch-up

# Not 02:30: freezegun's datetimes lose ``fold``, and APScheduler's cron search then never
# gets past the 02:30 that happens twice on 2026-10-25 (the DST cases above run unfrozen).
# the catch-up tests are about summaries_nightly alone: the other cron jobs (reports) are off
OTHER_CRON_OFF = ('daily_report = "off"\nweekly_report = "off"\nmonthly_report = "off"\nreconcile = "off"\n'
                  'retention = "off"\n')
NIGHTLY_BERLIN = 'timezone = "Europe/Berlin"\n[schedule]\nsummaries_nightly = "30 3 * * *"\n' + OTHER_CRON_OFF


def test_catch_up_runs_a_missed_daily_job_once(make_settings, engine) -> None:
    settings = make_settings(NIGHTLY_BERLIN)
    today_0330 = utc("2026-11-23T03:30:00+01:00")
    with freeze_time("2026-11-23T08:00:00Z"):  # the daemon was down at 03:30 local
        daemon = Daemon(settings, engine)
        daemon.setup()
        assert daemon.catch_up() == [("summaries_nightly", today_0330)]  # interval jobs just run next tick
        daemon._run_missed("summaries_nightly", today_0330)
        [run] = runs(engine)
        assert (run.job, run.trigger, run.status, run.scheduled_for) == \
            ("summaries_nightly", "catch-up", "success", today_0330)
        assert run.stats["from"] == "2026-11-20" and run.stats["to"] == "2026-11-23"
        # restarting the daemon again the same morning does not run it again
        again = Daemon(settings, engine)
        again.setup()
        assert again.catch_up() == []
    with freeze_time("2026-11-24T03:30:20+01:00"):  # the next night's run is the schedule's own
        again._fire("summaries_nightly")
        # ... and a start shortly after it finds nothing missed
        third = Daemon(settings, engine)
        third.setup()
        assert third.catch_up() == []
    assert [(r.trigger, r.scheduled_for) for r in runs(engine)] == \
        [("catch-up", today_0330), ("schedule", utc("2026-11-24T03:30:00+01:00"))]


def test_catch_up_after_days_down_runs_only_the_latest_missed_time(make_settings, engine) -> None:
    settings = make_settings(NIGHTLY_BERLIN)
    with freeze_time("2026-11-19T03:30:01+01:00"):
        d = Daemon(settings, engine)
        d.setup()
        d._fire("summaries_nightly")
    with freeze_time("2026-11-23T02:00:00+01:00"):  # down since the 19th; today's 03:30 not yet due
        d = Daemon(settings, engine)
        d.setup()
        assert d.catch_up() == [("summaries_nightly", utc("2026-11-22T03:30:00+01:00"))]


def test_catch_up_of_a_monthly_job_and_a_scheduled_fire_of_the_same_time(make_settings, engine) -> None:
    settings = make_settings('timezone = "America/New_York"\n[schedule]\nsummaries_nightly = "0 6 1 * *"\n'
                             + OTHER_CRON_OFF)
    first_of_month = utc("2026-11-01T06:00:00-05:00")
    with freeze_time("2026-11-20T12:00:00Z"):
        d = Daemon(settings, engine)
        d.setup()
        assert d.catch_up() == [("summaries_nightly", first_of_month)]
        d._run_missed("summaries_nightly", first_of_month)
    with freeze_time(first_of_month + timedelta(minutes=3)):
        d._fire("summaries_nightly")  # a late scheduled fire of the same time: already claimed
    assert [(r.trigger, r.scheduled_for) for r in runs(engine)] == [("catch-up", first_of_month)]


# --------------------------------------------------------------------------- replicas


def test_two_daemons_on_one_database_run_each_scheduled_run_once(make_settings, db_url) -> None:
    settings = make_settings(NIGHTLY_BERLIN)
    engines = [db.make_engine(db_url), db.make_engine(db_url)]
    daemons = [Daemon(settings, e) for e in engines]
    try:
        with freeze_time("2026-11-23T03:30:00.400+01:00"):
            for d in daemons:
                d.setup()
            # both replicas' schedulers fire every job at the same moment
            run_together([lambda d=d, j=j: d._fire(j) for d in daemons for j in ("ingest", "summaries",
                                                                          "summaries_nightly")])
            # and both, had they just started, would catch up nothing
            assert [d.catch_up() for d in daemons] == [[], []]
        with freeze_time("2026-11-23T02:35:00.100Z"):  # the next ingest tick, both replicas again
            for d in daemons:  # their heartbeats (each minute's health checks, in a live daemon)
                d.health.check()
            run_together([lambda d=d: d._fire("ingest") for d in daemons])
        rows = runs(engines[0])
        # ingest is a shared job: the replica that lost a tick's claim ran it too, unclaimed (its
        # files are divided by leases), and nothing follows that run
        shared = [r for r in rows if r.trigger == "shared"]
        assert [(r.job, r.scheduled_for, r.status) for r in shared] == [("ingest", None, "success")] * 2
        rows = [r for r in rows if r.trigger != "shared"]
        fired = sorted((r.job, r.scheduled_for) for r in rows)
        assert fired == [("budgets", utc("2026-11-23T02:30:00+00:00")), ("budgets", utc("2026-11-23T02:35:00+00:00")),
                         ("ingest", utc("2026-11-23T02:30:00+00:00")), ("ingest", utc("2026-11-23T02:35:00+00:00")),
                         ("summaries", utc("2026-11-23T02:30:00+00:00")),
                         ("summaries_nightly", utc("2026-11-23T02:30:00+00:00"))]
        assert all(r.status == "success" and r.trigger in ("schedule", "after:ingest") for r in rows), [(r.job, r.status, r.trigger, r.error, r.stats) for r in rows]
    finally:
        for e in engines:
            e.dispose()


def test_a_replica_skips_a_run_the_other_is_still_doing(make_settings, db_url) -> None:
    """The claim is the first thing committed, so a slow run is never started twice."""
    settings = make_settings()
    engines = [db.make_engine(db_url), db.make_engine(db_url)]
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow(ctx: JobContext) -> dict[str, Any]:
        calls.append(ctx.engine)
        started.set()
        assert release.wait(30)
        return {"done": True}

    fire = utc("2026-11-23T10:00:00+00:00")
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(
        run_job(_spec(slow), settings, engines[0], trigger="schedule", scheduled_for=fire)))
    try:
        worker.start()
        assert started.wait(30)
        assert run_job(_spec(slow), settings, engines[1], trigger="schedule", scheduled_for=fire) is None
        release.set()
        worker.join(30)
        assert results[0].status == "success" and calls == [engines[0]]
        [row] = runs(engines[1])
        assert row.status == "success" and row.stats == {"done": True}
    finally:
        release.set()
        for e in engines:
            e.dispose()


# --------------------------------------------------------------------------- signals (a real daemon)


def _daemon(tmp_path: Path, db_url: str, inbox: Path, extra: str = "") -> subprocess.Popen[str]:
    cfg = tmp_path / "daemon.toml"
    cfg.write_text(f'[ingest]\nbatch_size = 2000\n[logging]\nformat = "json"\n'
                   f'[[sources]]\nname = "inbox"\nkind = "jsonl"\npath = "{inbox}/*.jsonl"\n{extra}',
                   encoding="utf-8")
    env = {**os.environ, "TOKENTALLY_CONFIG": str(cfg), "TOKENTALLY_DATABASE_URL": db_url}
    return subprocess.Popen([sys.executable, "-m", "cli", "run"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@functools.cache
def _inbox_lines(lines: int) -> bytes:
    """The big file's content, made once per session (the json.dumps of 120,000 lines is ~0.5 s)."""
    return "".join(json.dumps({"request_id": f"r{i}", "timestamp": "2026-11-22T12:00:00Z", "model": "gpt-4o-mini",
                               "provider": "openai", "account_id": f"a{i % 50}", "prompt_tokens": 100 + i % 7,
                               "completion_tokens": 20}) + "\n" for i in range(lines)).encode("utf-8")


def _write_inbox(inbox: Path, lines: int) -> None:
    inbox.mkdir()
    (inbox / "big.jsonl").write_bytes(_inbox_lines(lines))


def _count_events(url: str) -> int:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one()
    finally:
        engine.dispose()


def _wait_for_events(proc: subprocess.Popen[str], url: str, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        count = _count_events(url)
        if count:
            return count
        time.sleep(0.05)
    raise AssertionError("the daemon ingested nothing")


LINES = 120_000


def _signal_midway(tmp_path: Path, db_url: str, *signals: signal.Signals) -> tuple[int, str]:
    """Start a daemon on a big file, send the signals once it has committed a batch: (exit code, log)."""
    inbox = tmp_path / "inbox"
    _write_inbox(inbox, LINES)
    proc = _daemon(tmp_path, db_url, inbox)
    log: list[str] = []  # the daemon's log lines, read as they come (a pipe left unread would fill)
    reader = threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        _wait_for_events(proc, db_url)
        for n, sig in enumerate(signals):
            if n:  # Python coalesces two signals that arrive before its handler runs: wait until the
                # first was handled (the daemon said it is stopping), as a user pressing ^C twice does
                deadline = time.monotonic() + 20
                while not any("daemon_stopping" in line for line in list(log)) and proc.poll() is None:
                    assert time.monotonic() < deadline, "".join(log)
                    time.sleep(0.01)
            proc.send_signal(sig)
        proc.wait(timeout=20)  # "within a few seconds"; the bound only catches a hang
    finally:
        proc.kill()
        reader.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    return proc.returncode, "".join(log)


def _ingest_the_rest(tmp_path: Path, db_url: str) -> Any:
    """The next ingest, as the next daemon start would run it."""
    from worker.ingest.ingestor import Ingestor
    from worker.settings import load

    settings = load(tmp_path / "daemon.toml", env={"TOKENTALLY_DATABASE_URL": db_url})
    engine = db.make_engine(db_url)
    try:
        return Ingestor(settings, engine).ingest_source(settings.sources[0])
    finally:
        engine.dispose()


def test_sigterm_finishes_the_batch_in_hand_and_exits_0(tmp_path: Path, db_url: str) -> None:
    code, err = _signal_midway(tmp_path, db_url, signal.SIGTERM)
    assert code == 0, err
    actions = [json.loads(line).get("action") for line in err.splitlines() if line.startswith("{")]
    assert "daemon_stopping" in actions and actions[-1] == "daemon_stopped"
    stopped_at = _count_events(db_url)
    assert 0 < stopped_at < LINES  # it stopped part way, after a committed batch
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            ingest_runs = conn.execute(select(JobRun).where(JobRun.job == "ingest")).all()
    finally:
        engine.dispose()
    assert [r.status for r in ingest_runs] == ["success"]
    assert ingest_runs[0].stats["accepted"] == stopped_at
    # the next run resumes from the checkpoint: nothing lost, nothing twice
    stats = _ingest_the_rest(tmp_path, db_url)
    assert stats.accepted == LINES - stopped_at and stats.duplicates == 0
    assert _count_events(db_url) == LINES


def test_a_second_signal_exits_at_once(tmp_path: Path, db_url: str) -> None:
    code, err = _signal_midway(tmp_path, db_url, signal.SIGINT, signal.SIGINT)
    assert code == 1, err
    assert "second signal: exiting now" in err
    # what was committed stays committed, and the next run reads on from the last
    # checkpoint: the batch cut off is read again and counted once
    committed = _count_events(db_url)
    assert committed < LINES
    stats = _ingest_the_rest(tmp_path, db_url)
    assert stats.accepted == LINES - committed
    assert _count_events(db_url) == LINES


def test_a_daemon_start_catches_up_and_stops_cleanly_when_idle(tmp_path: Path, db_url: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = _daemon(tmp_path, db_url, inbox)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            engine = create_engine(db.normalise_url(db_url))
            try:
                with engine.connect() as conn:
                    done = conn.execute(text("SELECT job, trigger FROM job_runs WHERE status = 'success'")).all()
            finally:
                engine.dispose()
            if {("ingest", "schedule"), ("summaries_nightly", "catch-up")} <= set(map(tuple, done)):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        else:
            raise AssertionError(f"expected an ingest and a caught-up nightly run, got {done}")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
