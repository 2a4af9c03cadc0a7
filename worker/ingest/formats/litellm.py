"""LiteLLM proxy spend logs: ``LiteLLM_SpendLogs`` rows, the UI's CSV export, ``/spend/logs`` JSON.

Column names from LiteLLM's ``schema.prisma`` (model ``LiteLLM_SpendLogs``): ``request_id``,
``call_type``, ``api_key`` (the hashed virtual key), ``spend`` (LiteLLM's own cost),
``prompt_tokens`` / ``completion_tokens`` / ``total_tokens`` (OpenAI meaning: cache reads
inside the prompt), ``startTime`` / ``endTime``, ``model`` (the deployment's model),
``model_group`` (the name the caller asked for), ``custom_llm_provider``, ``user``,
``end_user``, ``team_id``, ``status`` and ``metadata`` (JSON: ``usage_object`` with
``prompt_tokens_details.cached_tokens``, ``cache_creation_input_tokens``,
``cache_read_input_tokens``, ``completion_tokens_details.reasoning_tokens``;
``user_api_key_team_alias``, ``user_api_key_alias``, and ``user_api_key_project_id`` /
``user_api_key_project_alias``: LiteLLM's ``SpendLogsMetadata`` keys, filled by its
``_get_spend_logs_metadata``; the project id becomes ``project_id``). The request and response bodies
(``messages``, ``response``, ``proxy_server_request``) are content and are not kept.
"""

from __future__ import annotations

from typing import Any, Mapping

from worker.ingest.fields import RecordError, parse_metadata, parse_timestamp

NAME = "litellm"
_KEPT_METADATA = ("user_api_key_team_alias", "user_api_key_alias", "user_api_key_user_id", "requester_ip_address",
                  "user_api_key_project_alias")
_KEPT_COLUMNS = ("call_type", "api_base", "cache_hit", "request_tags", "session_id", "model_id")


def detects(keys: frozenset[str]) -> bool:
    return "spend" in keys and ("startTime" in keys or "request_id" in keys)


def _tokens(row: Mapping[str, Any], usage: Mapping[str, Any]) -> dict[str, Any]:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None
    if not cached:
        cached = usage.get("cache_read_input_tokens")
    written = usage.get("cache_creation_input_tokens")
    split = usage.get("cache_creation") or (prompt_details.get("cache_creation_token_details")
                                            if isinstance(prompt_details, dict) else None) or {}
    out = {"prompt_tokens": row.get("prompt_tokens"), "completion_tokens": row.get("completion_tokens"),
           "total_tokens": row.get("total_tokens"), "cached_tokens": cached,
           "reasoning_tokens": completion_details.get("reasoning_tokens") if isinstance(completion_details, dict)
           else None, "cache_write_tokens": written,
           "cache_write_1h_tokens": split.get("ephemeral_1h_input_tokens") if isinstance(split, dict) else None}
    return {k: v for k, v in out.items() if v is not None and v != ""}


def _latency_ms(start: Any, end: Any) -> int | None:
    if start in (None, "") or end in (None, ""):
        return None
    try:
        return max(int((parse_timestamp(end) - parse_timestamp(start)).total_seconds() * 1000), 0)
    except RecordError:
        return None


def expand(row: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """One spend-log row -> (canonical records, records skipped)."""
    meta = parse_metadata(row.get("metadata")) or {}
    usage = meta.get("usage_object")
    usage = parse_metadata(usage) if isinstance(usage, str) else usage
    if not isinstance(usage, dict):
        usage = {}
    model = row.get("model") or None
    out: dict[str, Any] = {
        "event_id": row.get("request_id"),
        "occurred_at": row.get("startTime"),
        "account_id": row.get("end_user") or row.get("user"),
        "tenant_id": row.get("team_id"),
        "provider": row.get("custom_llm_provider"),
        "model": row.get("model_group") or model,
        "model_used": model,
        "status": row.get("status"),
        "latency_ms": _latency_ms(row.get("startTime"), row.get("endTime")),
        "cost_usd": row.get("spend"),
        "api_key": row.get("api_key"),
        "project_id": meta.get("user_api_key_project_id"),
        **_tokens(row, usage),
    }
    kept = {k: meta[k] for k in _KEPT_METADATA if meta.get(k) not in (None, "")}
    kept.update({k: row[k] for k in _KEPT_COLUMNS if row.get(k) not in (None, "", [], "[]")})
    if row.get("user") and row.get("end_user"):
        kept["litellm_user"] = row["user"]
    out["metadata"] = kept or None
    return [{k: v for k, v in out.items() if v is not None and v != ""}], 0
