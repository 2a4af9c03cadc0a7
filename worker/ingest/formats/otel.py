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
No GenAI attribute names a project or an API key: ``project_id`` and ``api_key`` are not set.

The hot path: spans from one instrumentation share their attribute keys, so which attribute
feeds which field is worked out once per distinct key tuple (:class:`_SpanPlan`), and only
the attributes a field needs are decoded (a span's prompt and completion attributes, often
the largest, are never touched), each typed value through one dict of converters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Mapping

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
_USER = ("user.id", "enduser.id")
# canonical field <- span attributes, the first present and non-empty winning
_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("account_id", _USER), ("provider", ("gen_ai.provider.name", "gen_ai.system")),
    ("model", ("gen_ai.request.model", "gen_ai.response.model")), ("model_used", ("gen_ai.response.model",)),
    ("prompt_tokens", _INPUT), ("completion_tokens", _OUTPUT), ("total_tokens", _TOTAL),
    ("cached_tokens", _CACHE_READ), ("cache_write_tokens", _CACHE_WRITE), ("reasoning_tokens", _REASONING),
    ("service_tier", _TIER), ("service", ("service.name",)), ("error.type", ("error.type",)),
    ("operation", ("gen_ai.operation.name",)),
)
_STANDARD_TIERS = frozenset({"default", "auto", "standard"})
_FAILED = frozenset({2, "2", "STATUS_CODE_ERROR", "ERROR"})
PLANS_MAX = 1000  # distinct attribute-key tuples remembered


def detects(keys: frozenset[str]) -> bool:
    return "resourceSpans" in keys or (("traceId" in keys or "trace_id" in keys)
                                       and ("spanId" in keys or "span_id" in keys))


def _array(value: Any) -> list[Any]:
    return [_value(v) for v in (value or {}).get("values", [])]


def _kvlist(value: Any) -> dict[str, Any]:
    return _attributes((value or {}).get("values", []))


def _int(value: Any) -> int | None:
    """intValue: a decimal string in OTLP JSON (an int in other encodings)."""
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            pass
    return int_or_none(value)


# OTLP AnyValue kind -> converter (None: the value as it is). intValue is a string in OTLP JSON.
_CONVERT: dict[str, Callable[[Any], Any] | None] = {
    "stringValue": None, "boolValue": None, "doubleValue": None, "bytesValue": None,
    "intValue": _int, "arrayValue": _array, "kvlistValue": _kvlist,
}


def _value(typed: Any) -> Any:
    """An OTLP AnyValue ({"stringValue": ...}) as a plain value; plain values as they are."""
    if type(typed) is not dict or len(typed) != 1:
        return typed
    for kind, value in typed.items():
        convert = _CONVERT.get(kind)
        return value if convert is None else convert(value)
    return None  # unreachable: one item


