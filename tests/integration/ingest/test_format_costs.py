"""Every format, ingested on SQLite and PostgreSQL, priced to the cent against published prices.

Per format: a file of records written after the tool's public schema (each fixture cites
it), ingested; then per model the ledger's tokens of every class (uncached input, cache
read, cache write 5m and 1h, output, reasoning) and its cost are compared with figures
computed here from published per-MTok prices (genai-prices 0.2.3 data, the same numbers
as the providers' price pages):

- claude-sonnet-4-5: input $3, cache write 5m $3.75, 1h $6, cache read $0.30, output $15;
  Message Batches from 2026-10-14: half of each ($1.50, $1.875, $3, $0.15, $7.50);
- gpt-4o-mini: input $0.15, cached input $0.075, output $0.60; Batch API from 2026-10-14:
  input $0.075, output $0.30 (genai-prices' batch price has no cache-read rate: cached
  input costs the batch input rate, $0.075);
- seed 004's total-only records (``tokens_used``, /work/shared/seeds/004: "(SUM(tokens_used)
  / 1000000) * 5.00") priced by an override ``total_per_mtok = "5.00"``.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from worker.ingest.ingestor import Ingestor
from worker.models import UsageEvent

EVENTS = UsageEvent.__table__
M = Decimal(1_000_000)
SONNET = {"input": Decimal("3"), "write_5m": Decimal("3.75"), "write_1h": Decimal("6"), "read": Decimal("0.30"),
          "output": Decimal("15")}
SONNET_BATCH = {k: v / 2 for k, v in SONNET.items()}
MINI = {"input": Decimal("0.15"), "read": Decimal("0.075"), "output": Decimal("0.60")}
MINI_BATCH = {"input": Decimal("0.075"), "read": Decimal("0.075"), "output": Decimal("0.30")}
OCT_1 = 1790856000  # 2026-10-01T12:00:00Z, before the batch prices start
OCT_20 = 1792497600  # 2026-10-20T12:00:00Z, after


def classes(uncached: int = 0, read: int = 0, write_5m: int = 0, write_1h: int = 0, output: int = 0,
            reasoning: int = 0) -> dict[str, int]:
    return {"uncached": uncached, "read": read, "write_5m": write_5m, "write_1h": write_1h, "output": output,
            "reasoning": reasoning}


def cost(prices: dict[str, Decimal], tokens: dict[str, int]) -> Decimal:
    """The published per-MTok prices times the tokens of each class."""
    return (tokens["uncached"] * prices["input"] + tokens["read"] * prices["read"]
            + tokens["write_5m"] * prices.get("write_5m", prices["input"])
            + tokens["write_1h"] * prices.get("write_1h", prices["input"]) + tokens["output"] * prices["output"]) / M


def add(*parts: dict[str, int]) -> dict[str, int]:
    return {k: sum(p[k] for p in parts) for k in parts[0]}


def ledger(engine: Engine) -> dict[str, dict[str, Any]]:
    """model -> tokens of each class, cost (what counts) and cost computed from prices, summed."""
    out: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(EVENTS)):
            m = out.setdefault(r.model_used, {**classes(), "cost": Decimal(0), "computed": Decimal(0)})
            m["uncached"] += r.prompt_tokens - r.cached_tokens - r.cache_write_tokens
            m["read"] += r.cached_tokens
            m["write_5m"] += r.cache_write_tokens - r.cache_write_1h_tokens
            m["write_1h"] += r.cache_write_1h_tokens
            m["output"] += r.completion_tokens
            m["reasoning"] += r.reasoning_tokens
            m["cost"] += r.cost_usd if r.cost_usd is not None else Decimal("NaN")
            m["computed"] += r.cost_computed if r.cost_computed is not None else Decimal("NaN")
    return out


def expect(tokens: dict[str, int], computed: Decimal, reported: Decimal | None = None) -> dict[str, Any]:
    return {**tokens, "cost": computed if reported is None else reported, "computed": computed}


def ingest_lines(make_settings, engine: Engine, tmp_path: Path, name: str, *records: dict, settings: str = ""):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    stats = Ingestor(make_settings(settings), engine).ingest_paths([path], None)
    return stats


# --------------------------------------------------------------------------- Anthropic

def anthropic_message(msg_id: str, model: str, uncached: int, w5: int, w1h: int, read: int, output: int,
                      **extra: Any) -> dict:
    """A Messages response (Anthropic API reference, "Messages": ``usage.input_tokens`` excludes the
    cache, ``cache_creation_input_tokens`` = ``cache_creation.ephemeral_5m_input_tokens`` +
    ``ephemeral_1h_input_tokens``, ``cache_read_input_tokens``), with the app's own timestamp."""
    return {"id": msg_id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": uncached, "cache_creation_input_tokens": w5 + w1h,
                      "cache_read_input_tokens": read, "output_tokens": output, "service_tier": "standard",
                      "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1h}},
            **extra}


