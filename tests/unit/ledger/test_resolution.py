"""Resolving a (provider, model) reference is idempotent, so reprice finds what ingest found.

The ledger stores the provider pricing resolved and the model reference as the record gave
it; ``reprice`` resolves (stored provider, model) again. Issue 14: 'openai/gpt-oss-20b' went
from priced to unpriced on a reprice with unchanged settings. The references are every model
id in genai-prices' bundled snapshot, plain and as 'provider/model' (LiteLLM/OpenRouter style).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from genai_prices import data_snapshot

from worker.ledger.event import Event
from worker.ledger.pricing import Pricer


def references() -> list[str]:
    snap = data_snapshot.get_snapshot()
    refs = []
    for prov in snap.providers:
        for info in prov.models:
            refs += [info.id, f"{prov.id}/{info.id}"]
    return refs


def event(model: str, provider: str | None) -> Event:
    return Event("e", datetime(2026, 10, 30, 12, tzinfo=UTC), "a", None, None, provider, model, model,
                 "success", None, 1000, 100, 1100, 0, 0, None, None, None, None, False, False, True)


def test_every_snapshot_model_resolves_again_from_the_provider_it_resolved_to():
    refs = references()
    assert len(refs) > 2000
    ingest, again = Pricer(), Pricer()
    differ = []
    for ref in refs:
        first = ingest.model(None, ref)
        second = again.model(None if first.provider == "(unknown)" else first.provider, ref)
        if (first.provider, first.info and first.info.id) != (second.provider, second.info and second.info.id):
            differ.append((ref, first.provider, second.provider))
    assert differ == []


@pytest.mark.parametrize("ref", ["openai/gpt-oss-20b", "anthropic/claude-sonnet-4-5", "x-ai/grok-2",
                                 "mistralai/mistral-large", "openai/gpt-4o"])
def test_a_prefixed_reference_costs_the_same_priced_again_with_its_stored_provider(ref: str):
    first = Pricer().price(event(ref, None))
    second = Pricer().price(event(ref, first.provider))
    assert first.cost_status == "priced"
    assert (second.provider, second.cost_usd, second.price_source) == (first.provider, first.cost_usd,
                                                                        first.price_source)
