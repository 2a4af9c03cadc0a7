"""Each format module's mapping: a raw record, written after the tool's published schema, -> canonical records.

The canonical names for cache writes, the tier, the key and the project (``cache_write_tokens``,
``cache_write_1h_tokens``, ``service_tier``, ``api_key``, ``project_id``) are the Event's
(worker/ledger/event.py); these tests pin the mapping, whatever the normaliser stores yet.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from worker.ingest.fields import RecordError
from worker.ingest.formats import FORMATS, anthropic, detect, helicone, langfuse, litellm, nested_usage, openai, otel
from worker.ingest.normalise import Normaliser
from worker.settings.sources import SOURCE_FORMATS
from tests.unit.ingest.formats import fixtures as fx


def test_the_registry_names_exactly_the_formats_a_source_may_say():
    assert set(FORMATS) == set(SOURCE_FORMATS)


def test_a_litellm_spend_log_row_maps_its_columns_and_usage_object():
    """LiteLLM schema.prisma, model LiteLLM_SpendLogs (request_id, api_key hashed, spend, prompt/completion/
    total_tokens, startTime/endTime, model, model_group, custom_llm_provider, user, end_user, team_id, status,
    metadata.usage_object, metadata.user_api_key_team_alias)."""
    (rec,), skipped = litellm.expand(fx.LITELLM_ROW)
    assert skipped == 0
    assert rec["event_id"] == "chatcmpl-7f3a" and rec["occurred_at"] == datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    assert (rec["model"], rec["model_used"], rec["provider"]) == ("sonnet", "claude-3-5-sonnet-20241022", "anthropic")
    assert (rec["account_id"], rec["tenant_id"], rec["cost_usd"]) == ("customer-42", "team-a", 0.00123)
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["total_tokens"]) == (1200, 300, 1500)
    assert (rec["cached_tokens"], rec["cache_write_tokens"], rec["reasoning_tokens"]) == (800, 100, 50)
    assert rec["api_key"].startswith("88dc28d0") and rec["latency_ms"] == 1250
    assert rec["metadata"]["user_api_key_team_alias"] == "search"
    assert "messages" not in rec and "secret prompt" not in str(rec)


def test_a_litellm_csv_row_with_json_text_metadata_maps_the_same_tokens():
    """A spend-log row as CSV text: the same columns, every cell text, metadata as JSON text. (The columns of
    LiteLLM's UI CSV export itself were not found in a public source; this pins reading the table's columns as
    text, as a CSV of them gives them.)"""
    import json
    row = {k: (json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in fx.LITELLM_ROW.items()}
    (rec,), _ = litellm.expand(row)
    assert (rec["cached_tokens"], rec["cache_write_tokens"], rec["reasoning_tokens"]) == (800, 100, 50)
    ev = Normaliser(fmt="litellm").normalise(row)  # one call a row: one event
    assert (ev.prompt_tokens, ev.cached_tokens, str(ev.cost_reported)) == (1200, 800, "0.00123")


def test_an_otlp_line_gives_one_record_per_genai_span_and_skips_the_others():
    """OTLP JSON encoding (resourceSpans/scopeSpans/spans, typed AnyValue, intValue as a string) and the GenAI
    semantic conventions (gen_ai.usage.input_tokens includes cache reads; gen_ai.usage.cache_read.input_tokens)."""
    (rec,), skipped = otel.expand(fx.OTLP_LINE)
    assert skipped == 1
    assert rec["event_id"] == "5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174"
    assert rec["occurred_at"] == datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    assert (rec["model"], rec["model_used"], rec["provider"]) == ("gpt-4o", "gpt-4o-2024-08-06", "openai")
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["cached_tokens"]) == (1000, 200, 400)
    assert (rec["account_id"], rec["service"], rec["latency_ms"], rec["status"]) == ("u-7", "support-bot", 1500, "success")


def test_a_flattened_span_with_plain_attributes_maps_like_an_otlp_one():
    """Flattened span (attributes as a plain mapping, older gen_ai.system and gen_ai.usage.prompt_tokens names)."""
    span = {"trace_id": "t1", "span_id": "s1", "start_time_unix_nano": 1790856000000000000,
            "attributes": {"gen_ai.system": "anthropic", "gen_ai.request.model": "claude-3-5-haiku-20241022",
                           "gen_ai.usage.prompt_tokens": 70, "gen_ai.usage.completion_tokens": 9,
                           "gen_ai.usage.cache_creation_input_tokens": 20, "enduser.id": "e-1"},
            "status": {"code": "STATUS_CODE_ERROR", "message": "overloaded"}}
    (rec,), _ = otel.expand(span)
    assert (rec["event_id"], rec["provider"], rec["prompt_tokens"], rec["cache_write_tokens"]) == ("t1-s1", "anthropic", 70, 20)
    assert (rec["account_id"], rec["status"], rec["error_message"]) == ("e-1", "error", "overloaded")


def test_a_langfuse_page_gives_its_generations_and_skips_its_spans():
    """Langfuse public API GET /api/public/observations ({data, meta}; usageDetails, costDetails.total) and the
    token & cost docs: usage types containing "input" are input, "output" output."""
    (rec,), skipped = langfuse.expand(fx.LANGFUSE_PAGE)
    assert skipped == 1
    assert (rec["event_id"], rec["account_id"], rec["model"], rec["cost_usd"]) == ("obs-1", "u-9", "gpt-4o-mini", 0.00019)
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["total_tokens"]) == (1000, 180, 1150)
    assert (rec["cached_tokens"], rec["reasoning_tokens"], rec["latency_ms"]) == (400, 30, 2000)


def test_a_helicone_request_adds_its_cache_tokens_to_the_prompt():
    """Helicone request object (HeliconeRequest, Helicone/helicone packages/llm-mapper/types.ts; what
    POST /v1/request/query-clickhouse returns and the JSONL export writes): prompt_cache_write_tokens and
    prompt_cache_read_tokens beside prompt_tokens, not in it (valhalla/jawn/src/lib/shared/bodyProcessors/
    openaiBodyProcessor.ts stores prompt_tokens - cached_tokens; anthropicBodyProcessor.ts stores input_tokens;
    packages/cost/index.ts costOfPrompt prices prompt_tokens as "the fresh, uncached tokens"), cost in USD,
    provider upper case."""
    (rec,), _ = helicone.expand(fx.HELICONE_ROW)
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["cache_write_tokens"]) == (1000, 600, 300)
    assert (rec["provider"], rec["account_id"], rec["status_code"], rec["cost_usd"]) == ("anthropic", "u-3", 200, 0.0021)
    assert "total_tokens" not in rec  # Helicone's total leaves the cache out: derived instead


def test_a_helicone_csv_export_row_is_identified_by_its_response_id_and_keeps_helicones_cost():
    """The CSV columns of Helicone's export tool (Helicone/helicone examples/export/typescript/index.ts,
    convertToCSVRow): response_id, response_created_at, response_status, request_created_at, request_body,
    request_properties, request_user_id, model, prompt_tokens, completion_tokens, latency, cost (cost_usd
    in earlier versions). No request_id column, no provider, no cache tokens; every cell is text."""
    row = {"response_id": "resp-9", "response_created_at": "2026-10-01T12:00:01.000Z", "response_status": "200",
           "request_created_at": "2026-10-01T12:00:00.000Z", "request_body": '{"messages": []}',
           "request_properties": '{"Helicone-Property-App": "x"}', "request_user_id": "u-3", "model": "gpt-4o",
           "prompt_tokens": "700", "completion_tokens": "50", "latency": "900", "cost": "0.00225"}
    ev = Normaliser().normalise(row)[0]
    assert (ev.event_id, ev.account_id, ev.model, ev.status, ev.status_code) == ("resp-9", "u-3", "gpt-4o", "success", 200)
    assert (ev.prompt_tokens, ev.completion_tokens, ev.latency_ms, str(ev.cost_reported)) == (700, 50, 900, "0.00225")
    assert ev.metadata == {"Helicone-Property-App": "x"}  # the body is content: not kept
    older = Normaliser().normalise({**{k: v for k, v in row.items() if k != "cost"}, "cost_usd": "0.00225"})[0]
    assert str(older.cost_reported) == "0.00225"


def test_a_helicone_jsonl_request_counts_its_audio_tokens_and_reads_cost_usd():
    """HeliconeRequest (packages/llm-mapper/types.ts) carries prompt_audio_tokens / completion_audio_tokens and
    costUSD; openaiBodyProcessor.ts subtracts prompt_tokens_details.audio_tokens from prompt_tokens and
    completion_tokens_details.audio_tokens from completion_tokens, so they are added back."""
    row = {**{k: v for k, v in fx.HELICONE_ROW.items() if k != "cost"}, "provider": "OPENAI", "model": "gpt-4o-audio-preview",
           "prompt_tokens": 500, "prompt_cache_read_tokens": 200, "prompt_cache_write_tokens": 0,
           "prompt_audio_tokens": 40, "completion_tokens": 60, "completion_audio_tokens": 30, "total_tokens": 830,
           "costUSD": 0.004}
    (rec,), _ = helicone.expand(row)
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["completion_tokens"], rec["cost_usd"]) == (740, 200, 90, 0.004)
    assert "total_tokens" not in rec  # derived: 830 = 740 + 90


def test_an_openai_chat_completion_takes_the_nested_cached_and_reasoning_tokens():
    """OpenAI API reference, the chat completion object: created (epoch s), usage.prompt_tokens_details.cached_tokens,
    usage.completion_tokens_details.reasoning_tokens, service_tier "default" (the standard rate)."""
    (rec,), _ = openai.expand(fx.OPENAI_CHAT)
    assert (rec["id"], rec["occurred_at"], rec["provider"]) == ("chatcmpl-abc123", 1790856000, "openai")
    assert (rec["prompt_tokens"], rec["completion_tokens"], rec["cached_tokens"], rec["reasoning_tokens"]) == (2000, 500, 1024, 128)
    assert "service_tier" not in rec and "choices" not in rec


def test_an_openai_responses_object_takes_input_and_output_details_and_its_tier():
    """OpenAI API reference, the Response object: created_at, usage.input_tokens_details.cached_tokens,
    usage.output_tokens_details.reasoning_tokens, service_tier "flex"."""
    (rec,), _ = openai.expand(fx.OPENAI_RESPONSE)
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["completion_tokens"], rec["reasoning_tokens"]) == (300, 100, 900, 800)
    assert (rec["service_tier"], rec["occurred_at"], rec["status"]) == ("flex", 1790856000, "completed")


def test_an_openai_batch_output_line_is_booked_at_the_batch_tier_and_a_failed_one_is_skipped():
    """OpenAI Batch API output file: {id, custom_id, response: {status_code, request_id, body}, error}."""
    (rec,), skipped = openai.expand(fx.OPENAI_BATCH_LINE)
    assert (rec["event_id"], rec["service_tier"], rec["status_code"], skipped) == ("batch_req_123", "batch", 200, 0)
    assert rec["metadata"]["custom_id"] == "request-2" and rec["cached_tokens"] == 1024
    assert openai.expand(fx.OPENAI_BATCH_FAILED) == ([], 1)


def test_an_anthropic_message_counts_cache_writes_and_reads_in_the_prompt():
    """Anthropic Messages API usage: input_tokens excludes the cache; cache_creation_input_tokens,
    cache_read_input_tokens, cache_creation.ephemeral_5m/1h_input_tokens, service_tier."""
    (rec,), _ = anthropic.expand(fx.ANTHROPIC_MESSAGE)
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["cache_write_tokens"], rec["cache_write_1h_tokens"]) == (10050, 8000, 2000, 500)
    assert (rec["completion_tokens"], rec["provider"], rec["event_id"]) == (400, "anthropic", "msg_013Zva2CMHLNnXjNJJKqJ2EF")
    assert "service_tier" not in rec and "content" not in rec
    priority = dict(fx.ANTHROPIC_MESSAGE, usage={**fx.ANTHROPIC_MESSAGE["usage"], "service_tier": "priority"})
    assert anthropic.expand(priority)[0][0]["service_tier"] == "priority"


def test_an_app_record_with_nested_usage_is_read_with_its_providers_meaning():
    """The SDK's usage object under the app's own fields: Anthropic's cache fields mean Anthropic's input_tokens."""
    (a,), _ = nested_usage(fx.APP_NESTED_ANTHROPIC)
    assert (a["request_id"], a["user_id"], a["prompt_tokens"], a["cached_tokens"], a["provider"]) == ("app-1", "u-1", 100, 90, "anthropic")
    (o,), _ = nested_usage(fx.APP_NESTED_OPENAI)
    assert (o["prompt_tokens"], o["cached_tokens"], o["total_tokens"]) == (100, 64, 105) and "provider" not in o


def test_anthropic_usage_copied_flat_beside_an_apps_fields_means_anthropics_input_tokens():
    """Flat copy: cache_creation_input_tokens / cache_read_input_tokens next to input_tokens."""
    assert detect(tuple(fx.APP_FLAT_ANTHROPIC)) is anthropic.FLAT
    ev = Normaliser().normalise(fx.APP_FLAT_ANTHROPIC)  # one call a record: one event
    assert (ev.event_id, ev.account_id, ev.prompt_tokens, ev.cached_tokens, ev.total_tokens) == ("app-3", "u-2", 100, 50, 107)


@pytest.mark.parametrize("record, expected", [
    (fx.LITELLM_ROW, litellm.plan(frozenset(fx.LITELLM_ROW))), (fx.OTLP_LINE, otel.expand), (fx.LANGFUSE_PAGE, langfuse.expand),
    (fx.LANGFUSE_PAGE["data"][0], langfuse.expand), (fx.HELICONE_ROW, helicone.expand),
    (fx.OPENAI_CHAT, openai.expand), (fx.OPENAI_RESPONSE, openai.expand), (fx.OPENAI_BATCH_LINE, openai.expand),
    (fx.ANTHROPIC_MESSAGE, anthropic.MESSAGE), (fx.APP_NESTED_OPENAI, nested_usage),
])
def test_each_shape_is_recognised_from_its_key_set(record, expected):
    assert detect(tuple(record)) is expected


def test_canonical_and_seed_alias_records_are_not_taken_for_another_shape():
    for keys in (("event_id", "occurred_at", "model", "prompt_tokens", "completion_tokens", "cost_usd", "metadata"),
                 ("request_id", "timestamp", "user_id", "input_tokens", "output_tokens", "cost"),
                 ("requestId", "createdAt", "userId", "modelId", "inputTokens", "outputTokens", "tokensUsed")):
        assert detect(keys) is None


def test_the_shape_is_decided_once_per_key_set():
    norm = Normaliser()
    for i in range(3):
        norm.normalise(dict(fx.OPENAI_CHAT, id=f"c{i}"))
    assert len(norm._plans) == 1 and next(iter(norm._plans.values())).expand is openai.expand


def test_a_source_format_reads_every_record_in_that_shape():
    ev = Normaliser(fmt="helicone").normalise(dict(fx.HELICONE_ROW))[0]
    assert (ev.event_id, ev.prompt_tokens, ev.cached_tokens) == ("hc-1", 1000, 600)
    assert Normaliser(fmt="canonical").normalise({"occurred_at": "2026-10-01T00:00:00Z", "usage": 5,
                                                  "total_tokens": 5}).metadata == {"usage": 5}


def test_a_record_that_breaks_its_shape_is_rejected_naming_the_shape():
    with pytest.raises(RecordError, match="otel"):
        Normaliser().normalise({"resourceSpans": [{"scopeSpans": "not a list of scopes"}]})


def test_skipped_spans_are_counted_by_the_normaliser_not_rejected():
    norm = Normaliser()
    events = norm.normalise(fx.OTLP_LINE)
    assert len(events) == 1 and norm.skipped == 1


def test_an_anthropic_batch_result_line_is_its_message_on_the_batch_tier_and_unbilled_results_are_skipped():
    """Anthropic API reference, "Retrieve Message Batch results": custom_id, result.type succeeded
    (result.message: a Messages response) | errored | canceled | expired."""
    line = {"custom_id": "req-1", "result": {"type": "succeeded", "message": fx.ANTHROPIC_MESSAGE}}
    assert detect(tuple(line)) is anthropic.expand
    (rec,), skipped = anthropic.expand(line)
    assert skipped == 0
    assert (rec["event_id"], rec["service_tier"], rec["metadata"]["custom_id"]) == (
        "msg_013Zva2CMHLNnXjNJJKqJ2EF", "batch", "req-1")
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["cache_write_tokens"], rec["cache_write_1h_tokens"]) == (
        10050, 8000, 2000, 500)
    for kind in ("errored", "canceled", "expired"):
        assert anthropic.expand({"custom_id": "req-2", "result": {"type": kind}}) == ([], 1)
