"""Pricing events: genai-prices' offline data plus [[pricing.overrides]].

Expected amounts come from genai-prices' own ``calc_price`` at the event's time,
so the Pricer's per-token shortcut is checked against the package it stands for.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from genai_prices import Usage, calc_price

from worker.ingest.normalise import Normaliser
from worker.ledger.event import Event
from worker.ledger.pricing import Pricer
from worker.settings import PriceOverride

TENTH_NANO = Decimal("1e-10")  # the ledger's NUMERIC(20,10)
BERLIN = ZoneInfo("Europe/Berlin")


def event(model: str | None = "gpt-4o-mini", provider: str | None = None, prompt: int | None = 1000,
          completion: int | None = 500, cached: int | None = None, at: str = "2026-10-30T12:00:00Z",
          **extra: Any) -> Event:
    record: dict[str, Any] = {"occurred_at": at, **extra}
    for key, value in (("model", model), ("provider", provider), ("prompt_tokens", prompt),
                       ("completion_tokens", completion), ("cached_tokens", cached)):
        if value is not None:
            record[key] = value
    return Normaliser().normalise(record)


def genai_cost(model: str, ev: Event, provider: str | None = None) -> Decimal:
    usage = Usage(input_tokens=ev.prompt_tokens, cache_read_tokens=ev.cached_tokens,
                  output_tokens=ev.completion_tokens)
    calc = calc_price(usage, model, provider_id=provider, genai_request_timestamp=ev.occurred_at)
    return calc.total_price.quantize(TENTH_NANO)


def override(model: str, input_: str, output: str, effective_from: date, provider: str | None = None,
             cached: str | None = None) -> PriceOverride:
    return PriceOverride(model=model, provider=provider, input_per_mtok=Decimal(input_),
                         output_per_mtok=Decimal(output), effective_from=effective_from,
                         cached_input_per_mtok=Decimal(cached) if cached is not None else None)


# --------------------------------------------------------------------------- genai-prices

@pytest.mark.parametrize(("model", "provider", "prompt", "completion", "cached"), [
    ("gpt-4o-mini", "openai", 1000, 500, None),
    ("gpt-4o-mini", "openai", 10_000, 800, 4_000),
    ("gpt-4o", None, 2_345, 678, 1_000),
    ("claude-3-5-sonnet", "anthropic", 50_000, 1_200, 20_000),
    ("gpt-oss-20b", "openai", 7, 3, None),
    ("gemini-2.5-pro", "google", 1_000, 100, None),
])
def test_a_known_model_costs_what_genai_prices_says(model: str, provider: str | None, prompt: int,
                                                    completion: int, cached: int | None):
    ev = event(model, provider, prompt, completion, cached)
    priced = Pricer().price(ev)
    assert priced.cost_status == "priced"
    assert priced.cost_usd == genai_cost(model, ev, provider)
    assert priced.cost_usd > 0
    assert priced.cost_computed == priced.cost_usd


def test_cached_tokens_are_cheaper_than_uncached_ones():
    pricer = Pricer()
    plain = pricer.price(event("gpt-4o-mini", "openai", 10_000, 800))
    cached = pricer.price(event("gpt-4o-mini", "openai", 10_000, 800, cached=4_000))
    assert cached.cost_usd < plain.cost_usd


def test_a_costed_amount_is_a_decimal_with_ten_places_at_most():
    priced = Pricer().price(event("gpt-4o-mini", "openai", 1, 1))
    assert isinstance(priced.cost_usd, Decimal)
    assert priced.cost_usd == priced.cost_usd.quantize(TENTH_NANO)


@pytest.mark.parametrize("prompt", [1_000, 200_000, 200_001, 250_000, 900_000])
def test_a_tiered_model_above_the_threshold_costs_what_genai_prices_says(prompt: int):
    # gemini-2.5-pro: a higher rate for every token once the prompt is over 200k tokens
    ev = event("gemini-2.5-pro", "google", prompt, 2_000, cached=prompt // 5)
    assert Pricer().price(ev).cost_usd == genai_cost("gemini-2.5-pro", ev, "google")


def test_a_tiered_model_charges_a_higher_rate_above_the_threshold():
    pricer = Pricer()
    below = pricer.price(event("gemini-2.5-pro", "google", 200_000, 0)).cost_usd
    above = pricer.price(event("gemini-2.5-pro", "google", 200_001, 0)).cost_usd
    assert above > below * Decimal("1.5")  # the whole prompt moves to the higher rate


def test_time_of_day_prices_follow_the_call_time():
    # deepseek-chat has off-peak prices outside 00:30-16:30 UTC (a list of ConditionalPrice)
    pricer = Pricer()
    peak = event("deepseek-chat", "deepseek", 100_000, 10_000, cached=30_000, at="2026-10-30T12:00:00Z")
    off_peak = event("deepseek-chat", "deepseek", 100_000, 10_000, cached=30_000, at="2026-10-30T20:00:00Z")
    peak_cost, off_peak_cost = pricer.price(peak).cost_usd, pricer.price(off_peak).cost_usd
    assert peak_cost == genai_cost("deepseek-chat", peak, "deepseek")
    assert off_peak_cost == genai_cost("deepseek-chat", off_peak, "deepseek")
    assert off_peak_cost < peak_cost
    assert pricer.price(peak).cost_usd == peak_cost  # cached rates do not leak between periods


def test_a_price_change_on_a_start_date_applies_from_that_date():
    # claude-opus-4-6: tiered prices until 2026-03-13, one flat price from then on
    pricer = Pricer()
    before = event("claude-opus-4-6", "anthropic", 250_000, 1_000, at="2026-02-01T12:00:00Z")
    after = event("claude-opus-4-6", "anthropic", 250_000, 1_000, at="2026-04-01T12:00:00Z")
    before_p, after_p = pricer.price(before), pricer.price(after)
    assert before_p.cost_usd == genai_cost("claude-opus-4-6", before, "anthropic")
    assert after_p.cost_usd == genai_cost("claude-opus-4-6", after, "anthropic")
    assert before_p.cost_usd != after_p.cost_usd
    assert after_p.price_effective_from == date(2026, 3, 13)


def test_the_model_actually_used_is_the_one_priced():
    ev = event("gpt-4o", "openai", 1000, 500, model_actually_used="gpt-4o-mini")
    assert Pricer().price(ev).cost_usd == genai_cost("gpt-4o-mini", ev, "openai")


def test_a_genai_price_names_its_source():
    priced = Pricer().price(event("gpt-4o-mini", "openai"))
    assert priced.price_source is not None
    assert "genai-prices" in priced.price_source
    assert "openai/gpt-4o-mini" in priced.price_source
    assert priced.price_effective_from is None  # one price for all time


# --------------------------------------------------------------------------- providers

def test_the_provider_is_inferred_where_genai_prices_own_inference_fails():
    ev = event("llama-3.1-70b-versatile", None, 10_000, 2_000)
    with pytest.raises(LookupError):
        calc_price(Usage(input_tokens=1, output_tokens=1), "llama-3.1-70b-versatile",
                   genai_request_timestamp=ev.occurred_at)
    priced = Pricer().price(ev)
    assert priced.provider == "groq"
    assert priced.cost_status == "priced"
    assert priced.cost_usd == genai_cost("llama-3.1-70b-versatile", ev, "groq")


def test_the_provider_is_inferred_for_a_plain_model_name():
    priced = Pricer().price(event("gpt-4o-mini", None))
    assert priced.provider == "openai"


def test_a_provider_slash_model_reference_is_priced_as_that_providers_model():
    ev = event("openai/gpt-oss-20b", None, 10_000, 2_000)
    priced = Pricer().price(ev)
    assert priced.provider == "openai"
    assert priced.cost_status == "priced"
    assert priced.cost_usd == genai_cost("gpt-oss-20b", ev, "openai")


def test_a_provider_name_is_matched_case_insensitively():
    ev = event("gpt-4o-mini", "OpenAI")
    priced = Pricer().price(ev)
    assert priced.provider == "openai"
    assert priced.cost_usd == genai_cost("gpt-4o-mini", ev, "openai")


# --------------------------------------------------------------------------- overrides

def test_an_override_prices_a_model_genai_prices_does_not_know():
    ov = override("house-llm", "2", "8", date(2025, 1, 1))
    priced = Pricer([ov]).price(event("house-llm", None, 1_000_000, 500_000))
    assert priced.cost_status == "priced"
    assert priced.cost_usd == Decimal("6")  # 1M x $2/M + 0.5M x $8/M


def test_an_override_wins_over_genai_prices():
    ov = override("gpt-4o-mini", "1", "1", date(2025, 1, 1))
    priced = Pricer([ov]).price(event("gpt-4o-mini", "openai", 1_000_000, 1_000_000))
    assert priced.cost_usd == Decimal("2")
    assert "override" in (priced.price_source or "")
    assert priced.price_effective_from == date(2025, 1, 1)


@pytest.mark.parametrize(("at", "in_force"), [
    ("2026-02-28T22:59:59Z", False),   # 23:59:59 on 28 Feb in Berlin (CET, UTC+1)
    ("2026-02-28T23:00:00Z", True),    # local midnight, 1 March
    ("2026-02-28T23:30:00Z", True),    # still 28 Feb in UTC, already 1 March in Berlin
    ("2026-03-01T12:00:00Z", True),
])
def test_an_override_is_in_force_from_local_midnight_of_its_effective_date(at: str, in_force: bool):
    ov = override("llama-3.1-70b-versatile", "10", "20", date(2026, 3, 1), provider="groq")
    ev = event("llama-3.1-70b-versatile", "groq", 1_000_000, 1_000_000, at=at)
    priced = Pricer([ov], BERLIN).price(ev)
    if in_force:
        assert priced.cost_usd == Decimal("30")
        assert priced.price_effective_from == date(2026, 3, 1)
    else:
        assert priced.cost_usd == genai_cost("llama-3.1-70b-versatile", ev, "groq")
        assert priced.cost_usd != Decimal("30")


def test_an_override_starts_at_local_midnight_in_summer_time_too():
    ov = override("house-llm", "1", "0", date(2026, 7, 1))
    pricer = Pricer([ov], BERLIN)  # CEST, UTC+2: local midnight is 22:00 UTC
    assert pricer.price(event("house-llm", None, 1_000_000, 0, at="2026-06-30T21:59:59Z")).cost_status == "unpriced"
    assert pricer.price(event("house-llm", None, 1_000_000, 0, at="2026-06-30T22:00:00Z")).cost_usd == Decimal("1")


def test_an_override_date_is_a_utc_date_when_the_pricer_runs_in_utc():
    ov = override("house-llm", "1", "0", date(2026, 3, 1))
    ev = event("house-llm", None, 1_000_000, 0, at="2026-02-28T23:30:00Z")
    assert Pricer([ov], ZoneInfo("UTC")).price(ev).cost_status == "unpriced"
    assert Pricer([ov], BERLIN).price(ev).cost_usd == Decimal("1")


@pytest.mark.parametrize(("at", "expected"), [
    ("2024-06-01T12:00:00Z", None),
    ("2025-06-01T12:00:00Z", Decimal("1")),
    ("2026-06-01T12:00:00Z", Decimal("2")),
    ("2027-06-01T12:00:00Z", Decimal("3")),
])
def test_the_newest_override_in_force_wins(at: str, expected: Decimal | None):
    overrides = [  # deliberately not in date order
        override("house-llm", "2", "0", date(2026, 1, 1)),
        override("house-llm", "3", "0", date(2027, 1, 1)),
        override("house-llm", "1", "0", date(2025, 1, 1)),
    ]
    priced = Pricer(overrides).price(event("house-llm", None, 1_000_000, 0, at=at))
    assert priced.cost_usd == expected


def test_a_provider_specific_override_matches_only_that_provider():
    pricer = Pricer([override("house-llm", "1", "1", date(2025, 1, 1), provider="selfhost")])
    mine = pricer.price(event("house-llm", "selfhost", 1_000_000, 0))
    theirs = pricer.price(event("house-llm", "elsewhere", 1_000_000, 0))
    assert (mine.cost_status, mine.cost_usd) == ("priced", Decimal("1"))
    assert (theirs.cost_status, theirs.cost_usd) == ("unpriced", None)


def test_a_provider_specific_override_leaves_the_same_model_elsewhere_at_its_genai_price():
    pricer = Pricer([override("gpt-4o-mini", "100", "100", date(2025, 1, 1), provider="azure")])
    ev = event("gpt-4o-mini", "openai", 1000, 500)
    assert pricer.price(ev).cost_usd == genai_cost("gpt-4o-mini", ev, "openai")


def test_a_provider_specific_override_names_the_provider_of_an_event_without_one():
    priced = Pricer([override("house-llm", "1", "1", date(2025, 1, 1), provider="selfhost")]).price(
        event("house-llm", None, 1_000_000, 0))
    assert priced.provider == "selfhost"
    assert priced.cost_usd == Decimal("1")


def test_an_override_without_a_provider_matches_any_provider():
    pricer = Pricer([override("house-llm", "1", "1", date(2025, 1, 1))])
    for provider in ("selfhost", "elsewhere", None):
        assert pricer.price(event("house-llm", provider, 1_000_000, 0)).cost_usd == Decimal("1")


def test_an_override_matches_the_model_name_case_insensitively():
    pricer = Pricer([override("House-LLM", "1", "1", date(2025, 1, 1))])
    assert pricer.price(event("house-llm", None, 1_000_000, 0)).cost_usd == Decimal("1")


def test_cached_input_defaults_to_the_input_price_in_an_override():
    pricer = Pricer([override("house-llm", "1", "2", date(2025, 1, 1))])
    priced = pricer.price(event("house-llm", None, 1_000_000, 100_000, cached=400_000))
    assert priced.cost_usd == Decimal("1.2")  # 1M input x $1 (cached too) + 0.1M x $2


def test_a_cached_input_price_in_an_override_applies_to_cached_tokens():
    pricer = Pricer([override("house-llm", "1", "2", date(2025, 1, 1), cached="0.5")])
    priced = pricer.price(event("house-llm", None, 1_000_000, 100_000, cached=400_000))
    assert priced.cost_usd == Decimal("1.0")  # 0.6M x $1 + 0.4M x $0.5 + 0.1M x $2


def test_an_override_price_names_its_source_and_date():
    priced = Pricer([override("house-llm", "1", "1", date(2025, 5, 6), provider="selfhost")]).price(
        event("house-llm", "selfhost"))
    assert priced.price_source is not None
    assert "override" in priced.price_source and "house-llm" in priced.price_source
    assert priced.price_effective_from == date(2025, 5, 6)


# --------------------------------------------------------------------------- unpriced, reported

def test_an_unknown_model_is_unpriced_not_free():
    priced = Pricer().price(event("tokentally-test-model-zzz", None))
    assert priced.cost_status == "unpriced"
    assert priced.cost_usd is None
    assert priced.cost_computed is None
    assert priced.price_source is None
    assert priced.price_effective_from is None


def test_an_unknown_model_is_unpriced_even_with_a_known_provider():
    priced = Pricer().price(event("tokentally-test-model-zzz", "openai"))
    assert (priced.cost_status, priced.cost_usd) == ("unpriced", None)


def test_a_missing_model_is_unpriced():
    ev = event(None, "openai")
    assert ev.model_used == "(unknown)"
    priced = Pricer().price(ev)
    assert (priced.cost_status, priced.cost_usd) == ("unpriced", None)


def test_a_reported_cost_is_kept_and_the_computed_cost_beside_it():
    ev = event("gpt-4o-mini", "openai", 1000, 500, cost_usd="0.0123")
    priced = Pricer().price(ev)
    assert priced.cost_status == "reported"
    assert priced.cost_usd == Decimal("0.0123")
    assert priced.cost_computed == genai_cost("gpt-4o-mini", ev, "openai")
    assert priced.price_source is not None and "gpt-4o-mini" in priced.price_source


def test_a_reported_cost_for_an_unknown_model_is_kept_without_a_computed_cost():
    priced = Pricer().price(event("tokentally-test-model-zzz", None, cost="0.5"))
    assert (priced.cost_status, priced.cost_usd, priced.cost_computed) == ("reported", Decimal("0.5"), None)


def test_a_reported_cost_with_only_a_total_has_no_computed_cost():
    ev = event("gpt-4o-mini", "openai", None, None, total_tokens=1500, cost_usd="0.002")
    priced = Pricer().price(ev)
    assert (priced.cost_status, priced.cost_usd, priced.cost_computed) == ("reported", Decimal("0.002"), None)


def test_only_a_total_token_count_without_a_reported_cost_is_unpriced():
    ev = event("gpt-4o-mini", "openai", None, None, total_tokens=1500)
    assert ev.token_split_known is False
    priced = Pricer().price(ev)
    assert (priced.cost_status, priced.cost_usd, priced.cost_computed) == ("unpriced", None, None)


def test_a_zero_reported_cost_is_reported_not_recomputed():
    priced = Pricer().price(event("gpt-4o-mini", "openai", 1000, 500, cost=0))
    assert (priced.cost_status, priced.cost_usd) == ("reported", Decimal(0))
    assert priced.cost_computed is not None and priced.cost_computed > 0


def test_pricing_the_same_event_twice_gives_the_same_answer():
    pricer = Pricer([override("house-llm", "1", "1", date(2025, 1, 1))])
    ev = event("gemini-2.5-pro", "google", 300_000, 1_000)
    first, second = pricer.price(ev), pricer.price(ev)
    assert (first.cost_usd, first.price_source) == (second.cost_usd, second.price_source)
    assert first.cost_usd == genai_cost("gemini-2.5-pro", ev, "google")


# --------------------------------------------------------------------------- override classes, tiers, totals

def test_an_override_prices_cache_writes_at_its_own_rates():
    ov = PriceOverride(model="house", provider=None, input_per_mtok=Decimal("1"), output_per_mtok=Decimal("2"),
                       effective_from=date(2025, 1, 1), cached_input_per_mtok=Decimal("0.1"),
                       cache_write_per_mtok=Decimal("1.25"), cache_write_1h_per_mtok=Decimal("2"))
    ev = event("house", None, 1_000_000, 1_000_000, cached=100_000, cache_write_tokens=300_000,
               cache_write_1h_tokens=100_000)
    assert Pricer([ov]).price(ev).cost_usd == Decimal("0.6") + Decimal("0.01") + Decimal("0.25") + Decimal("0.2") + 2


def test_an_override_for_a_tier_prices_only_that_tiers_events():
    batch = PriceOverride(model="house", provider=None, input_per_mtok=Decimal("0.5"),
                          output_per_mtok=Decimal("1"), effective_from=date(2025, 1, 1), tier="batch")
    plain = PriceOverride(model="house", provider=None, input_per_mtok=Decimal("1"),
                          output_per_mtok=Decimal("2"), effective_from=date(2025, 1, 1))
    pricer = Pricer([batch, plain])
    assert pricer.price(event("house", None, 1_000_000, 0, service_tier="batch")).cost_usd == Decimal("0.5")
    assert pricer.price(event("house", None, 1_000_000, 0, service_tier="flex")).cost_usd == Decimal("1")
    assert pricer.price(event("house", None, 1_000_000, 0)).cost_usd == Decimal("1")
    assert Pricer([batch]).price(event("house", None, 1_000_000, 0)).cost_status == "unpriced"


def test_a_total_only_record_is_priced_at_an_overrides_flat_rate():
    """Seed 004 prices a total at a flat $/Mtok (its costPerMillionTokens, e.g. $5)."""
    flat = PriceOverride(model="grok-2", provider="x-ai", input_per_mtok=None, output_per_mtok=None,
                         effective_from=date(2025, 1, 1), total_per_mtok=Decimal("5.00"))
    priced = Pricer([flat]).price(event("grok-2", "x-ai", None, None, total_tokens=1988))
    assert (priced.cost_status, priced.cost_usd) == ("priced", Decimal("0.00994"))
