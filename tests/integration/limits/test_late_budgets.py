"""Late data for a closed window is judged: ingest marks the closed local days that got new
usage, the budgets job evaluates their windows and raises the alerts that would have been
raised, once, marked as found late; ``jobs run budgets --date D`` evaluates D's windows.
On SQLite and PostgreSQL; time frozen through ``worker.clock.now()``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, select

from tests.helpers import PRICES, alert_sentence, ingest, record, utc
from worker.limits import late
from worker.limits.accounts import set_account
from worker.models import Alert, BudgetPendingDay
from worker.registry import registry
from worker.scheduler import run_job
from worker.settings import Settings

TIERS = """
timezone = "Europe/Berlin"
default_tier = "student"

[tiers.student]
daily_tokens = 10000
action = "warn"

[tiers.lesson_builder]
daily_tokens = 100000
action = "block"
""" + PRICES


@pytest.fixture
def settings(make_settings, engine) -> Settings:
    s = make_settings(TIERS)
    set_account(engine, s, "lb-1", tier="lesson_builder")
    return s


def feed(settings: Settings, engine: Engine, tmp_path: Path, account: str, at: datetime, tokens: int) -> None:
    ingest(settings, engine, tmp_path, [record(at, account=account, prompt=tokens, completion=0)])


def budgets(settings: Settings, engine: Engine, **options: Any) -> dict[str, Any]:
    result = run_job(registry.get("budgets"), settings, engine, **options)
    assert result is not None and result.status == "success", result.error if result else None
    return result.stats


def alerts(engine: Engine) -> dict[tuple[str, str], Any]:
    with engine.connect() as conn:
        return {(a.scope_id, a.period): a for a in conn.execute(select(Alert).where(Alert.kind == "budget.account"))}


@freeze_time("2026-12-01T08:00:00Z")
def test_usage_ingested_for_a_closed_day_raises_its_alerts_once_marked_as_found_late(settings, engine,
                                                                                     tmp_path) -> None:
    feed(settings, engine, tmp_path, "st-1", utc("2026-11-30T11:00:00Z"), 30000)  # a backfill of 11-30
    feed(settings, engine, tmp_path, "lb-1", utc("2026-11-30T12:00:00Z"), 120000)
    feed(settings, engine, tmp_path, "st-2", utc("2026-12-01T07:00:00Z"), 500)  # today's: not late
    with engine.connect() as conn:
        assert late.pending_days(conn) == [datetime(2026, 11, 30).date()]

    stats = budgets(settings, engine)

    assert stats["late"]["days"] == ["2026-11-30"] and stats["late"]["warnings"] == 2
    found = alerts(engine)
    over = found[("st-1", "day 2026-11-30 100%")]
    assert over.payload["found_late"] is True and over.payload["late_day"] == "2026-11-30"
    assert alert_sentence(over).startswith(
        "Found late (usage for 2026-11-30 arrived after the daily window had closed): st-1 (student) was over")
    blocked = found[("lb-1", "day 2026-11-30 100%")]
    assert blocked.severity == "critical"
    assert "the window had already reset, so no call was blocked" in alert_sentence(blocked)
    with engine.connect() as conn:
        assert conn.execute(select(BudgetPendingDay)).first() is None

    again = budgets(settings, engine)  # the marks are gone: nothing raised twice
    assert again["late"] == {"days": [], "skipped_open_days": [], "windows": 0, "warnings": 0}
    feed(settings, engine, tmp_path, "st-1", utc("2026-11-30T13:00:00Z"), 1000)  # more late data, same levels
    assert budgets(settings, engine)["late"]["warnings"] == 0
    with engine.connect() as conn:
        assert {a.period: a.times_seen for a in conn.execute(select(Alert).where(Alert.scope_id == "st-1"))} == {
            "day 2026-11-30 100%": 1}


def test_jobs_run_budgets_with_a_date_evaluates_that_days_windows(settings, engine, tmp_path, cli) -> None:
    with freeze_time("2026-11-30T11:00:00Z"):
        feed(settings, engine, tmp_path, "st-1", utc("2026-11-30T10:00:00Z"), 30000)  # same-day: not pending
    cfg = tmp_path / "cli.toml"
    cfg.write_text(TIERS, encoding="utf-8")
    with freeze_time("2026-12-01T08:00:00Z"):  # no budgets run saw 11-30
        result = cli("jobs", "run", "budgets", "--date", "2026-11-30", "--format", "json", config=cfg)
        assert result.exit_code == 0, result.output
        out = orjson.loads(result.stdout)
        today = orjson.loads(cli("jobs", "run", "budgets", "--date", "2026-12-01", "--format", "json",
                                 config=cfg).stdout)
    assert out["late"]["days"] == ["2026-11-30"] and out["late"]["warnings"] == 1
    assert alerts(engine)[("st-1", "day 2026-11-30 100%")].payload["found_late"] is True
    assert today["late"]["skipped_open_days"] == ["2026-12-01"]  # today's windows: the regular evaluation's
