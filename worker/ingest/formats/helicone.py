"""Helicone request exports (``npx @helicone/export``, CSV and JSONL; the request query API).

Field names from Helicone's request object (``HeliconeRequest`` in Helicone/helicone
``packages/llm-mapper/types.ts``, what ``POST /v1/request/query-clickhouse`` returns and the JSONL
export writes whole): ``request_id``, ``request_created_at``, ``request_user_id``,
``request_model`` / ``model`` / ``response_model``, ``provider`` (upper case, ``OPENAI``),
``response_status`` (HTTP), ``delay_ms``, ``prompt_tokens``, ``completion_tokens``,
``total_tokens``, ``prompt_cache_write_tokens``, ``prompt_cache_read_tokens``,
``prompt_audio_tokens``, ``completion_audio_tokens``, ``cost`` / ``costUSD`` (USD) and
``request_properties`` (the custom properties).

Helicone stores the cache and audio tokens beside ``prompt_tokens``, not in it: its OpenAI body
processor (``valhalla/jawn/src/lib/shared/bodyProcessors/openaiBodyProcessor.ts``) stores
``prompt_tokens - cached_tokens - audio_tokens`` as ``prompt_tokens`` and the cached ones as
``prompt_cache_read_tokens``; its Anthropic one stores ``input_tokens`` (already without the cache);
its cost (``packages/cost/index.ts``, ``costOfPrompt``: "regular prompt tokens (these are the fresh,
uncached tokens)") adds the classes up. So prompt = prompt_tokens + cache writes + cache reads +
prompt audio, and completion = completion_tokens + completion audio (the provider's own counts).

The CSV export (Helicone/helicone ``examples/export/typescript/index.ts``) writes only
``response_id``, ``response_created_at``, ``response_status``, ``request_created_at``,
``request_body``, ``request_properties``, ``request_user_id``, ``model``, ``prompt_tokens``,
``completion_tokens``, ``latency`` and ``cost`` (``cost_usd`` in earlier versions): no request id
(the response id is the event's id), no provider and no cache tokens, so a cached call's prompt
there is its uncached part only; its reported cost is Helicone's whole cost. The bodies are not kept.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from worker.ingest.fields import parse_metadata, parse_tokens

NAME = "helicone"


def detects(keys: frozenset[str]) -> bool:
    return "request_created_at" in keys


def _first(row: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    return next((v for k in keys if (v := row.get(k)) is not None and v != ""), None)


def expand(row: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """One exported request -> (canonical records, records skipped)."""
    uncached = parse_tokens(row.get("prompt_tokens"), "prompt_tokens")
    read = parse_tokens(row.get("prompt_cache_read_tokens"), "prompt_cache_read_tokens") or 0
    written = parse_tokens(row.get("prompt_cache_write_tokens"), "prompt_cache_write_tokens") or 0
    audio_in = parse_tokens(row.get("prompt_audio_tokens"), "prompt_audio_tokens") or 0
    audio_out = parse_tokens(row.get("completion_audio_tokens"), "completion_audio_tokens") or 0
    completion = parse_tokens(row.get("completion_tokens"), "completion_tokens")
    props = parse_metadata(row.get("request_properties") or row.get("properties")) or {}
    provider = row.get("provider")
    out = {
        "event_id": row.get("request_id") or row.get("response_id"),
        "occurred_at": row.get("request_created_at"),
        "account_id": row.get("request_user_id") or row.get("user_id") or row.get("helicone_user"),
        "provider": provider.lower() if isinstance(provider, str) else provider,
        "model": row.get("request_model") or row.get("model") or row.get("response_model"),
        "model_used": row.get("response_model") or row.get("model"),
        "status_code": row.get("response_status") or row.get("status"),
        "latency_ms": row.get("delay_ms") or row.get("latency"),
        "prompt_tokens": None if uncached is None else uncached + read + written + audio_in,
        "completion_tokens": None if completion is None else completion + audio_out,
        # derived where a class beside the counts is set (Helicone's total leaves the cache out)
        "total_tokens": None if read or written or audio_in or audio_out else row.get("total_tokens"),
        "cached_tokens": read,
        "cache_write_tokens": written,
        "cost_usd": _first(row, ("cost", "costUSD", "cost_usd")),
        "metadata": props or None,
    }
    return [{k: v for k, v in out.items() if v is not None and v != ""}], 0


def plan(keys: frozenset[str]) -> Callable[[Mapping[str, Any]], tuple[list[dict[str, Any]], int]]:
    """Records of any key set are expanded (see the module docstring)."""
    return expand
