"""OTLP JSON lines decoded straight into typed objects: the fast path of ``worker.ingest.formats.otel``.

An OTLP line holds a dozen small JSON objects per span (each attribute is ``{"key", "value":
{"stringValue": ...}}``), and building them as dicts took most of the time a one-span line costs.
A line that begins ``{"resourceSpans"`` (as the OTLP file exporter writes every line) is decoded by
msgspec into the structs below instead: the fields ``otel.span_record`` reads and nothing else (a
span's ``events``, ``links`` and other fields are skipped unread), each leaf typed as the OTLP JSON
encoding gives it (the proto3 JSON mapping: ``intValue`` and the ``*UnixNano`` times as decimal
strings, or numbers).

The result is exactly the dict path's: the structs accept a subset of what the dict path reads, and
anything outside it falls back to it whole. A line whose typed decode fails (a field of another
type, an AnyValue of an unknown kind, an integer outside 64 bits, which orjson reads as a float),
or whose reading meets what only the dict reading can say (an AnyValue holding no kind or two), is
read as ``orjson.loads`` reads it, through ``otel.expand``. ``tests/unit/ingest/formats/test_otlp.py``
checks the two give the same events.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Union

import msgspec
import orjson
from msgspec import UNSET, Struct, UnsetType

from worker.ingest.fields import RecordError
from worker.ingest.files import Decoded, json_error
from worker.ingest.formats import otel

# JSON integers orjson reads as integers: it reads a wider one as a float, so such a line takes its path
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Text = Union[str, None]
Number = Union[str, Int64, None]  # intValue and the times: a decimal string in OTLP JSON, or a number


class AnyValue(Struct, forbid_unknown_fields=True):
    stringValue: Union[Text, UnsetType] = UNSET
    boolValue: Union[bool, None, UnsetType] = UNSET
    intValue: Union[Number, UnsetType] = UNSET
    doubleValue: Union[Int64, float, None, UnsetType] = UNSET
    bytesValue: Union[Text, UnsetType] = UNSET
    arrayValue: Union[ArrayValue, None, UnsetType] = UNSET
    kvlistValue: Union[KeyValueList, None, UnsetType] = UNSET


class KeyValue(Struct):
    key: str
    value: Union[AnyValue, None] = None


class ArrayValue(Struct):
    values: Union[list[AnyValue], UnsetType] = UNSET  # ("values": null fails the dict reading: not here)


class KeyValueList(Struct):
    values: Union[list[KeyValue], None, UnsetType] = UNSET


class Status(Struct):
    code: Number = None
    message: Text = None


class Span(Struct):
    attributes: Union[list[KeyValue], None] = None
    traceId: Text = None
    trace_id: Text = None
    spanId: Text = None
    span_id: Text = None
    startTimeUnixNano: Union[Number, UnsetType] = UNSET
    start_time_unix_nano: Union[Number, UnsetType] = UNSET
    endTimeUnixNano: Union[Number, UnsetType] = UNSET
    end_time_unix_nano: Union[Number, UnsetType] = UNSET
    startTime: Union[Number, float, UnsetType] = UNSET
    start_time: Union[Number, float, UnsetType] = UNSET
    status: Union[Status, None] = None
    name: Text = None


class Resource(Struct):
    attributes: Union[list[KeyValue], None] = None


class ScopeSpans(Struct):
    spans: Union[list[Span], None] = None


class ResourceSpans(Struct):
    resource: Union[Resource, None] = None
    scopeSpans: Union[list[ScopeSpans], None] = None
    instrumentationLibrarySpans: Union[list[ScopeSpans], None] = None


class TracesData(Struct):
    resourceSpans: Union[list[ResourceSpans], None] = None


_KINDS = tuple(AnyValue.__struct_fields__)
_decode = msgspec.json.Decoder(TracesData).decode
PREFIX = b'{"resourceSpans"'


class OtlpLine(Decoded):
    """One OTLP line, typed, with its bytes (read the dict way if the typed reading cannot say)."""

    __slots__ = ("data", "raw")

    def __init__(self, data: TracesData, raw: bytes):
        self.data, self.raw = data, raw

    def record(self) -> dict[str, Any]:
        """The line as ``orjson.loads`` reads it (what every other line is)."""
        try:
            return orjson.loads(self.raw)
        except orjson.JSONDecodeError:
            raise RecordError(json_error(self.raw)) from None


def loads(raw: bytes) -> Any:
    """A JSON line: an :class:`OtlpLine` where it is one the structs read, else as ``orjson.loads`` reads it."""
    if raw.startswith(PREFIX):
        try:
            return OtlpLine(_decode(raw), raw)
        except (msgspec.DecodeError, RecursionError):
            pass
    return orjson.loads(raw)


class Fallback(Exception):
    """The typed reading cannot say what the dict reading would: read the line that way."""


def _kind(typed: Any) -> str | None:
    """The one kind an AnyValue holds (None for none, or several)."""
    if typed is None:
        return None
    found = None
    for kind in _KINDS:
        if getattr(typed, kind) is not UNSET:
            if found is not None:
                return None
            found = kind
    return found


def _plain(typed: Any) -> Any:
    """An AnyValue as ``otel._value`` decodes its dict."""
    if typed is None:
        return None
    kind = _kind(typed)
    if kind is None:
        raise Fallback  # no kind or two: the dict reading keeps the dict itself
    value = getattr(typed, kind)
    if kind == "arrayValue":
        return [_plain(v) for v in (value.values or ())] if value is not None else []
    if kind == "kvlistValue":
        return _kvs(value.values if value is not None else None)
    convert = otel._CONVERT[kind]
    return value if convert is None else convert(value)


def _kvs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _plain(kv.value) for kv in kvs} if kvs else {}


def _resource(resource: Resource | None) -> dict[str, Any]:
    """As ``otel._resource``: only the attributes a span record reads (a typed line's others cannot fail)."""
    if resource is None or not resource.attributes:
        return {}
    keep = otel._RESOURCE_KEYS
    return {kv.key: _plain(kv.value) for kv in resource.attributes if kv.key in keep}


def _either(camel: Any, snake: Any) -> Any:
    if camel is not UNSET:
        return camel
    return None if snake is UNSET else snake


def _span(span: Span, resource: dict[str, Any]) -> dict[str, Any] | None:
    """``otel.span_record`` of a typed span."""
    attributes = span.attributes or ()
    keys = tuple([kv.key for kv in attributes])
    plan = otel._PLANS.get(keys) or otel._plan(keys)
    if not plan.usage:
        return None
    values = [kv.value for kv in attributes]
    trace, span_id = span.traceId or span.trace_id, span.spanId or span.span_id
    start = otel._nanos(_either(span.startTimeUnixNano, span.start_time_unix_nano))
    out: dict[str, Any] = {"event_id": f"{trace}-{span_id}"} if trace and span_id else {}
    out["occurred_at"] = (otel._EPOCH + timedelta(0, 0, start // 1000) if start is not None
                          else _either(span.startTime, span.start_time))
    if plan.reads is None:
        plan.learn(values, _kind)
    for name, i, kind, convert in plan.reads:  # type: ignore[union-attr]
        typed = values[i]
        value = UNSET if kind is None or typed is None else getattr(typed, kind)
        if value is UNSET:
            value = _plain(typed)
        elif convert is not None:
            value = convert(value)
        if value is not None and value != "":
            out[name] = value
    status = span.status
    status = {"code": status.code, "message": status.message} if status is not None else None
    return otel.finish(plan, out, status, start, otel._nanos(_either(span.endTimeUnixNano, span.end_time_unix_nano)),
                       span.name, resource)


def expand(line: OtlpLine) -> tuple[list[dict[str, Any]], int]:
    """``otel.expand`` of a typed line; raises :class:`Fallback` where only the dict reading can say."""
    records, skipped = [], 0
    try:
        for rs in line.data.resourceSpans or ():
            resource = _resource(rs.resource)
            for ss in rs.scopeSpans or rs.instrumentationLibrarySpans or ():
                for span in ss.spans or ():
                    one = _span(span, resource)
                    if one is None:
                        skipped += 1
                    else:
                        records.append(one)
    except Exception:  # whatever the dict reading makes of it (an error it raises too, or a value it keeps)
        raise Fallback from None
    return records, skipped
