"""Records dated ahead of now: quarantined past ``ingest.max_future``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from worker.ingest.ingestor import Ingestor
from worker.models import IngestReject, SourceStatus, UsageEvent
from worker.settings import SettingsError

NOW = "2026-12-01T12:00:00Z"


def record(event_id: str, occurred_at: str) -> dict[str, object]:
    return {"event_id": event_id, "occurred_at": occurred_at, "account_id": "acct-1", "model": "gpt-4o-mini",
            "prompt_tokens": 10, "completion_tokens": 5}


@freeze_time(NOW)
def test_a_record_dated_a_century_ahead_is_quarantined_and_does_not_move_freshness(engine, make_settings, tmp_path):
    log = tmp_path / "usage.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in (
        record("today", "2026-12-01T11:00:00Z"),
        record("tomorrow-ish", "2026-12-02T11:00:00Z"),  # 23 h ahead: within the default 1d
        record("far", "2126-12-01T11:00:00Z"))))

    stats = Ingestor(make_settings(), engine).ingest_paths([log])

    assert (stats.accepted, stats.rejected) == (2, 1)
    with engine.connect() as conn:
        assert set(conn.execute(select(UsageEvent.event_id)).scalars()) == {"today", "tomorrow-ish"}
        [reason] = conn.execute(select(IngestReject.reason)).scalars()
        [newest] = conn.execute(select(SourceStatus.newest_event_at)).scalars()
    assert "in the future" in reason and "ingest.max_future" in reason
    assert newest.year == 2026


@freeze_time(NOW)
def test_max_future_is_a_setting_and_a_shorter_one_quarantines_sooner(engine, make_settings, tmp_path):
    settings = make_settings('[ingest]\nmax_future = "1h"\n')
    assert settings.ingest_max_future == timedelta(hours=1)
    log = tmp_path / "usage.jsonl"
    log.write_text(json.dumps(record("in-2h", "2026-12-01T14:00:00Z")) + "\n")

    stats = Ingestor(settings, engine).ingest_paths([log])

    assert (stats.accepted, stats.rejected) == (0, 1)


def test_a_max_future_over_a_century_is_refused_with_the_key_named(make_settings):
    with pytest.raises(SettingsError, match="ingest.max_future: at most 36500d"):
        make_settings('[ingest]\nmax_future = "40000d"\n')
