"""The canonical record and its aliases (DESIGN.md, "The raw usage record").

The names the seed systems already write are aliases of the canonical ones, so
existing logs ingest without a conversion step. Where several are present, the
canonical name wins, then the aliases in the order listed.
"""

from __future__ import annotations

# canonical name -> aliases, in the order they win (DESIGN.md).
ALIASES: dict[str, tuple[str, ...]] = {
    "event_id": ("request_id", "id", "requestId"),
    "occurred_at": ("timestamp", "created_at", "createdAt", "ts", "time"),
    "account_id": ("user_id", "userId", "user"),
    "tenant_id": ("tenantId", "org_id", "organization_id", "team_id"),  # team_id: LiteLLM_SpendLogs
    "service": ("operation_type", "operationType", "purpose", "use_case", "useCase"),
    "provider": ("custom_llm_provider",),
    "model": ("modelId", "model_requested", "model_name"),
    "model_used": ("model_actually_used",),
    "status": (),
    "status_code": (),
    "prompt_tokens": ("input_tokens", "inputTokens", "promptTokens"),
    "completion_tokens": ("output_tokens", "outputTokens", "completionTokens"),
    "total_tokens": ("tokens_used", "tokensUsed", "totalTokens"),
    "cached_tokens": ("cache_read_tokens",),
    "reasoning_tokens": (),
    # Parts of prompt_tokens, like cached_tokens. No aliases on purpose: Anthropic's
    # cache_creation_input_tokens sits beside an input_tokens that excludes the cache, so it is
    # read by the anthropic format module (worker/ingest/formats/), never as a canonical field.
    "cache_write_tokens": (),
    "cache_write_1h_tokens": (),
    "service_tier": (),  # batch | flex | priority | ... (OpenAI and Anthropic responses' service_tier)
    "api_key": ("api_key_id",),  # api_key: LiteLLM_SpendLogs (hashed); api_key_id: OpenAI/Anthropic usage APIs
    "project_id": ("workspace_id",),  # project_id: OpenAI usage API; workspace_id: Anthropic usage report
    "latency_ms": ("duration_ms", "response_time_ms", "latencyMs"),
    "cost_usd": ("total_cost_usd", "cost"),
    "error_message": ("errorMessage", "error"),
}
KNOWN_KEYS = frozenset(k for canon, al in ALIASES.items() for k in (canon, *al)) | {"metadata", "record_type"}

