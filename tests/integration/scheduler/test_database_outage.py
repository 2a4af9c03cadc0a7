"""A database that goes away: noticed by the daemon's health check, announced without the outbox,
recorded once it is back; runs of a daemon that went away interrupted and their tick taken over.

PostgreSQL goes away behind a loopback TCP proxy (``tests.tcp_proxy``) that is cut: new
connections are refused and those in flight closed; the shared server is never touched.
SQLite goes away by moving its directory: a new connection cannot open the file (one
already open keeps working, which is why the health check opens a fresh one).
"""

from __future__ import annotations

import email
import json
import email.policy
import shutil
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from freezegun import freeze_time
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.engine import make_url

from reports.direct import DirectAlarm
from tests.helpers import utc
from tests.tcp_proxy import TcpProxy
from worker import clock, db
from worker.models import Alert, Daemon as DaemonRow, JobRun, Outage
from worker.registry import JobContext, JobSpec
from worker.scheduler import Daemon
from worker.status import status


@dataclass
class Away:
    """The test database behind something that can take it away."""

    url: str
    cut: Callable[[], None]
    restore: Callable[[], None]


@pytest.fixture
def away(db_url: str, tmp_path: Path) -> Iterator[Away]:
    if db_url.startswith("sqlite"):
        folder, gone = tmp_path / "db", tmp_path / "db-moved-away"
        folder.mkdir()
        shutil.copyfile(db.sqlite_file(db_url), folder / "tokentally.db")
        yield Away(f"sqlite:///{folder / 'tokentally.db'}", lambda: folder.rename(gone), lambda: gone.rename(folder))
        return
    parsed = make_url(db_url)
    proxy = TcpProxy((parsed.host, parsed.port or 5432))
    yield Away(parsed.set(port=proxy.port).render_as_string(hide_password=False), proxy.cut, proxy.restore)
    proxy.close()


@pytest.fixture
def outage_settings(make_settings: Callable[..., Any], away: Away, tmp_path: Path) -> Callable[..., Any]:
    def factory(extra: str = "") -> Any:
        toml = f"""
[channels.file]
dir = "{tmp_path / 'outbox'}"

[daemon]
health_check = "1s"
heartbeat_timeout = "2m"
state_file = "{tmp_path / 'state' / 'daemon.json'}"
{extra}
"""
        return make_settings(toml, database_url=away.url)
    return factory


@pytest.fixture
def outage_engine(away: Away) -> Iterator[Engine]:
    engine = db.make_engine(away.url)
    yield engine
    engine.dispose()


def messages(folder: Path) -> dict[str, email.message.EmailMessage]:
    return {p.name: email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(folder.glob("*.eml"))}


def rows(engine: Engine, model: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(model).order_by(model.id)).all())


# --------------------------------------------------------------------------- an outage


