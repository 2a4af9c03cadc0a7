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
A CSV of these columns is read the same way (every cell text, ``metadata`` as JSON text).

The UI's own export is not of calls: its "Export Team Usage" / "Export Tag Usage"
(``ui/litellm-dashboard/src/components/EntityUsageExport/utils.ts``, ``generateDailyData`` and
``generateDailyWithModelsData``, written by ``Papa.unparse``) gives one row per day and team or
tag, ``Date``, ``Team``/``Tag``, ``Team ID``/``Tag ID``, ``Spend ($)``, ``Requests`` ... A row of
it is a day's totals: booked as one call it would count its requests as one and its spend
without its models. Such rows are recognised (:func:`is_usage_export`) and quarantined with a
reason that says so, never booked.

The hot path: a row is one call, read straight into its event by the plan of its key set
(:func:`plan`, a :class:`~worker.ingest.formats.reading.Reading`): the columns through one
``itemgetter``, the usage object's nested counts by fixed paths in ``derive``.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any, Callable, Mapping

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
    return ("spend" in keys and ("startTime" in keys or "request_id" in keys)) or is_usage_export(keys)


def is_usage_export(keys: frozenset[str]) -> bool:
    """A row of the UI's team or tag usage export (a day's totals; see the module docstring)."""
    return "Date" in keys and "Spend ($)" in keys and ("Team ID" in keys or "Tag ID" in keys)


def usage_export_row(row: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """A usage-export row is refused, saying what it is (its own ``Requests`` count)."""
    raise RecordError(f"a LiteLLM usage export row ({row.get('Date')!s}: one day's totals for a team or tag, "
                      f"{row.get('Requests')!s} requests), not a call; ingest the spend logs "
                      f"(LiteLLM_SpendLogs or /spend/logs) instead")


def _object(value: Any) -> dict[str, Any]:
    """A JSON column as an object: a dict as it is (the table, /spend/logs), JSON text read (the CSV export)."""
    if type(value) is dict:
        return value
    parsed = parse_metadata(value) if isinstance(value, (str, bytes)) else value
    return parsed if isinstance(parsed, dict) else {}


def _usage(meta: dict[str, Any], values: dict[str, Any]) -> None:
    """The usage object's cache and reasoning counts and the key's project into ``values``."""
    usage = meta.get("usage_object")
    if usage is not None and type(usage) is not dict:
        usage = _object(usage)
    if usage:
        get = usage.get
        prompt_details = get("prompt_tokens_details")
        if type(prompt_details) is not dict:
            prompt_details = _NO_DETAILS
        values["cached_tokens"] = prompt_details.get("cached_tokens") or get("cache_read_input_tokens")
        if (completion_details := get("completion_tokens_details")) and type(completion_details) is dict:
            values["reasoning_tokens"] = completion_details.get("reasoning_tokens")
        values["cache_write_tokens"] = get("cache_creation_input_tokens")
        split = get("cache_creation") or prompt_details.get("cache_creation_token_details")
        if split and type(split) is dict:
            values["cache_write_1h_tokens"] = split.get("ephemeral_1h_input_tokens")
    values["project_id"] = meta.get("user_api_key_project_id")


_NO_DETAILS: dict[str, Any] = {}
_MS = timedelta(milliseconds=1)


def _latency(values: dict[str, Any], end: Any) -> None:
    """endTime - startTime in whole milliseconds (0 when the end is before the start); the start is
    read once here (the normaliser takes the parsed time as it is)."""
    start = values.get("occurred_at")
    if start is None or end is None or end == "":
        return
    try:
        values["occurred_at"] = start = parse_timestamp(start)
        latency = (parse_timestamp(end) - start) // _MS
    except RecordError:
        return  # an unreadable start is rejected by the normaliser; an unreadable end: no latency
    values["latency_ms"] = latency if latency > 0 else 0


_DERIVED = frozenset({"cached_tokens", "reasoning_tokens", "cache_write_tokens", "cache_write_1h_tokens",
                      "project_id", "latency_ms", "occurred_at"})


@lru_cache(maxsize=256)
def plan(keys: frozenset[str]) -> Reading | Callable[[Mapping[str, Any]], tuple[list[dict[str, Any]], int]]:
    """Every spend-log row is one call, read straight into its event. Which of the kept columns a row
    has, whether it has metadata, times its end or names both a user and an end user, is decided
    here, once."""
    if is_usage_export(keys):
        return usage_export_row
    columns = tuple(k for k in _KEPT_COLUMNS if k in keys)
    timed = "endTime" in keys
    both_users = "user" in keys and "end_user" in keys
    has_metadata = "metadata" in keys

    def derive(row: Mapping[str, Any], values: dict[str, Any]) -> dict[str, Any] | None:
        kept: dict[str, Any] = {}
        if has_metadata:
            meta = row["metadata"]
            if type(meta) is not dict:
                meta = _object(meta)
            if meta:
                _usage(meta, values)
                for k in _KEPT_METADATA:
                    if (v := meta.get(k)) is not None and v != "":
                        kept[k] = v
        if timed:
            _latency(values, row["endTime"])
        for k in columns:
            if (v := row[k]) is not None and v != "" and v != [] and v != "[]":
                kept[k] = v
        if both_users and row["user"] and row["end_user"]:
            kept["litellm_user"] = row["user"]
        return kept or None

    return Reading(_FIELDS, derive, _DERIVED, kept=frozenset(), own_metadata=False)


def expand(row: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """One spend-log row -> ([its canonical record], 0): the reading's view, as the normaliser reads it."""
    how = plan(frozenset(row))
    return ([as_record(how, row)], 0) if isinstance(how, Reading) else how(row)