def _attributes(raw: Any) -> dict[str, Any]:
    """OTLP's [{"key", "value"}] list, or a flattened span's plain mapping (the resource's)."""
    if isinstance(raw, dict):
        return {k: _value(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {a["key"]: _value(a.get("value")) for a in raw if isinstance(a, dict) and "key" in a}
    return {}


class _SpanPlan:
    """For one tuple of attribute keys: whether the span carries usage, and which attributes feed
    which field. ``reads`` is learnt from the first span: (field, position, AnyValue kind, converter)
    in the reverse of the order they win (the last non-empty one written stands), so every later
    span is one flat loop; a value that comes in another kind is decoded generically."""

    __slots__ = ("usage", "fields", "reads", "error_type", "operation", "tier")

    def __init__(self, keys: tuple[str, ...]):
        first = {key: index for index, key in enumerate(keys)}  # a repeated key: its last value, as before
        self.usage = any(k in first for k in _USAGE)
        self.fields = tuple((name, tuple(first[k] for k in names if k in first)) for name, names in _FIELDS)
        self.reads: tuple[tuple[str, int, str | None, Callable[[Any], Any] | None], ...] | None = None
        fed = {name for name, positions in self.fields if positions}  # what the span's attributes can set
        self.error_type, self.operation, self.tier = "error.type" in fed, "operation" in fed, "service_tier" in fed

    def learn(self, values: list[Any], kind_of: Callable[[Any], str | None] | None = None) -> None:
        """``kind_of(value)``: the one AnyValue kind a typed value holds, else None (a dict's by default)."""
        reads = []
        for name, positions in self.fields:
            for i in reversed(positions):
                typed = values[i]
                if kind_of is not None:
                    kind = kind_of(typed)
                else:
                    kind = next(iter(typed)) if type(typed) is dict and len(typed) == 1 else None
                if kind not in _CONVERT:
                    kind = None
                reads.append((name, i, kind, _CONVERT.get(kind) if kind else None))
        self.reads = tuple(reads)


_PLANS: dict[tuple[str, ...], _SpanPlan] = {}


def _plan(keys: tuple[str, ...]) -> _SpanPlan:
    plan = _PLANS.get(keys)
    if plan is None:
        if len(_PLANS) >= PLANS_MAX:
            _PLANS.clear()
        plan = _PLANS[keys] = _SpanPlan(keys)
    return plan


def _keyed(raw: Any) -> tuple[list[Any], tuple[str, ...]]:
    """The span's attribute values (typed, not yet decoded) and their keys."""
    if type(raw) is list:
        try:
            return [a.get("value") for a in raw], tuple([a["key"] for a in raw])
        except (AttributeError, TypeError, KeyError):
            raw = [a for a in raw if isinstance(a, dict) and "key" in a]
            return [a.get("value") for a in raw], tuple([a["key"] for a in raw])
    if isinstance(raw, dict):  # a flattened span: plain values (or typed ones)
        return list(raw.values()), tuple(raw)
    return [], ()


_nanos = _int  # nanoseconds since the epoch: OTLP JSON's decimal string read exactly, not as a float


def span_record(span: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """One span -> a canonical record, or None when it is not an LLM call."""
    values, keys = _keyed(span.get("attributes"))
    plan = _PLANS.get(keys) or _plan(keys)
    if not plan.usage:
        return None
    get = span.get
    trace, span_id = get("traceId") or get("trace_id"), get("spanId") or get("span_id")
    start = _nanos(_either(get, "startTimeUnixNano", "start_time_unix_nano"))
    out: dict[str, Any] = {"event_id": f"{trace}-{span_id}"} if trace and span_id else {}
    out["occurred_at"] = (_EPOCH + timedelta(0, 0, start // 1000) if start is not None
                          else _either(get, "startTime", "start_time"))
    if plan.reads is None:
        plan.learn(values)
    for name, i, kind, convert in plan.reads:  # type: ignore[union-attr]
        typed = values[i]
        if kind is None:
            value = _value(typed)
        else:
            try:
                value = typed[kind]
            except (KeyError, TypeError):
                value = _value(typed)
            else:
                if convert is not None:
                    value = convert(value)
        if value is not None and value != "":
            out[name] = value
    return finish(plan, out, get("status"), start, _nanos(_either(get, "endTimeUnixNano", "end_time_unix_nano")),
                  get("name"), resource)


def finish(plan: _SpanPlan, out: dict[str, Any], status: Any, start: int | None, end: int | None, name: Any,
           resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """The rest of a span's record, from its attribute fields in ``out`` (None when it has no usage): status,
    error, account and service from the resource, latency, tier and metadata. Shared with
    ``worker.ingest.formats.otlp``, which reads the same fields from typed OTLP lines."""
    if "prompt_tokens" not in out and "completion_tokens" not in out and "total_tokens" not in out:
        return None
    failed = False
    if type(status) is dict and status:
        failed = status.get("code") in _FAILED
    else:
        status = _NO_STATUS
    error_type = None
    if plan.error_type and (error_type := out.pop("error.type", None)) is not None:
        failed = True
    operation = out.pop("operation", None) if plan.operation else None
    if "account_id" not in out and resource and (user := resource.get("user.id") or resource.get("enduser.id")):
        out["account_id"] = user
    if resource and (service := resource.get("service.name")):
        out["service"] = service
    out["status"] = "error" if failed else "success"
    if failed and (message := status.get("message") or error_type):
        out["error_message"] = message
    if start and end:
        out["latency_ms"] = (end // 1000 - start // 1000) // 1000
    if plan.tier and out.get("service_tier") in _STANDARD_TIERS:
        del out["service_tier"]
    out["metadata"] = {"span_name": name, "operation": operation}
    if start is None and out["occurred_at"] is None:
        del out["occurred_at"]
    return out


_NO_STATUS: dict[str, Any] = {}


def _either(get: Callable[[str], Any], camel: str, snake: str) -> Any:
    """OTLP JSON's lowerCamelCase field, else the flattened span's snake_case one (present, even if null)."""
    value = get(camel, _ABSENT)
    return get(snake) if value is _ABSENT else value


_ABSENT = object()


_RESOURCE_KEYS = frozenset({"user.id", "enduser.id", "service.name"})  # all span_record reads of a resource
_NESTED = ("arrayValue", "kvlistValue")  # the only AnyValue kinds whose decoding can fail


def _resource(raw: Any) -> dict[str, Any]:
    """A resource's attributes as :func:`_attributes` gives them, but only those a span record reads
    decoded into the result (a resource carries many: telemetry.sdk.*, host.*, process.*). The others
    are decoded only where decoding can fail (a nested value), so a record fails exactly as before."""
    if type(raw) is not list:
        return _attributes(raw)
    out = {}
    for a in raw:
        if isinstance(a, dict) and "key" in a:
            key = a["key"]
            if key in _RESOURCE_KEYS:
                out[key] = _value(a.get("value"))
            elif type(typed := a.get("value")) is dict and len(typed) == 1 and (
                    _NESTED[0] in typed or _NESTED[1] in typed):
                _value(typed)
    return out


def expand(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """An OTLP line (many spans) or one flattened span -> (canonical records, spans skipped)."""
    if "resourceSpans" not in record:
        resource = _attributes((record.get("resource") or {}).get("attributes", record.get("resource")))
        one = span_record(record, resource)
        return ([one], 0) if one is not None else ([], 1)
    records, skipped = [], 0
    for rs in record.get("resourceSpans") or ():
        resource = _resource((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or ():
            for span in ss.get("spans") or ():
                one = span_record(span, resource)
                if one is None:
                    skipped += 1
                else:
                    records.append(one)
    return records, skipped


def plan(keys: frozenset[str]) -> Callable[[Mapping[str, Any]], tuple[list[dict[str, Any]], int]]:
    """Records of any key set are expanded (see the module docstring)."""
    return expand