def test_an_outage_is_announced_once_and_its_skipped_ticks_recorded_when_the_database_is_back(
        away: Away, outage_settings: Callable[..., Any], outage_engine: Engine, tmp_path: Path) -> None:
    settings = outage_settings()
    daemon = Daemon(settings, outage_engine, alarm=DirectAlarm(settings))
    daemon.setup()
    outbox, state_file = tmp_path / "outbox", tmp_path / "state" / "daemon.json"
    with freeze_time("2026-12-01T10:00:30Z") as frozen:
        assert daemon.health.check() is True and not daemon.health.down
        away.cut()
        frozen.move_to("2026-12-01T10:01:05Z")
        assert daemon.health.check() is False and daemon.health.down
        daemon._fire("ingest")  # known down: not tried, kept as skipped
        frozen.move_to("2026-12-01T10:02:05Z")
        daemon._fire("ingest")  # known down: not even tried
        daemon.health.check()  # still down: nothing sent again
        sent = messages(outbox)
        assert len(sent) == 1
        [unreachable] = sent.values()
        assert "CRITICAL: system.database_unreachable alert for system database" in unreachable["subject"]
        body = unreachable.get_body(("plain",)).get_content()
        assert "has been unreachable since 2026-12-01 10:01:05 UTC" in body
        assert state_file.exists()  # the outage survives a restart of the daemon

        frozen.move_to("2026-12-01T10:02:35Z")
        away.restore()
        assert daemon.health.check() is True and not daemon.health.down

    runs = rows(outage_engine, JobRun)
    skipped = [(r.job, r.scheduled_for, r.status, r.error) for r in runs]
    assert skipped == [("ingest", utc("2026-12-01T10:01:00Z"), "skipped", "skipped: database unreachable"),
                       ("ingest", utc("2026-12-01T10:02:00Z"), "skipped", "skipped: database unreachable")]
    [outage] = rows(outage_engine, Outage)
    assert (outage.started_at, outage.ended_at, outage.skipped_runs) == (
        utc("2026-12-01T10:01:05Z"), utc("2026-12-01T10:02:35Z"), 2)
    assert outage.alerted_at == utc("2026-12-01T10:01:05Z") and outage.daemon == daemon.id
    assert outage.alerts == {"file:": {"unreachable": {"status": "sent", "attempts": 1, "sent_at": outage.alerts[
        "file:"]["unreachable"]["sent_at"], "external_id": str(outbox / next(iter(sent)))},
        "resolved": outage.alerts["file:"]["resolved"]}}
    assert outage.alerts["file:"]["resolved"]["status"] == "sent"
    resolved = [m for name, m in messages(outbox).items() if name not in sent]
    assert len(resolved) == 1 and "Resolved: system.database_unreachable" in resolved[0]["subject"]
    assert "was unreachable for 90 s" in resolved[0].get_body(("plain",)).get_content()
    assert not state_file.exists()
    # the latest skipped tick is run again at once (a takeover), rather than at the next minute
    assert daemon.scheduler.get_job("takeover:ingest") is not None

    report = status(settings, outage_engine)
    ingest = next(j for j in report["jobs"] if j["job"] == "ingest")
    assert ingest["last_status"] == "skipped" and ingest["last_success_at"] is None
    assert ingest["last_error"] == "skipped: database unreachable"
    assert report["outages"][0]["seconds"] == 90 and report["outages"][0]["skipped_runs"] == 2


def test_a_daemon_restarted_during_the_outage_does_not_announce_it_again_and_records_what_the_first_kept(
        away: Away, outage_settings: Callable[..., Any], outage_engine: Engine, tmp_path: Path) -> None:
    settings = outage_settings()
    first = Daemon(settings, outage_engine, alarm=DirectAlarm(settings))
    first.setup()
    with freeze_time("2026-12-01T10:00:30Z") as frozen:
        first.health.check()
        away.cut()
        frozen.move_to("2026-12-01T10:01:05Z")
        first.health.check()
        first._fire("ingest")
        assert len(messages(tmp_path / "outbox")) == 1
        # the first daemon is gone (killed, say): a new one starts with the same state file
        second = Daemon(settings, outage_engine, alarm=DirectAlarm(settings))
        second.setup()
        frozen.move_to("2026-12-01T10:02:05Z")
        assert second.health.check() is False
        second._fire("ingest")
        assert len(messages(tmp_path / "outbox")) == 1  # the same outage: not announced twice
        frozen.move_to("2026-12-01T10:03:10Z")
        away.restore()
        assert second.health.check() is True

    assert [(r.scheduled_for, r.status, r.owner) for r in rows(outage_engine, JobRun)] == [
        (utc("2026-12-01T10:01:00Z"), "skipped", first.id), (utc("2026-12-01T10:02:00Z"), "skipped", second.id)]
    [outage] = rows(outage_engine, Outage)
    assert (outage.daemon, outage.started_at, outage.skipped_runs) == (first.id, utc("2026-12-01T10:01:05Z"), 2)
    assert len(messages(tmp_path / "outbox")) == 2  # and one resolved


