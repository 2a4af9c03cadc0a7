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
from worker.ingest.formats.reading import Reading, as_record

NAME = "litellm"
_KEPT_METADATA = ("user_api_key_team_alias", "user_api_key_alias", "user_api_key_user_id", "requester_ip_address",
                  "user_api_key_project_alias")
_KEPT_COLUMNS = ("call_type", "api_base", "cache_hit", "request_tags", "session_id", "model_id")
# canonical field <- the row's columns, the first non-empty winning (the rest is derived from metadata)
_FIELDS = {
    "event_id": ("request_id",), "occurred_at": ("startTime",), "account_id": ("end_user", "user"),
    "tenant_id": ("team_id",), "provider": ("custom_llm_provider",), "model": ("model_group", "model"),
    "model_used": ("model",), "status": ("status",), "cost_usd": ("spend",), "api_key": ("api_key",),
    "prompt_tokens": ("prompt_tokens",), "completion_tokens": ("completion_tokens",),
    "total_tokens": ("total_tokens",),
}


def detects(keys: frozenset[str]) -> bool:
    return "spend" in keys and ("startTime" in keys or "request_id" in keys)


def _object(value: Any) -> dict[str, Any]:
    """A JSON column as an object: a dict as it is (the table, /spend/logs), JSON text read (the CSV export)."""
    if type(value) is dict:
        return value
    parsed = parse_metadata(value) if isinstance(value, (str, bytes)) else value
    return parsed if isinstance(parsed, dict) else {}


def _derive(row: Mapping[str, Any], values: dict[str, Any]) -> dict[str, Any] | None:
    """The usage object's cache and reasoning counts, the latency, the project, and the metadata kept.
    The nested details are read only when the usage object has them."""
    meta = _object(row.get("metadata"))
    usage = _object(meta.get("usage_object"))
    get = usage.get
    prompt_details = get("prompt_tokens_details")
    if type(prompt_details) is not dict:
        prompt_details = {}
    values["cached_tokens"] = prompt_details.get("cached_tokens") or get("cache_read_input_tokens")
    if (completion_details := get("completion_tokens_details")) and type(completion_details) is dict:
        values["reasoning_tokens"] = completion_details.get("reasoning_tokens")
    values["cache_write_tokens"] = get("cache_creation_input_tokens")
    split = get("cache_creation") or prompt_details.get("cache_creation_token_details")
    if split and type(split) is dict:
        values["cache_write_1h_tokens"] = split.get("ephemeral_1h_input_tokens")
    values["project_id"] = meta.get("user_api_key_project_id")
    start, end = values.get("occurred_at"), row.get("endTime")
    if start is not None and end is not None and end != "":
        try:  # the start read once: the normaliser takes the parsed time as it is
            values["occurred_at"] = start = parse_timestamp(start)
            values["latency_ms"] = max(int((parse_timestamp(end) - start).total_seconds() * 1000), 0)
        except RecordError:
            pass  # an unreadable start is rejected by the normaliser; an unreadable end: no latency
    kept = {k: v for k in _KEPT_METADATA if (v := meta.get(k)) is not None and v != ""}
    for k in _KEPT_COLUMNS:
        if (v := row.get(k)) is not None and v != "" and v != [] and v != "[]":
            kept[k] = v
    if row.get("user") and row.get("end_user"):
        kept["litellm_user"] = row["user"]
    return kept or None


READING = Reading(_FIELDS, _derive, derived=frozenset({"cached_tokens", "reasoning_tokens", "cache_write_tokens",
                                                        "cache_write_1h_tokens", "project_id", "latency_ms"}),
                  kept=frozenset(), own_metadata=False)


def plan(keys: frozenset[str]) -> Reading:
    """Every spend-log row is one call: read straight into its event."""
    return READING


def expand(row: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """One spend-log row -> ([its canonical record], 0): the reading's view, as the normaliser reads it."""
    return [as_record(READING, row)], 0
