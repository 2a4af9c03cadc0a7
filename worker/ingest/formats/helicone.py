"""Helicone request exports (``npx @helicone/export``, CSV and JSONL; the request query API).

Field names from Helicone's request object (``HeliconeRequest`` in its REST API
``POST /v1/request/query``): ``request_id``, ``request_created_at``, ``request_user_id``,
``request_model`` / ``model`` / ``response_model``, ``provider`` (upper case, ``OPENAI``),
``response_status`` (HTTP), ``delay_ms``, ``prompt_tokens``, ``completion_tokens``,
``total_tokens``, ``prompt_cache_write_tokens``, ``prompt_cache_read_tokens``, ``cost``
(USD; older exports ``cost_usd``) and ``request_properties`` (the custom properties).
Helicone counts the cache tokens beside ``prompt_tokens`` (its cost sums the three
classes): prompt = prompt_tokens + cache writes + cache reads. The bodies are not kept.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from worker.ingest.fields import parse_metadata, parse_tokens

NAME = "helicone"


def detects(keys: frozenset[str]) -> bool:
    return "request_created_at" in keys


def expand(row: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """One exported request -> (canonical records, records skipped)."""
    uncached = parse_tokens(row.get("prompt_tokens"), "prompt_tokens")
    read = parse_tokens(row.get("prompt_cache_read_tokens"), "prompt_cache_read_tokens") or 0
    written = parse_tokens(row.get("prompt_cache_write_tokens"), "prompt_cache_write_tokens") or 0
    props = parse_metadata(row.get("request_properties") or row.get("properties")) or {}
    provider = row.get("provider")
    out = {
        "event_id": row.get("request_id"),
        "occurred_at": row.get("request_created_at"),
        "account_id": row.get("request_user_id") or row.get("user_id") or row.get("helicone_user"),
        "provider": provider.lower() if isinstance(provider, str) else provider,
        "model": row.get("request_model") or row.get("model") or row.get("response_model"),
        "model_used": row.get("response_model") or row.get("model"),
        "status_code": row.get("response_status") or row.get("status"),
        "latency_ms": row.get("delay_ms") or row.get("latency"),
        "prompt_tokens": None if uncached is None else uncached + read + written,
        "completion_tokens": row.get("completion_tokens"),
        "total_tokens": None if read or written else row.get("total_tokens"),  # derived: cache included
        "cached_tokens": read,
        "cache_write_tokens": written,
        "cost_usd": row.get("cost", row.get("cost_usd")),
        "metadata": props or None,
    }
    return [{k: v for k, v in out.items() if v is not None and v != ""}], 0


def plan(keys: frozenset[str]) -> Callable[[Mapping[str, Any]], tuple[list[dict[str, Any]], int]]:
    """Records of any key set are expanded (see the module docstring)."""
    return expand