def test_a_daemon_started_while_the_database_is_away_announces_it_and_waits(
        away: Away, outage_settings: Callable[..., Any], outage_engine: Engine, tmp_path: Path) -> None:
    settings = outage_settings()
    daemon = Daemon(settings, outage_engine, alarm=DirectAlarm(settings))
    away.cut()
    timer = threading.Timer(1.5, away.restore)
    timer.start()
    try:
        assert daemon.wait_for_database() is True  # health checks every 1s until it answers
    finally:
        timer.join()
    names = sorted(p.name for p in (tmp_path / "outbox").glob("*.eml"))
    assert len(names) == 2 and sum(n.endswith("-resolved.eml") for n in names) == 1
    [outage] = rows(outage_engine, Outage)
    assert outage.skipped_runs == 0 and outage.ended_at > outage.started_at


def test_the_unreachable_alert_goes_by_email_with_the_file_channel_beside_it(
        away: Away, outage_settings: Callable[..., Any], outage_engine: Engine, tmp_path: Path,
        mailbox: Any) -> None:
    box, port = mailbox
    settings = outage_settings(f"""
[channels.email]
smtp_host = "127.0.0.1"
smtp_port = {port}
sender = "tokentally@example.com"
timeout_seconds = 5

[[routes]]
kinds = ["system.*"]
to = ["email:oncall@example.com"]
""")
    daemon = Daemon(settings, outage_engine, alarm=DirectAlarm(settings))
    daemon.health.check()
    away.cut()
    daemon.health.check()
    daemon.health.check()
    [mail] = box.mails()
    assert mail["To"] == "oncall@example.com" and "system.database_unreachable" in mail["Subject"]
    assert "has been unreachable since" in mail.get_body(("plain",)).get_content()
    # no route sends this kind to a file: the fallback target (the file channel always works) gets it too
    assert len(messages(tmp_path / "outbox" / "delivery-failed")) == 1
    away.restore()
    daemon.health.check()
    assert len(box.mails()) == 2 and box.mails()[1]["Subject"].startswith("[tokentally] Resolved:")


