"""``tokentally reprice`` with unchanged settings changes nothing, on both databases.

Issue 14: a plain reprice turned priced 'openai/gpt-oss-20b' events into unpriced ones
($0.00077 -> $0). The file mixes every way a record names its model: plain ids,
'provider/model' references (LiteLLM/OpenRouter style), a provider given or not, unknown
models, overrides (with and without a provider), only a total, and a reported cost.
"""

from __future__ import annotations

import json
from pathlib import Path
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers import PRICES
from worker.models import UsageEvent

CONFIG = PRICES + """
[[pricing.overrides]]
model = "llama-3.1-8b-instant"
provider = "selfhosted"
input_per_mtok = "0.02"
output_per_mtok = "0.05"
effective_from = "2026-10-30"

[[pricing.overrides]]
model = "house-llm"
tier = "batch"
input_per_mtok = "0.50"
output_per_mtok = "1.00"
cache_write_per_mtok = "1.25"
effective_from = "2025-01-01"

[[pricing.overrides]]
model = "grok-2"
provider = "x-ai"
total_per_mtok = "5.00"
effective_from = "2025-01-01"
"""

MODELS: list[tuple[str | None, str]] = [
    (None, "openai/gpt-oss-20b"), ("openai", "openai/gpt-oss-20b"), (None, "gpt-oss-20b"),
    (None, "anthropic/claude-sonnet-4-5"), ("anthropic", "claude-sonnet-4-5"), (None, "claude-3-5-sonnet"),
    (None, "openai/gpt-4o"), (None, "gpt-4o-mini"), ("OpenAI", "gpt-4o-mini"), (None, "x-ai/grok-2"),
    (None, "mistralai/mistral-large"), (None, "meta-llama/llama-3-70b-instruct"), (None, "gemini-2.5-pro"),
    ("openrouter", "openai/gpt-4o"), (None, "perplexity/sonar"), ("azure", "gpt-4o"),
    (None, "house-llm"), ("acme", "house-mini"), (None, "llama-3.1-8b-instant"),
    (None, "no-such-model-anywhere"), ("nobody", "no-such-model-anywhere"), (None, "acme/unknown-thing"),
    (None, "grok-2"),
]
TIERS = (None, "batch", "flex", "priority", "standard")


def records() -> list[dict[str, Any]]:
    out = []
    for i, (provider, model) in enumerate(MODELS):
        for j, at in enumerate(("2026-10-29T10:00:00Z", "2026-10-31T23:00:00Z")):
            rec: dict[str, Any] = {"request_id": f"r{i}-{j}", "timestamp": at, "user_id": "a1", "model": model,
                                   "prompt_tokens": 12_345 + i, "completion_tokens": 678 + j,
                                   "cached_tokens": 1_000 * j, "cache_write_tokens": 2_000 * j,
                                   "cache_write_1h_tokens": 500 * j}
            tier = TIERS[(i + j) % len(TIERS)]
            if tier is not None:
                rec["service_tier"] = tier
            if provider is not None:
                rec["provider"] = provider
            out.append(rec)
        out.append({"request_id": f"t{i}", "timestamp": "2026-10-30T08:00:00Z", "model": model,
                    "total_tokens": 5_000, **({"provider": provider} if provider else {})})
        out.append({"request_id": f"c{i}", "timestamp": "2026-10-30T09:00:00Z", "model": model,
                    "prompt_tokens": 10, "completion_tokens": 5, "cost_usd": "0.0123",
                    **({"provider": provider} if provider else {})})
    return out


def ledger(engine) -> dict[str, tuple]:
    with Session(engine) as session:
        return {e.event_id: (e.provider, e.service_tier, e.cache_write_tokens, e.cost_usd, e.cost_computed, e.cost_status, e.price_source,
                             e.price_effective_from) for e in session.scalars(select(UsageEvent))}


def test_reprice_with_unchanged_settings_changes_no_event_and_no_cost(cli, tmp_path: Path, engine):
    config = tmp_path / "settings.toml"
    config.write_text(CONFIG, encoding="utf-8")
    log = tmp_path / "usage.jsonl"
    recs = records()
    log.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    result = cli("ingest", log, "--format", "json", config=config)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accepted"] == len(recs)
    before = ledger(engine)
    assert before["r0-0"][5] == "priced"  # openai/gpt-oss-20b, as in the issue
    assert sum(1 for row in before.values() if row[5] == "priced") > len(MODELS)
    assert {row[1] for row in before.values()} == set(TIERS)
    assert before[f"t{len(MODELS) - 1}"][3:6] == (Decimal("0.025"), Decimal("0.025"), "priced")  # a flat total

    result = cli("reprice", "--from", "2026-10-01", "--to", "2026-11-30", "--format", "json", config=config)

    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert (stats["examined"], stats["changed"]) == (len(recs), 0)
    assert stats["cost_before_usd"] == stats["cost_after_usd"]
    assert ledger(engine) == before
