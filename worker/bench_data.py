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
SERVICES = ["draft_generator", "voice_analyzer", "trend_detector", "feedback_analyzer", "content_summarizer",
            "auto_populate", "chat"]


RECORD_SHAPES = ("canonical", "litellm", "otel", "anthropic")


def _litellm(r: dict[str, Any]) -> dict[str, Any]:
    """The same call as a LiteLLM_SpendLogs row (worker.ingest.formats.litellm)."""
    row = {"request_id": r["event_id"], "call_type": "acompletion", "api_key": "hashed-key", "spend": r.get("cost_usd", 0),
           "total_tokens": r["prompt_tokens"] + r["completion_tokens"], "prompt_tokens": r["prompt_tokens"],
           "completion_tokens": r["completion_tokens"], "startTime": r["occurred_at"], "endTime": r["occurred_at"],
           "model": r["model"], "model_group": r["model"], "custom_llm_provider": r["provider"], "user": r["account_id"],
           "team_id": r["tenant_id"], "status": "success" if r["status"] == "success" else "failure",
           "metadata": {"usage_object": {"prompt_tokens_details": {"cached_tokens": r["cached_tokens"]}},
                        "user_api_key_team_alias": r["service"]}}
    return row


def _otel(r: dict[str, Any], i: int) -> dict[str, Any]:
    """The same call as an OTLP JSON line holding one GenAI span (worker.ingest.formats.otel)."""
    ns = str(int(datetime.fromisoformat(r["occurred_at"]).timestamp()) * 1_000_000_000)

    def attr(key: str, value: Any) -> dict[str, Any]:
        return {"key": key, "value": {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}}
    attrs = [attr("gen_ai.operation.name", "chat"), attr("gen_ai.provider.name", r["provider"]),
             attr("gen_ai.request.model", r["model"]), attr("gen_ai.usage.input_tokens", r["prompt_tokens"]),
             attr("gen_ai.usage.output_tokens", r["completion_tokens"]),
             attr("gen_ai.usage.cache_read.input_tokens", r["cached_tokens"]), attr("user.id", r["account_id"])]
    span = {"traceId": f"{i:032x}", "spanId": f"{i:016x}", "name": f"chat {r['model']}", "kind": 3,
            "startTimeUnixNano": ns, "endTimeUnixNano": ns, "attributes": attrs,
            "status": {"code": 1 if r["status"] == "success" else 2}}
    resource = {"attributes": [attr("service.name", r["service"])]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "bench"}, "spans": [span]}]}]}


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
             days: int = 30) -> None:
    """N canonical events over ``days`` days, streamed to ``path``; ``shape`` writes the same calls as
    another tool's records (litellm, otel, anthropic: see RECORD_SHAPES).

    Shaped like a real application's log: 1,000 accounts in 20 tenants, each account
    using two features (services) and mostly one model (80%), 3% failures, a tenth
    of the events with a provider-reported cost."""
    rng = random.Random(seed)
    start = start or datetime(2026, 10, 1, tzinfo=UTC)
    span = days * 86400
    providers, models, weights = zip(*[(p, m, w) for p, m, w in MODELS])
    accounts = [(f"user-{a:04d}", f"tenant-{a % 20:02d}", rng.choices(range(len(models)), weights)[0],
                 rng.sample(SERVICES, 2)) for a in range(1, 1001)]
    dumps = orjson.dumps
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
                record = _otel(record, i)
            elif shape == "anthropic":
                record = _anthropic(record)
            fh.write(dumps(record) + b"\n")