def test_a_run_that_dies_with_its_connection_is_recorded_failed_with_its_job_failed_alert(
        away: Away, outage_settings: Callable[..., Any], outage_engine: Engine, db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("a SQLite connection already open keeps its file: only a server can cut a run's connection")
    settings = outage_settings()
    daemon = Daemon(settings, outage_engine, alarm=DirectAlarm(settings))

    def cut_midway(ctx: JobContext) -> dict[str, Any]:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            away.cut()
            conn.execute(text("SELECT 1"))  # the server is gone under the run
        return {}

    spec = JobSpec("doomed", cut_midway, "every 1m", "dies with its connection")
    daemon.health.check()
    tick = clock.now().replace(second=0, microsecond=0)
    assert daemon._run(spec, "schedule", tick) is None
    direct = db.make_engine(db_url)  # not through the proxy: the row is still running
    with direct.connect() as conn:
        assert conn.execute(select(JobRun.status).where(JobRun.job == "doomed")).scalar_one() == "running"
    assert daemon.health.check() is False
    away.restore()
    assert daemon.health.check() is True
    with direct.connect() as conn:
        run = conn.execute(select(JobRun).where(JobRun.job == "doomed")).one()
        alert = conn.execute(select(Alert).where(Alert.kind == "job.failed")).one()
    direct.dispose()
    assert run.status == "failed" and run.finished_at is not None
    assert run.error.startswith("database unreachable during the run: ")
    assert alert.scope_id == "doomed" and alert.payload["run_id"] == run.id


def test_a_claim_that_cannot_be_written_is_kept_as_skipped_and_checks_at_once(
        away: Away, outage_settings: Callable[..., Any], outage_engine: Engine, db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("the daemon's open SQLite connection still reaches the moved file: the claim succeeds")
    settings = outage_settings()
    daemon = Daemon(settings, outage_engine, alarm=DirectAlarm(settings))
    daemon.setup()
    daemon.health.check()
    with outage_engine.connect() as conn:  # the pool holds a connection, which the cut closes
        conn.execute(text("SELECT 1"))
    away.cut()
    daemon._fire("ingest")  # before any health check noticed
    assert daemon.health._wake.is_set() and not daemon.health.down
    assert [r["kind"] for r in daemon.health.pending] == ["skipped"]
    away.restore()
    daemon.health.check()  # the blip is over before the check: recorded, no outage to announce
    [run] = rows(outage_engine, JobRun)
    assert (run.status, run.error) == ("skipped", "skipped: database unreachable")
    assert rows(outage_engine, Outage) == []


def test_a_tick_apscheduler_skips_while_the_previous_run_is_in_hand_gets_its_row(
        outage_settings: Callable[..., Any], outage_engine: Engine) -> None:
    daemon = Daemon(outage_settings(), outage_engine)
    daemon.setup()
    daemon._tick_while_busy(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "ingest", "default",
                                               [utc("2026-12-01T10:03:00Z")]))
    [run] = rows(outage_engine, JobRun)
    assert (run.job, run.scheduled_for, run.status, run.error) == (
        "ingest", utc("2026-12-01T10:03:00Z"), "skipped", "skipped: the previous run was still in hand")


# --------------------------------------------------------------------------- a daemon that went away


def test_a_tick_claimed_by_a_daemon_whose_heartbeat_is_gone_is_taken_over_and_run_once(
        outage_settings: Callable[..., Any], outage_engine: Engine) -> None:
    settings = outage_settings()
    with freeze_time("2026-12-01T10:05:10Z"):
        now = clock.now()
        with outage_engine.begin() as conn:  # a daemon killed (-9) in the middle of its 10:05 ingest
            conn.execute(insert(DaemonRow).values(id="killed", host="h", pid=1, started_at=now - timedelta(hours=1),
                                                  last_seen=now - timedelta(minutes=3)))
            conn.execute(insert(JobRun).values(job="ingest", scheduled_for=utc("2026-12-01T10:05:00Z"),
                                               trigger="schedule", started_at=now - timedelta(minutes=3),
                                               status="running", owner="killed"))
        restarted = Daemon(settings, outage_engine)
        restarted.setup()
        restarted._fire("ingest")
    [run] = [r for r in rows(outage_engine, JobRun) if r.job == "ingest"]
    assert (run.status, run.trigger, run.owner, run.finished_at is not None) == (
        "success", "takeover", restarted.id, True)
    # its first heartbeat marked the orphan interrupted; then the tick was taken over
    assert run.stats["took_over"] == {
        "status": "interrupted", "owner": "killed", "started_at": "2026-12-01T10:02:10+00:00",
        "error": "interrupted: daemon killed went away (last heartbeat 2026-12-01T10:02:10+00:00) while this run "
                 "was in hand"}


def test_a_tick_in_hand_under_a_live_daemon_is_not_taken(
        outage_settings: Callable[..., Any], outage_engine: Engine) -> None:
    settings = outage_settings()
    with freeze_time("2026-12-01T10:05:10Z"):
        busy = Daemon(settings, outage_engine)
        busy.health.check()  # its heartbeat is fresh
        with outage_engine.begin() as conn:
            conn.execute(insert(JobRun).values(job="ingest", scheduled_for=utc("2026-12-01T10:05:00Z"),
                                               trigger="schedule", started_at=clock.now(), status="running",
                                               owner=busy.id))
        other = Daemon(settings, outage_engine)
        other.setup()
        other._fire("ingest")
    # (ingest is a shared job: the other daemon ingests too, as a run of its own, unclaimed)
    [run] = [r for r in rows(outage_engine, JobRun) if r.job == "ingest" and r.trigger != "shared"]
    assert (run.status, run.owner) == ("running", busy.id)


def test_the_runs_of_a_daemon_gone_are_interrupted_and_its_latest_cron_tick_run_again(
        outage_settings: Callable[..., Any], outage_engine: Engine) -> None:
    settings = outage_settings()
    with freeze_time("2026-12-01T09:01:00Z") as frozen:
        killed = Daemon(settings, outage_engine)
        killed.health.check()
        with outage_engine.begin() as conn:  # killed during the 09:00 daily report
            conn.execute(insert(JobRun).values(job="daily_report", scheduled_for=utc("2026-12-01T09:00:00Z"),
                                               trigger="schedule", started_at=clock.now(), status="running",
                                               owner=killed.id))
        survivor = Daemon(settings, outage_engine)
        survivor.setup()
        assert "daily_report" not in dict(survivor.catch_up())  # its owner may still be at work
        survivor.health.check()
        assert [r.status for r in rows(outage_engine, JobRun)] == ["running"]
        frozen.move_to("2026-12-01T09:03:30Z")  # no heartbeat from it for more than 2m
        survivor.health.check()
        [run] = rows(outage_engine, JobRun)
        assert run.status == "interrupted" and run.error.startswith(f"interrupted: daemon {killed.id} went away")
        assert dict(survivor.catch_up())["daily_report"] == utc("2026-12-01T09:00:00Z")  # and at a restart
        assert survivor.scheduler.get_job("takeover:daily_report") is not None
        survivor._run_missed("daily_report", utc("2026-12-01T09:00:00Z"))
    [run] = rows(outage_engine, JobRun)
    assert (run.status, run.trigger, run.owner) == ("success", "takeover", survivor.id)
    assert run.stats["took_over"]["status"] == "interrupted"


def test_a_clean_stop_says_so_and_its_runs_are_never_orphans(
        outage_settings: Callable[..., Any], outage_engine: Engine) -> None:
    settings = outage_settings()
    daemon = Daemon(settings, outage_engine)
    daemon.health.check()
    daemon.health.close()
    [row] = rows_by_id(outage_engine)
    assert row.id == daemon.id and row.stopped_at is not None


def rows_by_id(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(DaemonRow)).all())


