"""The usage records the benchmarks ingest: N realistic events (models, services, accounts and tenants
with a daily rhythm), written as JSONL in one of the record shapes ingest reads (canonical, or the
shape another tool writes: LiteLLM, OpenTelemetry, Anthropic). Seeded: the same N and seed give the
same file."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

MODELS = [  # (provider, model, weight)
    ("openai", "gpt-4o-mini", 40), ("openai", "gpt-4o", 10), ("anthropic", "claude-3-5-sonnet-20241022", 15),
    ("groq", "llama-3.1-70b-versatile", 20), ("google", "gemini-1.5-flash", 10), ("x-ai", "grok-2", 5),
]
# The models (and provider names) each shape really carries, with the same weights, so that every shape
# generates the same calls and prices what a real user's records would. LiteLLM proxies any provider, named
# by its custom_llm_provider; OTel names them by gen_ai.provider.name's well-known values (semantic
# conventions: gcp.gemini, x_ai); an Anthropic Messages response is always a Claude model.
SHAPE_MODELS = {
    "canonical": MODELS,
    "litellm": [("openai", "gpt-4o-mini", 40), ("openai", "gpt-4o", 10), ("anthropic", "claude-3-5-sonnet-20241022", 15),
                ("groq", "llama-3.1-70b-versatile", 20), ("gemini", "gemini-1.5-flash", 10), ("xai", "grok-2", 5)],
    "otel": [("openai", "gpt-4o-mini", 40), ("openai", "gpt-4o", 10), ("anthropic", "claude-3-5-sonnet-20241022", 15),
             ("groq", "llama-3.1-70b-versatile", 20), ("gcp.gemini", "gemini-1.5-flash", 10), ("x_ai", "grok-2", 5)],
    "anthropic": [("anthropic", "claude-3-5-haiku-20241022", 40), ("anthropic", "claude-sonnet-4-20250514", 10),
                  ("anthropic", "claude-3-5-sonnet-20241022", 15), ("anthropic", "claude-haiku-4-5-20251001", 20),
                  ("anthropic", "claude-sonnet-4-5-20250929", 10), ("anthropic", "claude-opus-4-1-20250805", 5)],
}
SERVICES = ["draft_generator", "voice_analyzer", "trend_detector", "feedback_analyzer", "content_summarizer",
            "auto_populate", "chat"]


RECORD_SHAPES = tuple(SHAPE_MODELS)


def _litellm(r: dict[str, Any]) -> dict[str, Any]:
    """The same call as a LiteLLM_SpendLogs row (worker.ingest.formats.litellm)."""
    row = {"request_id": r["event_id"], "call_type": "acompletion", "api_key": "hashed-key", "spend": r.get("cost_usd", 0),
           "total_tokens": r["prompt_tokens"] + r["completion_tokens"], "prompt_tokens": r["prompt_tokens"],
           "completion_tokens": r["completion_tokens"], "startTime": r["occurred_at"],
           "endTime": (datetime.fromisoformat(r["occurred_at"]) + timedelta(milliseconds=r["latency_ms"])).isoformat(),
           "model": r["model"], "model_group": r["model"], "custom_llm_provider": r["provider"], "user": r["account_id"],
           "team_id": r["tenant_id"], "status": "success" if r["status"] == "success" else "failure",
           "metadata": {"usage_object": {"prompt_tokens_details": {"cached_tokens": r["cached_tokens"]}},
                        "user_api_key_team_alias": r["service"]}}
    return row


_EPOCH, _MICROSECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)


def _attr(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}}


def _span(r: dict[str, Any], i: int) -> dict[str, Any]:
    """The same call as one GenAI span (OTLP JSON encoding, GenAI semantic conventions)."""
    ns = (datetime.fromisoformat(r["occurred_at"]) - _EPOCH) // _MICROSECOND * 1000
    attrs = [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.provider.name", r["provider"]),
             _attr("gen_ai.request.model", r["model"]), _attr("gen_ai.usage.input_tokens", r["prompt_tokens"]),
             _attr("gen_ai.usage.output_tokens", r["completion_tokens"]),
             _attr("gen_ai.usage.cache_read.input_tokens", r["cached_tokens"]), _attr("user.id", r["account_id"])]
    return {"traceId": f"{i:032x}", "spanId": f"{i:016x}", "name": f"chat {r['model']}", "kind": 3,
            "startTimeUnixNano": str(ns), "endTimeUnixNano": str(ns + r["latency_ms"] * 1_000_000),
            "attributes": attrs, "status": {"code": 1 if r["status"] == "success" else 2}}


def _otel(batch: list[tuple[dict[str, Any], int]]) -> dict[str, Any]:
    """Calls as one OTLP JSON line (worker.ingest.formats.otel): a TracesData object, as the OTLP file
    exporter writes one per export, with one resourceSpans per service (the resource's service.name)
    holding that service's spans. A SimpleSpanProcessor exports each span alone (a line per span); a
    BatchSpanProcessor exports up to maxExportBatchSize (512 by default) at a time."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    for r, i in batch:
        by_service.setdefault(r["service"], []).append(_span(r, i))
    return {"resourceSpans": [
        {"resource": {"attributes": [_attr("service.name", service)]},
         "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]} for service, spans in by_service.items()]}


def _anthropic(r: dict[str, Any]) -> dict[str, Any]:
    """The same call as an app's record carrying a Messages response's usage (formats.anthropic)."""
    cached = r["cached_tokens"]
    return {"id": r["event_id"], "type": "message", "role": "assistant", "model": r["model"],
            "stop_reason": "end_turn", "timestamp": r["occurred_at"], "user_id": r["account_id"],
            "service": r["service"],
            "usage": {"input_tokens": r["prompt_tokens"] - cached, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": cached, "output_tokens": r["completion_tokens"],
                      "service_tier": "standard"}}


def generate(path: Path, n: int, seed: int = 42, start: datetime | None = None, shape: str = "canonical",
             days: int = 30, spans_per_line: int = 1) -> None:
    """N canonical events over ``days`` days, streamed to ``path``; ``shape`` writes the same calls as
    another tool's records (litellm, otel, anthropic: see RECORD_SHAPES), with the models that shape carries
    (SHAPE_MODELS); otel lines hold ``spans_per_line`` calls each.

    Shaped like a real application's log: 1,000 accounts in 20 tenants, each account
    using two features (services) and mostly one model (80%), 3% failures, a tenth
    of the events with a provider-reported cost."""
    rng = random.Random(seed)
    start = start or datetime(2026, 10, 1, tzinfo=UTC)
    span = days * 86400
    providers, models, weights = zip(*SHAPE_MODELS[shape])
    accounts = [(f"user-{a:04d}", f"tenant-{a % 20:02d}", rng.choices(range(len(models)), weights)[0],
                 rng.sample(SERVICES, 2)) for a in range(1, 1001)]
    dumps = orjson.dumps
    spans: list[tuple[dict[str, Any], int]] = []
    with open(path, "wb", buffering=1 << 20) as fh:
        for i in range(n):
            account, tenant, usual_model, services = accounts[rng.randrange(len(accounts))]
            k = usual_model if rng.random() < 0.8 else rng.choices(range(len(models)), weights)[0]
            prompt = rng.randint(50, 8000)
            completion = rng.randint(10, 2000)
            status = "success" if rng.random() < 0.97 else rng.choice(["error", "timeout"])
            record: dict[str, Any] = {
                "event_id": f"bench-{seed}-{i}",
                "occurred_at": (start + timedelta(seconds=span * i / n)).isoformat(),
                "account_id": account,
                "tenant_id": tenant,
                "service": rng.choice(services),
                "provider": providers[k],
                "model": models[k],
                "status": status,
                "prompt_tokens": prompt,
                "completion_tokens": completion if status == "success" else 0,
                "cached_tokens": rng.choice([0, 0, 0, prompt // 2]),
                "latency_ms": rng.randint(100, 20000),
                "metadata": {"request_id": uuid.UUID(int=rng.getrandbits(128)).hex, "endpoint": "/v1/chat"},
            }
            if rng.random() < 0.1:
                record["cost_usd"] = f"{rng.random() / 100:.8f}"
            if shape == "litellm":
                record = _litellm(record)
            elif shape == "otel":
                spans.append((record, i))
                if len(spans) < spans_per_line and i + 1 < n:
                    continue
                record, spans = _otel(spans), []
            elif shape == "anthropic":
                record = _anthropic(record)
            fh.write(dumps(record) + b"\n")
