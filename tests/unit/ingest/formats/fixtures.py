"""Records written after each tool's published schema (cited in the tests that use them)."""

from __future__ import annotations

import json

LITELLM_ROW = {
    "request_id": "chatcmpl-7f3a", "call_type": "acompletion", "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
    "spend": 0.00123, "total_tokens": 1500, "prompt_tokens": 1200, "completion_tokens": 300,
    "startTime": "2026-10-01T12:00:00.000Z", "endTime": "2026-10-01T12:00:01.250Z",
    "model": "claude-3-5-sonnet-20241022", "model_group": "sonnet", "custom_llm_provider": "anthropic",
    "user": "internal-user-1", "end_user": "customer-42", "team_id": "team-a", "status": "success",
    "cache_hit": "False", "request_tags": [],
    "metadata": {"user_api_key_team_alias": "search", "user_api_key_alias": "prod-key",
                 "usage_object": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                                  "cache_read_input_tokens": 800, "cache_creation_input_tokens": 100,
                                  "completion_tokens_details": {"reasoning_tokens": 50}}},
    "messages": [{"role": "user", "content": "secret prompt"}], "response": {"choices": []},
}

OTLP_LINE = {"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "support-bot"}}]},
    "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai"}, "spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "chat gpt-4o",
         "kind": 3, "startTimeUnixNano": "1790856000000000000", "endTimeUnixNano": "1790856001500000000",
         "attributes": [
             {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
             {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
             {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
             {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o-2024-08-06"}},
             {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1000"}},
             {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "200"}},
             {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "400"}},
             {"key": "user.id", "value": {"stringValue": "u-7"}}],
         "status": {"code": 1}},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "aaa19b7ec3c1b175", "name": "GET /search",
         "kind": 2, "startTimeUnixNano": "1790856000000000000", "endTimeUnixNano": "1790856002000000000",
         "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}}]}]}]}]}

LANGFUSE_PAGE = {"data": [
    {"id": "obs-1", "traceId": "tr-1", "type": "GENERATION", "name": "answer", "startTime": "2026-10-01T12:00:00.000Z",
     "endTime": "2026-10-01T12:00:02.000Z", "model": "gpt-4o-mini", "level": "DEFAULT", "userId": "u-9",
     "usageDetails": {"input": 600, "input_cached_tokens": 400, "output": 150, "output_reasoning_tokens": 30, "total": 1150},
     "costDetails": {"input": 0.0001, "output": 0.00009, "total": 0.00019}, "calculatedTotalCost": 0.00019},
    {"id": "obs-2", "traceId": "tr-1", "type": "SPAN", "name": "retrieve", "startTime": "2026-10-01T12:00:00.000Z"},
], "meta": {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}}

HELICONE_ROW = {"request_id": "hc-1", "request_created_at": "2026-10-01T12:00:00.000Z", "request_user_id": "u-3",
                "request_model": "claude-3-5-sonnet-20241022", "response_model": "claude-3-5-sonnet-20241022",
                "provider": "ANTHROPIC", "response_status": 200, "delay_ms": 900, "prompt_tokens": 100,
                "completion_tokens": 50, "total_tokens": 150, "prompt_cache_write_tokens": 300,
                "prompt_cache_read_tokens": 600, "cost": 0.0021, "request_properties": {"Helicone-Property-App": "x"}}

OPENAI_CHAT = {"id": "chatcmpl-abc123", "object": "chat.completion", "created": 1790856000, "model": "gpt-4o-2024-08-06",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 2000, "completion_tokens": 500, "total_tokens": 2500,
                         "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
                         "completion_tokens_details": {"reasoning_tokens": 128, "audio_tokens": 0}},
               "service_tier": "default", "system_fingerprint": "fp_1"}

OPENAI_RESPONSE = {"id": "resp_67ccd2bed1ec8190", "object": "response", "created_at": 1790856000, "status": "completed",
                   "model": "o3-mini", "output": [{"type": "message", "content": []}], "service_tier": "flex",
                   "usage": {"input_tokens": 300, "input_tokens_details": {"cached_tokens": 100}, "output_tokens": 900,
                             "output_tokens_details": {"reasoning_tokens": 800}, "total_tokens": 1200}}

OPENAI_BATCH_LINE = {"id": "batch_req_123", "custom_id": "request-2",
                     "response": {"status_code": 200, "request_id": "req_123", "body": dict(OPENAI_CHAT, id="chatcmpl-b1")},
                     "error": None}
OPENAI_BATCH_FAILED = {"id": "batch_req_456", "custom_id": "request-3", "response": None,
                       "error": {"code": "batch_expired", "message": "not completed in time"}}

ANTHROPIC_MESSAGE = {"id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
                     "model": "claude-sonnet-4-20250514", "content": [{"type": "text", "text": "Hi"}],
                     "stop_reason": "end_turn", "stop_sequence": None,
                     "usage": {"input_tokens": 50, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 8000,
                               "cache_creation": {"ephemeral_5m_input_tokens": 1500, "ephemeral_1h_input_tokens": 500},
                               "output_tokens": 400, "service_tier": "standard"},
                     "timestamp": "2026-10-01T12:00:00Z"}

APP_NESTED_ANTHROPIC = {"request_id": "app-1", "user_id": "u-1", "timestamp": "2026-10-01T12:00:00Z",
                        "model": "claude-3-5-haiku-20241022",
                        "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 5}}
APP_NESTED_OPENAI = {"request_id": "app-2", "user_id": "u-1", "timestamp": "2026-10-01T12:00:00Z", "model": "gpt-4o-mini",
                     "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105,
                               "prompt_tokens_details": {"cached_tokens": 64}}}
APP_FLAT_ANTHROPIC = {"request_id": "app-3", "user_id": "u-2", "timestamp": "2026-10-01T12:00:00Z",
                      "model": "claude-3-5-haiku-20241022", "input_tokens": 10, "cache_creation_input_tokens": 40,
                      "cache_read_input_tokens": 50, "output_tokens": 7}


def line(record: dict) -> bytes:
    return json.dumps(record).encode() + b"\n"
