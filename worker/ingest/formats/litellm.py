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


def _tokens(row: Mapping[str, Any], usage: Mapping[str, Any], out: dict[str, Any]) -> None:
    """The row's token columns and the usage object's cache and reasoning counts, into ``out``
    (null and "" left out). The nested details are read only when the usage object has them."""
    get = usage.get
    prompt_details = get("prompt_tokens_details") or {}
    details_dict = isinstance(prompt_details, dict)
    cached = prompt_details.get("cached_tokens") if details_dict else None
    if not cached:
        cached = get("cache_read_input_tokens")
    reasoning = None
    if (completion_details := get("completion_tokens_details")) and isinstance(completion_details, dict):
        reasoning = completion_details.get("reasoning_tokens")
    split = get("cache_creation") or (prompt_details.get("cache_creation_token_details")
                                      if details_dict else None) or {}
    for name, value in (("prompt_tokens", row.get("prompt_tokens")),
                        ("completion_tokens", row.get("completion_tokens")),
                        ("total_tokens", row.get("total_tokens")), ("cached_tokens", cached),
                        ("reasoning_tokens", reasoning), ("cache_write_tokens", get("cache_creation_input_tokens")),
                        ("cache_write_1h_tokens", split.get("ephemeral_1h_input_tokens")
                         if isinstance(split, dict) else None)):
        if value is not None and value != "":
            out[name] = value


def _latency_ms(start: Any, end: Any) -> int | None:
    if start in (None, "") or end in (None, ""):
        return None
    try:
        return max(int((parse_timestamp(end) - parse_timestamp(start)).total_seconds() * 1000), 0)
    except RecordError:
        return None


def expand(row: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """One spend-log row -> (canonical records, records skipped).

    The hot path: the canonical record is written in one pass, each field set only when its
    value is neither null nor "" (no intermediate dicts filtered afterwards)."""
    get = row.get
    meta = get("metadata")
    if type(meta) is not dict:
        meta = parse_metadata(meta) or {}
    usage = meta.get("usage_object")
    if type(usage) is not dict:
        usage = parse_metadata(usage) if isinstance(usage, str) else usage
        if not isinstance(usage, dict):
            usage = {}
    model = get("model") or None
    start = get("startTime")
    out: dict[str, Any] = {}
    for name, value in (("event_id", get("request_id")), ("occurred_at", start),
                        ("account_id", get("end_user") or get("user")), ("tenant_id", get("team_id")),
                        ("provider", get("custom_llm_provider")), ("model", get("model_group") or model),
                        ("model_used", model), ("status", get("status")),
                        ("latency_ms", _latency_ms(start, get("endTime"))), ("cost_usd", get("spend")),
                        ("api_key", get("api_key")), ("project_id", meta.get("user_api_key_project_id"))):
        if value is not None and value != "":
            out[name] = value
    _tokens(row, usage, out)
    kept = {k: v for k in _KEPT_METADATA if (v := meta.get(k)) is not None and v != ""}
    for k in _KEPT_COLUMNS:
        if (v := get(k)) is not None and v != "" and v != [] and v != "[]":
            kept[k] = v
    if get("user") and get("end_user"):
        kept["litellm_user"] = row["user"]
    if kept:
        out["metadata"] = kept
    return [out], 0
