"""Langfuse observations of type GENERATION, from public API pages and exports.

Names from Langfuse's public API (``GET /api/public/observations``: a page
``{"data": [...], "meta": {...}}`` of observations with ``id``, ``traceId``, ``type``,
``name``, ``startTime``, ``endTime``, ``model``, ``level``, ``statusMessage``,
``usageDetails``, ``costDetails``, ``calculatedTotalCost``, the older ``usage``
``{input, output, total}`` and ``promptTokens`` / ``completionTokens`` / ``totalTokens``)
and its token-and-cost docs: usage types are arbitrary strings; those that include
``input`` are input, those that include ``output`` output, and without a ``total``
the total is their sum. ``userId`` is the trace's, present in exports. ``projectId`` (the v2 observations API's
``ObservationV2.projectId``, "the project ID this observation belongs to") becomes ``project_id``. Observations
of another type (SPAN, EVENT) are not LLM calls: skipped.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from worker.ingest.fields import RecordError, parse_timestamp, parse_tokens

NAME = "langfuse"


def detects(keys: frozenset[str]) -> bool:
    return {"data", "meta"} <= keys or ({"type", "startTime"} <= keys and ("traceId" in keys or "usageDetails" in keys))


def _usage(obs: Mapping[str, Any]) -> dict[str, Any]:
    details = obs.get("usageDetails")
    if isinstance(details, dict) and details:
        counts = {k: parse_tokens(v, f"usageDetails.{k}") or 0 for k, v in details.items()}
        prompt = sum(v for k, v in counts.items() if "input" in k)
        completion = sum(v for k, v in counts.items() if "output" in k)
        out = {"prompt_tokens": prompt, "completion_tokens": completion,
               "total_tokens": counts.get("total", prompt + completion),
               "cached_tokens": sum(v for k, v in counts.items() if "cache_read" in k or "cached" in k),
               "cache_write_tokens": sum(v for k, v in counts.items() if "cache_creation" in k or "cache_write" in k),
               "cache_write_1h_tokens": sum(v for k, v in counts.items() if "1h" in k),
               "reasoning_tokens": sum(v for k, v in counts.items() if "reasoning" in k)}
        return out
    usage = obs.get("usage") if isinstance(obs.get("usage"), dict) else {}
    out = {"prompt_tokens": usage.get("input", obs.get("promptTokens")),
           "completion_tokens": usage.get("output", obs.get("completionTokens")),
           "total_tokens": usage.get("total", obs.get("totalTokens"))}
    return {k: v for k, v in out.items() if v is not None}


def _cost(obs: Mapping[str, Any]) -> Any:
    details = obs.get("costDetails")
    if isinstance(details, dict) and details.get("total") is not None:
        return details["total"]
    return obs.get("calculatedTotalCost", obs.get("totalCost"))


def _latency_ms(start: Any, end: Any) -> int | None:
    try:
        return max(int((parse_timestamp(end) - parse_timestamp(start)).total_seconds() * 1000), 0)
    except RecordError:
        return None


def observation(obs: Mapping[str, Any]) -> dict[str, Any] | None:
    """One observation -> a canonical record, or None when it is not a generation."""
    if str(obs.get("type") or "").upper() != "GENERATION":
        return None
    failed = str(obs.get("level") or "").upper() == "ERROR"
    out = {
        "event_id": obs.get("id"),
        "occurred_at": obs.get("startTime"),
        "account_id": obs.get("userId"),
        "project_id": obs.get("projectId"),
        "model": obs.get("model"),
        "status": "error" if failed else "success",
        "error_message": obs.get("statusMessage") if failed else None,
        "latency_ms": _latency_ms(obs.get("startTime"), obs.get("endTime")) if obs.get("endTime") else None,
        "cost_usd": _cost(obs),
        **_usage(obs),
        "metadata": {k: obs[k] for k in ("traceId", "name", "environment", "sessionId") if obs.get(k)} or None,
    }
    return {k: v for k, v in out.items() if v is not None and v != ""}


def expand(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """An API page (many observations) or one observation -> (canonical records, skipped)."""
    items = record["data"] if isinstance(record.get("data"), list) else [record]
    records = [r for r in (observation(o) for o in items if isinstance(o, dict)) if r is not None]
    return records, len(items) - len(records)


def plan(keys: frozenset[str]) -> Callable[[Mapping[str, Any]], tuple[list[dict[str, Any]], int]]:
    """Records of any key set are expanded (see the module docstring)."""
    return expand