def test_anthropic_messages_cost_their_cache_reads_and_5m_and_1h_writes_at_published_prices(
        make_settings, engine, tmp_path):
    one = anthropic_message("msg_1", "claude-sonnet-4-5", 1000, 2000, 1000, 20000, 500,
                            timestamp="2026-10-01T12:00:00Z")
    two = anthropic_message("msg_2", "claude-sonnet-4-5", 300, 0, 4000, 0, 1200, timestamp="2026-10-01T13:00:00Z")
    stats = ingest_lines(make_settings, engine, tmp_path, "anthropic.jsonl", one, two)
    assert (stats.accepted, stats.rejected) == (2, 0)
    tokens = add(classes(1000, 20000, 2000, 1000, 500), classes(300, 0, 0, 4000, 1200))
    assert ledger(engine) == {"claude-sonnet-4-5": expect(tokens, cost(SONNET, tokens))}


# --------------------------------------------------------------------------- OpenAI

def chat_completion(cid: str, created: int, prompt: int, cached: int, completion: int, reasoning: int) -> dict:
    """A chat completion object (OpenAI API reference, "The chat completion object": ``created``,
    ``usage.prompt_tokens`` including ``prompt_tokens_details.cached_tokens``, ``completion_tokens``
    including ``completion_tokens_details.reasoning_tokens``)."""
    return {"id": cid, "object": "chat.completion", "created": created, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0}},
            "service_tier": "default"}


def test_openai_cached_and_reasoning_tokens_from_details_cost_published_prices(make_settings, engine, tmp_path):
    chat = chat_completion("chatcmpl-1", OCT_1, 10000, 4000, 2000, 500)
    # The Responses object (OpenAI API reference, "The response object": usage.input_tokens,
    # input_tokens_details.cached_tokens, output_tokens_details.reasoning_tokens, created_at).
    response = {"id": "resp_1", "object": "response", "created_at": OCT_1, "status": "completed",
                "model": "gpt-4o-mini", "output": [],
                "usage": {"input_tokens": 3000, "input_tokens_details": {"cached_tokens": 1000},
                          "output_tokens": 700, "output_tokens_details": {"reasoning_tokens": 300},
                          "total_tokens": 3700}}
    stats = ingest_lines(make_settings, engine, tmp_path, "openai.jsonl", chat, response)
    assert stats.accepted == 2
    tokens = add(classes(6000, 4000, output=2000, reasoning=500), classes(2000, 1000, output=700, reasoning=300))
    assert ledger(engine) == {"gpt-4o-mini": expect(tokens, cost(MINI, tokens))}


def test_an_openai_batch_output_line_is_priced_at_the_batch_rate(make_settings, engine, tmp_path):
    # Batch API output file (OpenAI API reference, "The request output object": id, custom_id,
    # response.status_code / request_id / body, error); dated after the batch price starts.
    line = {"id": "batch_req_1", "custom_id": "request-1", "error": None,
            "response": {"status_code": 200, "request_id": "req_1",
                         "body": chat_completion("chatcmpl-b1", OCT_20, 10000, 2000, 2000, 0)}}
    failed = {"id": "batch_req_2", "custom_id": "request-2", "response": None,
              "error": {"code": "batch_expired", "message": "not completed in time"}}
    stats = ingest_lines(make_settings, engine, tmp_path, "batch.jsonl", line, failed)
    assert (stats.accepted, stats.skipped, stats.rejected) == (1, 1, 0)
    tokens = classes(8000, 2000, output=2000)
    assert ledger(engine) == {"gpt-4o-mini": expect(tokens, cost(MINI_BATCH, tokens))}


