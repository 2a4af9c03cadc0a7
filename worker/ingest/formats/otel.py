"""OpenTelemetry GenAI spans: OTLP JSON lines (the file exporter) and flattened spans.

Names from the OTLP JSON encoding (``resourceSpans[].resource.attributes``,
``scopeSpans[].spans[]`` with ``traceId``, ``spanId``, ``startTimeUnixNano``,
``endTimeUnixNano``, ``status.code`` and attributes ``{"key", "value": {"stringValue" |
"intValue" (a string) | "doubleValue" | "boolValue" | ...}}``) and from the GenAI semantic
conventions: ``gen_ai.usage.input_tokens`` (which SHOULD include cached tokens),
``gen_ai.usage.output_tokens``, ``gen_ai.usage.cache_read.input_tokens``,
``gen_ai.usage.cache_creation.input_tokens``, ``gen_ai.usage.reasoning.output_tokens``
(and their older spellings), ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.provider.name`` (formerly ``gen_ai.system``), ``user.id`` / ``enduser.id`` and
the resource's ``service.name``. A span without token usage is not an LLM call: skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Iterable, Mapping

from worker.ingest.fields import int_or_none

NAME = "otel"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
_OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
_CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
_CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens")
_REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens")
_TOTAL = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens")
_TIER = ("openai.response.service_tier", "gen_ai.openai.response.service_tier")
_USAGE = _INPUT + _OUTPUT + _TOTAL


def detects(keys: frozenset[str]) -> bool:
    return "resourceSpans" in keys or (("traceId" in keys or "trace_id" in keys)
                                       and ("spanId" in keys or "span_id" in keys))


def _value(typed: Any) -> Any:
    """An OTLP AnyValue ({"stringValue": ...}) as a plain value; plain values as they are."""
    if not isinstance(typed, dict) or len(typed) != 1:
        return typed
    kind, value = next(iter(typed.items()))
    if kind == "intValue":
        return int_or_none(value)
    if kind == "arrayValue":
        return [_value(v) for v in (value or {}).get("values", [])]
    if kind == "kvlistValue":
        return _attributes((value or {}).get("values", []))
    return value


def _attributes(raw: Any) -> dict[str, Any]:
    """OTLP's [{"key", "value"}] list, or a flattened span's plain mapping."""
    if isinstance(raw, dict):
        return {k: _value(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {a["key"]: _value(a.get("value")) for a in raw if isinstance(a, dict) and "key" in a}
    return {}


def _first(attrs: Mapping[str, Any], names: Iterable[str]) -> Any:
    for name in names:
        if attrs.get(name) is not None:
            return attrs[name]
    return None


def _time(nanos: Any) -> datetime | None:
    number = int_or_none(nanos)
    return None if number is None else _EPOCH + timedelta(microseconds=number // 1000)


def span_record(span: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """One span -> a canonical record, or None when it is not an LLM call."""
    attrs = _attributes(span.get("attributes"))
    if _first(attrs, _USAGE) is None:
        return None
    trace, span_id = span.get("traceId") or span.get("trace_id"), span.get("spanId") or span.get("span_id")
    start = span.get("startTimeUnixNano", span.get("start_time_unix_nano"))
    end = span.get("endTimeUnixNano", span.get("end_time_unix_nano"))
    started, ended = _time(start), _time(end)
    status = span.get("status") if isinstance(span.get("status"), dict) else {}
    failed = status.get("code") in (2, "2", "STATUS_CODE_ERROR", "ERROR") or attrs.get("error.type") is not None
    out = {
        "event_id": f"{trace}-{span_id}" if trace and span_id else None,
        "occurred_at": started if started is not None else span.get("startTime", span.get("start_time")),
        "account_id": _first(attrs, ("user.id", "enduser.id")) or _first(resource, ("user.id", "enduser.id")),
        "service": resource.get("service.name") or attrs.get("service.name"),
        "provider": _first(attrs, ("gen_ai.provider.name", "gen_ai.system")),
        "model": _first(attrs, ("gen_ai.request.model", "gen_ai.response.model")),
        "model_used": attrs.get("gen_ai.response.model"),
        "status": "error" if failed else "success",
        "error_message": (status.get("message") or attrs.get("error.type")) if failed else None,
        "latency_ms": int((ended - started).total_seconds() * 1000) if started and ended else None,
        "prompt_tokens": _first(attrs, _INPUT),
        "completion_tokens": _first(attrs, _OUTPUT),
        "total_tokens": _first(attrs, _TOTAL),
        "cached_tokens": _first(attrs, _CACHE_READ),
        "cache_write_tokens": _first(attrs, _CACHE_WRITE),
        "reasoning_tokens": _first(attrs, _REASONING),
        "service_tier": _first(attrs, _TIER),
        "metadata": {"span_name": span.get("name"), "operation": attrs.get("gen_ai.operation.name")},
    }
    if out["service_tier"] in ("default", "auto", "standard"):
        out["service_tier"] = None
    return {k: v for k, v in out.items() if v is not None and v != ""}


def expand(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """An OTLP line (many spans) or one flattened span -> (canonical records, spans skipped)."""
    if "resourceSpans" not in record:
        resource = _attributes((record.get("resource") or {}).get("attributes", record.get("resource")))
        one = span_record(record, resource)
        return ([one], 0) if one is not None else ([], 1)
    records, skipped = [], 0
    for rs in record.get("resourceSpans") or ():
        resource = _attributes((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or ():
            for span in ss.get("spans") or ():
                one = span_record(span, resource)
                if one is None:
                    skipped += 1
                else:
                    records.append(one)
    return records, skipped
