"""``tokentally usage --by project`` and ``--by api_key``: totals per project and key, from the ledger.

Project and key names follow the published schemas: OpenAI's usage API ``project_id`` and
``api_key_id``, Anthropic's usage report ``workspace_id``, LiteLLM_SpendLogs ``api_key``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import PRICES

RECORDS = [
    {"request_id": "p1", "timestamp": "2026-10-30T10:00:00Z", "model": "house-llm", "prompt_tokens": 1000,
     "completion_tokens": 500, "project_id": "proj_a", "api_key": "key-1"},
    {"request_id": "p2", "timestamp": "2026-10-30T11:00:00Z", "model": "house-llm", "prompt_tokens": 2000,
     "completion_tokens": 0, "workspace_id": "proj_a", "api_key_id": "key-2"},
    {"request_id": "p3", "timestamp": "2026-10-31T11:00:00Z", "model": "house-llm", "prompt_tokens": 1000,
     "completion_tokens": 1000, "project_id": "proj_b", "api_key": "key-1"},
    {"request_id": "p4", "timestamp": "2026-10-31T12:00:00Z", "model": "house-llm", "prompt_tokens": 10,
     "completion_tokens": 0},
    {"request_id": "p5", "timestamp": "2026-11-02T12:00:00Z", "model": "house-llm", "prompt_tokens": 10,
     "completion_tokens": 0, "project_id": "proj_a"},  # outside the range
]


def run(cli, tmp_path: Path, by: str) -> list[dict[str, Any]]:
    config = tmp_path / "settings.toml"
    config.write_text(PRICES, encoding="utf-8")
    log = tmp_path / "usage.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    assert cli("ingest", log, "--format", "json", config=config).exit_code == 0
    result = cli("usage", "--from", "2026-10-01", "--to", "2026-10-31", "--by", by, "--format", "json",
                 config=config)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_usage_by_project_totals_each_project_and_the_events_without_one(cli, tmp_path: Path):
    rows = run(cli, tmp_path, "project")
    assert [(r["project_id"], r["requests"], r["prompt_tokens"], r["cost_usd"]) for r in rows] == [
        ("proj_a", 2, 3000, "0.0040000000"),
        ("proj_b", 1, 1000, "0.0030000000"),
        (None, 1, 10, "0.0000100000"),
    ]


def test_usage_by_api_key_totals_each_key(cli, tmp_path: Path):
    rows = run(cli, tmp_path, "api_key")
    assert [(r["api_key"], r["requests"], r["cost_usd"]) for r in rows] == [
        ("key-1", 2, "0.0050000000"), ("key-2", 1, "0.0020000000"), (None, 1, "0.0000100000")]


def test_usage_by_an_unknown_dimension_names_the_choices(cli, tmp_path: Path):
    result = cli("usage", "--from", "2026-10-01", "--to", "2026-10-31", "--by", "planet")
    assert result.exit_code == 2
    assert "project" in result.output and "api_key" in result.output