# --------------------------------------------------------------------------- LiteLLM, OTel, Langfuse, Helicone

def test_litellm_spend_logs_keep_their_spend_and_price_every_class_from_the_usage_object(
        make_settings, engine, tmp_path):
    # LiteLLM_SpendLogs (schema.prisma); metadata.usage_object is LiteLLM's Usage: prompt_tokens
    # with the cache inside, prompt_tokens_details.cached_tokens and cache_creation_token_details.
    row = {"request_id": "ll-1", "call_type": "acompletion", "api_key": "hashed", "spend": 0.5,
           "startTime": "2026-10-01T12:00:00Z", "endTime": "2026-10-01T12:00:02Z", "model": "claude-sonnet-4-5",
           "model_group": "sonnet", "custom_llm_provider": "anthropic", "prompt_tokens": 24000,
           "completion_tokens": 500, "total_tokens": 24500, "status": "success",
           "metadata": {"usage_object": {
               "prompt_tokens": 24000, "completion_tokens": 500, "cache_read_input_tokens": 20000,
               "cache_creation_input_tokens": 3000,
               "prompt_tokens_details": {"cached_tokens": 20000, "cache_creation_token_details": {
                   "ephemeral_5m_input_tokens": 2000, "ephemeral_1h_input_tokens": 1000}},
               "completion_tokens_details": {"reasoning_tokens": 100}}}}
    stats = ingest_lines(make_settings, engine, tmp_path, "spend.jsonl", row)
    assert stats.accepted == 1
    tokens = classes(1000, 20000, 2000, 1000, 500, 100)
    assert ledger(engine) == {"claude-sonnet-4-5": expect(tokens, cost(SONNET, tokens), Decimal("0.5"))}


def test_otel_genai_spans_price_input_with_its_cache_inside(make_settings, engine, tmp_path):
    # OTLP JSON (opentelemetry-proto, JSON encoding) with GenAI semantic-convention attributes:
    # gen_ai.usage.input_tokens SHOULD include cached tokens; cache_read / cache_creation variants.
    def attr(key: str, value: Any) -> dict:
        return {"key": key, "value": {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}}
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "chat",
            "startTimeUnixNano": str(OCT_1 * 10**9), "endTimeUnixNano": str(OCT_1 * 10**9 + 10**9),
            "attributes": [attr("gen_ai.provider.name", "anthropic"), attr("gen_ai.request.model", "claude-sonnet-4-5"),
                           attr("gen_ai.usage.input_tokens", 23000), attr("gen_ai.usage.output_tokens", 400),
                           attr("gen_ai.usage.cache_read.input_tokens", 20000),
                           attr("gen_ai.usage.cache_creation.input_tokens", 2000)]}
    line = {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "bot")]},
                               "scopeSpans": [{"spans": [span]}]}]}
    stats = ingest_lines(make_settings, engine, tmp_path, "otel.jsonl", line)
    assert stats.accepted == 1
    tokens = classes(1000, 20000, 2000, 0, 400)  # no TTL attribute: 5-minute writes
    assert ledger(engine) == {"claude-sonnet-4-5": expect(tokens, cost(SONNET, tokens))}


def test_langfuse_generations_sum_their_usage_details_and_keep_the_reported_cost(make_settings, engine, tmp_path):
    # Langfuse "Token and cost tracking": usageDetails keys are summed into input and output
    # (input excludes input_cached_tokens; output excludes output_reasoning_tokens).
    page = {"data": [{"id": "obs-1", "traceId": "t-1", "type": "GENERATION", "startTime": "2026-10-01T12:00:00Z",
                      "model": "gpt-4o-mini", "usageDetails": {"input": 6000, "input_cached_tokens": 4000,
                                                               "output": 1500, "output_reasoning_tokens": 500},
                      "costDetails": {"total": 0.002}}],
            "meta": {"page": 1, "limit": 50, "totalItems": 1, "totalPages": 1}}
    stats = ingest_lines(make_settings, engine, tmp_path, "langfuse.jsonl", page)
    assert stats.accepted == 1
    tokens = classes(6000, 4000, output=2000, reasoning=500)
    assert ledger(engine) == {"gpt-4o-mini": expect(tokens, cost(MINI, tokens), Decimal("0.002"))}