def test_status_shows_the_outage_and_that_the_last_ingest_did_not_succeed(cli: Any, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(JobRun).values(job="ingest", scheduled_for=utc("2026-12-01T10:00:00Z"), trigger="manual",
                                           started_at=utc("2026-12-01T10:00:01Z"), status="success"))
        conn.execute(insert(JobRun).values(job="ingest", scheduled_for=utc("2026-12-01T10:01:00Z"), trigger="schedule",
                                           started_at=utc("2026-12-01T10:01:00Z"), status="skipped",
                                           error="skipped: database unreachable", owner="d1"))
        conn.execute(insert(Outage).values(daemon="d1", started_at=utc("2026-12-01T10:00:40Z"),
                                           alerted_at=utc("2026-12-01T10:00:41Z"),
                                           ended_at=utc("2026-12-01T10:01:40Z"), skipped_runs=1, error="refused"))
    table = cli("status")
    assert table.exit_code == 0, table.output
    assert "database outages" in table.stdout and "skipped: database unreachable" in table.stdout
    report = json.loads(cli("status", "--format", "json").stdout)
    ingest = next(j for j in report["jobs"] if j["job"] == "ingest")
    assert (ingest["last_status"], ingest["last_success_at"]) == ("skipped", "2026-12-01T10:00:01+00:00")
    assert report["outages"] == [{"started_at": "2026-12-01T10:00:40+00:00", "ended_at": "2026-12-01T10:01:40+00:00",
                                  "seconds": 60, "alerted_at": "2026-12-01T10:00:41+00:00", "skipped_runs": 1,
                                  "daemon": "d1", "error": "refused"}]


def test_status_says_what_the_daemon_holds_while_the_database_is_away(cli: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"outage": {"started_at": "2026-12-01T10:00:40+00:00", "ended_at": None,
                                            "error": "connection refused"},
                                 "pending": [{"kind": "skipped"}, {"kind": "skipped"}]}), encoding="utf-8")
    done = cli("status", env={"TOKENTALLY_DAEMON_STATE_FILE": str(state)})
    assert ("the database has been unreachable since 2026-12-01T10:00:40+00:00 (connection refused); "
            "2 run record(s) wait to be written") in " ".join(done.stderr.split())
    assert done.exit_code == 0  # this database answers: the rest of status as usual
