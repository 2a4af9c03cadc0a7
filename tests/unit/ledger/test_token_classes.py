"""Every token class is priced at genai-prices' rate for it, at the time of the call, on its tier.

Expected amounts are computed here from the published per-MTok prices, and checked against
genai-prices' own ``calc_price`` (its bundled snapshot, genai-prices 0.2.3):
claude-sonnet-4-5 input $3, 5-minute cache write $3.75, 1-hour cache write $6, cache read $0.30,
output $15 (anthropic.com/pricing; above 200k prompt tokens these double, or x1.5 for output);
gpt-4o-mini input $0.15, cache read $0.075, output $0.60, Batch API $0.075/$0.30 from 2026-10-14
in the snapshot (openai.com/api/pricing: Batch is half price).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from worker.ingest.fields import RecordError
from worker.ingest.normalise import Normaliser
from worker.ledger.event import Event
from worker.ledger.pricing import Pricer

MTOK = Decimal(1_000_000)


def event(**fields: Any) -> Event:
    return Normaliser().normalise({"occurred_at": "2026-10-30T12:00:00Z", **fields})


def genai(model: str, provider: str, ev: Event, context: dict[str, str] | None = None) -> Decimal:
    usage = Usage(input_tokens=ev.prompt_tokens, cache_read_tokens=ev.cached_tokens,
                  cache_write_tokens=ev.cache_write_tokens, cache_write_1h_tokens=ev.cache_write_1h_tokens,
                  output_tokens=ev.completion_tokens)
    return calc_price(usage, model, provider_id=provider, genai_request_timestamp=ev.occurred_at,
                      price_context=context).total_price


def test_claude_cache_writes_and_reads_cost_their_published_rates():
    ev = event(model="claude-sonnet-4-5", provider="anthropic", prompt_tokens=100_000, cached_tokens=20_000,
               cache_write_tokens=30_000, cache_write_1h_tokens=10_000, completion_tokens=2_000)
    expected = (Decimal(50_000) * 3 + 20_000 * Decimal("0.30") + 20_000 * Decimal("3.75") + 10_000 * 6
                + 2_000 * 15) / MTOK
    priced = Pricer().price(ev)
    assert priced.cost_status == "priced"
    assert priced.cost_usd == expected == genai("claude-sonnet-4-5", "anthropic", ev)


def test_claude_cache_writes_above_200k_prompt_tokens_cost_the_higher_tier():
    ev = event(model="claude-sonnet-4-5", provider="anthropic", prompt_tokens=300_000, cache_write_tokens=100_000,
               cache_write_1h_tokens=50_000, completion_tokens=1_000)
    expected = (Decimal(200_000) * 6 + 50_000 * Decimal("7.5") + 50_000 * 12 + 1_000 * Decimal("22.5")) / MTOK
    assert Pricer().price(ev).cost_usd == expected == genai("claude-sonnet-4-5", "anthropic", ev)


def test_a_batch_call_costs_the_batch_rate_from_the_date_genai_prices_gives():
    after = event(model="gpt-4o-mini", provider="openai", prompt_tokens=1_000_000, completion_tokens=1_000_000,
                  service_tier="batch")
    before = event(model="gpt-4o-mini", provider="openai", prompt_tokens=1_000_000, completion_tokens=1_000_000,
                   service_tier="batch", occurred_at="2026-10-13T12:00:00Z")
    pricer = Pricer()
    assert pricer.price(after).cost_usd == Decimal("0.375") == genai("gpt-4o-mini", "openai", after,
                                                                     {"processing": "batch"})
    assert pricer.price(after).price_source.endswith("openai/gpt-4o-mini batch")
    assert pricer.price(before).cost_usd == Decimal("0.75")  # before 2026-10-14: the standard rate


def test_a_tier_genai_prices_has_no_price_for_costs_the_standard_rate_and_says_so():
    ev = event(model="claude-sonnet-4-5", provider="anthropic", prompt_tokens=1_000, completion_tokens=100,
               service_tier="flex")
    priced = Pricer().price(ev)
    assert priced.cost_usd == (Decimal(1_000) * 3 + 100 * 15) / MTOK
    assert priced.price_source.endswith("(no flex price: standard rate)")


@pytest.mark.parametrize("tier", ["standard", "default", None])
def test_the_standard_tier_under_any_name_costs_the_standard_rate(tier: str | None):
    ev = event(model="gpt-4o-mini", provider="openai", prompt_tokens=1_000_000, completion_tokens=0,
               **({"service_tier": tier} if tier else {}))
    priced = Pricer().price(ev)
    assert priced.cost_usd == Decimal("0.15")
    assert priced.price_source == "genai-prices 0.2.3 openai/gpt-4o-mini"


def test_a_priority_call_costs_genai_prices_priority_rate():
    ev = event(model="gpt-4o-mini", provider="openai", prompt_tokens=10_000, cached_tokens=4_000,
               completion_tokens=500, service_tier="priority")
    expected = (Decimal(6_000) * Decimal("0.25") + 4_000 * Decimal("0.125") + 500 * 1) / MTOK
    assert Pricer().price(ev).cost_usd == expected == genai("gpt-4o-mini", "openai", ev, {"service_tier": "priority"})


@pytest.mark.parametrize("field", ["cache_write_tokens", "cache_write_1h_tokens"])
@pytest.mark.parametrize("value", [-1, "many", 1.5])
def test_a_negative_or_non_numeric_cache_write_count_rejects_the_record(field: str, value: Any):
    with pytest.raises(RecordError, match=field):
        event(model="gpt-4o-mini", prompt_tokens=10, **{field: value})


def test_cache_writes_beyond_the_uncached_prompt_are_flagged_not_trusted():
    ev = event(model="claude-sonnet-4-5", provider="anthropic", prompt_tokens=100, cached_tokens=60,
               cache_write_tokens=50, cache_write_1h_tokens=70)
    assert ev.metadata["token_classes"].startswith("inconsistent: ")
    # priced with the writes cut to the 40 uncached prompt tokens, the 1-hour ones to the writes
    assert Pricer().price(ev).cost_usd == (60 * Decimal("0.30") + 40 * 6) / MTOK


def test_the_key_project_and_team_are_read_under_their_published_names():
    """LiteLLM_SpendLogs: api_key, team_id; OpenAI usage API: project_id, api_key_id;
    Anthropic usage report: workspace_id."""
    ev = event(model="m", prompt_tokens=1, api_key_id="key_1", workspace_id="wrkspc_1", team_id="team-a")
    assert (ev.api_key, ev.project_id, ev.tenant_id) == ("key_1", "wrkspc_1", "team-a")
    ev = event(model="m", prompt_tokens=1, api_key="88dc28d0f0", project_id="proj_abc", service_tier="flex")
    assert (ev.api_key, ev.project_id, ev.service_tier) == ("88dc28d0f0", "proj_abc", "flex")


def test_a_plain_record_without_the_new_fields_keeps_its_content_id():
    ev = event(model="gpt-4o-mini", prompt_tokens=10, completion_tokens=2)
    assert ev.event_id == "h:" + hashlib.sha256(repr((
        datetime(2026, 10, 30, 12, tzinfo=UTC).isoformat(), "(unattributed)", None, None, None, "gpt-4o-mini",
        "gpt-4o-mini", "success", 10, 2, 12, 0, 0, None, "None", None)).encode()).hexdigest()[:40]