def test_a_helicone_csv_export_prices_its_cache_writes_and_reads_beside_the_prompt(make_settings, engine, tmp_path):
    # Helicone request export (HeliconeRequest): prompt_tokens beside prompt_cache_write_tokens
    # and prompt_cache_read_tokens, provider upper case, cost in USD.
    row = {"request_id": "hc-1", "request_created_at": "2026-10-01T12:00:00Z", "request_model": "claude-sonnet-4-5",
           "provider": "ANTHROPIC", "response_status": "200", "prompt_tokens": "1000", "completion_tokens": "500",
           "prompt_cache_write_tokens": "3000", "prompt_cache_read_tokens": "20000", "cost": "0.03"}
    buf = io.StringIO()
    csv.writer(buf).writerows([list(row), list(row.values())])
    path = tmp_path / "helicone.csv"
    path.write_text(buf.getvalue())
    stats = Ingestor(make_settings(), engine).ingest_paths([path], None)
    assert stats.accepted == 1
    tokens = classes(1000, 20000, 3000, 0, 500)
    assert ledger(engine) == {"claude-sonnet-4-5": expect(tokens, cost(SONNET, tokens), Decimal("0.03"))}


# --------------------------------------------------------------------------- seed 004: totals only

def test_seed_004_total_only_records_are_priced_by_an_override_flat_rate(make_settings, engine, tmp_path):
    # Seed 004's llm_generation_logs: user_id, tenant_id, use_case, tokens_used, created_at (Grok).
    records = [{"id": f"gen-{i}", "user_id": "u-1", "tenant_id": "t-1", "use_case": "auto_populate",
                "provider": "x-ai", "model": "grok-2", "tokens_used": n, "created_at": "2026-10-01T12:00:00Z"}
               for i, n in enumerate((1988, 40000))]
    override = ('[[pricing.overrides]]\nmodel = "grok-2"\nprovider = "x-ai"\ntotal_per_mtok = "5.00"\n'
                'effective_from = "2026-01-01"\n')
    stats = ingest_lines(make_settings, engine, tmp_path, "seed004.jsonl", *records, settings=override)
    assert stats.accepted == 2
    with engine.connect() as conn:
        got = [(r.total_tokens, r.cost_usd, r.cost_status)
               for r in conn.execute(select(EVENTS).order_by(EVENTS.c.event_id))]
    assert got == [(1988, Decimal(1988) * 5 / M, "priced"), (40000, Decimal(40000) * 5 / M, "priced")]


def test_anthropic_batch_results_are_priced_at_the_batch_rate_and_unbilled_results_skipped(
        make_settings, engine, tmp_path):
    # Message Batches results (Anthropic API reference, "Retrieve Message Batch results"): one
    # {"custom_id", "result": {"type": succeeded | errored | canceled | expired, ...}} a line; the app
    # adds the time (the results have none), here after the batch price starts.
    message = anthropic_message("msg_b1", "claude-sonnet-4-5", 1000, 2000, 1000, 20000, 500)
    lines = [{"custom_id": "req-1", "result": {"type": "succeeded", "message": message},
              "created_at": "2026-10-20T12:00:00Z"},
             {"custom_id": "req-2", "result": {"type": "errored", "error": {
                 "type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}},
              "created_at": "2026-10-20T12:00:00Z"},
             {"custom_id": "req-3", "result": {"type": "canceled"}, "created_at": "2026-10-20T12:00:00Z"},
             {"custom_id": "req-4", "result": {"type": "expired"}, "created_at": "2026-10-20T12:00:00Z"}]
    stats = ingest_lines(make_settings, engine, tmp_path, "results.jsonl", *lines)
    assert (stats.accepted, stats.skipped, stats.rejected) == (1, 3, 0)
    tokens = classes(1000, 20000, 2000, 1000, 500)
    assert ledger(engine) == {"claude-sonnet-4-5": expect(tokens, cost(SONNET_BATCH, tokens))}
    with engine.connect() as conn:
        row = conn.execute(select(EVENTS)).one()
    assert (row.event_id, row.service_tier, row.metadata["custom_id"]) == ("msg_b1", "batch", "req-1")
