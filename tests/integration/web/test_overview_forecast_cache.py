"""The overview's month-end forecast is worked out at most once every FORECAST_TTL per console and
viewer (it reads the ledger hour by hour); the card says as of when."""

from __future__ import annotations

import json
from datetime import timedelta

from freezegun import freeze_time

from worker.ingest.ingestor import Ingestor
from web.views.overview import FORECAST_TTL, overview


def _ingest(settings, engine, path, n: int, at: str) -> None:
    path.write_text("".join(json.dumps({"event_id": f"{path.stem}-{i}", "occurred_at": at, "account_id": "a1",
                                        "tenant_id": "t1", "model": "gpt-4o", "provider": "openai",
                                        "prompt_tokens": 1000, "completion_tokens": 100, "cost_usd": "1.00"}) + "\n"
                            for i in range(n)))
    Ingestor(settings, engine).ingest_paths([path])


def test_the_forecast_is_reused_for_its_ttl_and_then_worked_out_again(make_settings, engine, tmp_path) -> None:
    settings = make_settings()
    cache: dict = {}
    with freeze_time("2026-11-10T12:00:00Z") as frozen:
        _ingest(settings, engine, tmp_path / "one.jsonl", 2, "2026-11-10T09:00:00Z")
        with engine.connect() as conn:
            first = overview(conn, settings, None, cache)
        assert first.forecast.so_far == 2
        _ingest(settings, engine, tmp_path / "two.jsonl", 3, "2026-11-10T10:00:00Z")
        frozen.tick(FORECAST_TTL - timedelta(seconds=1))
        with engine.connect() as conn:
            again = overview(conn, settings, None, cache)
            tenant = overview(conn, settings, "t1", cache)  # another viewer: its own, worked out now
            uncached = overview(conn, settings, None)
        assert again.forecast == first.forecast  # the same one, as of the first page
        assert tenant.forecast.so_far == 5 and uncached.forecast.so_far == 5
        frozen.tick(timedelta(seconds=1))
        with engine.connect() as conn:
            later = overview(conn, settings, None, cache)
        assert later.forecast.so_far == 5 and later.forecast.as_of > first.forecast.as_of
