"""``tokentally usage`` with usage that has no price: never shown as $0 (table, JSON, CSV), on both databases."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tests.helpers import PRICES

RECORDS = [
    {"request_id": "a1", "timestamp": "2026-10-30T10:00:00Z", "model": "house-llm", "user_id": "u1",
     "prompt_tokens": 1000, "completion_tokens": 500},
    {"request_id": "a2", "timestamp": "2026-10-30T11:00:00Z", "model": "mystery-9000", "user_id": "u1",
     "prompt_tokens": 2000, "completion_tokens": 0},
    {"request_id": "a3", "timestamp": "2026-10-31T11:00:00Z", "model": "mystery-9000", "user_id": "u2",
     "prompt_tokens": 1000, "completion_tokens": 1000},
]


def usage(cli, tmp_path: Path, by: str, fmt: str) -> Any:
    config = tmp_path / "settings.toml"
    if not config.exists():
        config.write_text(PRICES, encoding="utf-8")
        log = tmp_path / "usage.jsonl"
        log.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
        assert cli("ingest", log, "--format", "json", config=config).exit_code == 0
    result = cli("usage", "--from", "2026-10-01", "--to", "2026-10-31", "--by", by, "--format", fmt, config=config)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_json_cost_covers_the_priced_usage_and_counts_the_unpriced_requests_beside_it(cli, tmp_path: Path):
    rows = {r["model"]: r for r in json.loads(usage(cli, tmp_path, "model", "json"))}
    assert (rows["mystery-9000"]["cost_usd"], rows["mystery-9000"]["unpriced_requests"]) == ("0.0000000000", 2)
    assert rows["house-llm"]["unpriced_requests"] == 0 and rows["house-llm"]["cost_usd"] != "0.0000000000"


def test_the_table_shows_unpriced_usage_as_unpriced_not_as_zero(cli, tmp_path: Path):
    table = usage(cli, tmp_path, "model", "table")
    [mystery] = [line for line in table.splitlines() if "mystery-9000" in line]
    assert "unpriced" in mystery and "0.0000000000" not in mystery
    by_day = usage(cli, tmp_path, "day", "table")
    [day30] = [line for line in by_day.splitlines() if line.startswith("│ 2026-10-30")]
    assert "+ 1 unpriced" in day30  # some priced, some not
    [day31] = [line for line in by_day.splitlines() if line.startswith("│ 2026-10-31")]
    assert "unpriced" in day31 and "0.0000000000" not in day31


def test_csv_keeps_the_priced_cost_and_the_unpriced_count_in_their_own_columns(cli, tmp_path: Path):
    rows = list(csv.DictReader(io.StringIO(usage(cli, tmp_path, "model", "csv"))))
    [mystery] = [r for r in rows if r["model"] == "mystery-9000"]
    assert (mystery["cost_usd"], mystery["unpriced_requests"]) == ("0.0000000000", "2")
