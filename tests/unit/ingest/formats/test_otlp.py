"""Typed OTLP lines (worker/ingest/formats/otlp.py) read exactly as the dict reading reads them.

Lines after the OTLP JSON encoding of ``TracesData`` (the OTLP file exporter writes one per line;
the proto3 JSON mapping gives ``intValue`` and the ``*UnixNano`` times as decimal strings and the
field names in lowerCamelCase, ``opentelemetry-proto/docs/specification.md`` "JSON Protobuf
Encoding"), with GenAI semantic-convention attributes. Hypothesis draws lines well-formed and not
(AnyValues of no kind, two kinds or an unknown one, integers past 64 bits, snake_case fields, a
status that is not an object...), and every one must give the same events, or the same error, as
``orjson.loads`` and ``otel.expand`` give.
"""

from __future__ import annotations

import dataclasses
import json

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from worker.ingest.fields import RecordError
from worker.ingest.formats import otlp
from worker.ingest.normalise import Normaliser

KEYS = ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.total_tokens", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.provider.name",
        "gen_ai.system", "user.id", "enduser.id", "error.type", "gen_ai.operation.name",
        "openai.response.service_tier", "service.name", "http.request.method", "gen_ai.input.messages"]
BIG = 2**64 + 5  # orjson reads it as a float, msgspec as an int: such a line must take orjson's path

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10_000), st.sampled_from([BIG, -BIG, 2**63]),
                    st.floats(allow_nan=False, allow_infinity=False, width=64), st.text(max_size=6),
                    st.sampled_from(["812", "-3", "x", "", "1790856000000000000", "gpt-4o", "openai", "default"]))


def any_values(depth: int = 2) -> st.SearchStrategy:
    one_kind = st.one_of(
        st.builds(lambda v: {"stringValue": v}, scalars), st.builds(lambda v: {"intValue": v}, scalars),
        st.builds(lambda v: {"doubleValue": v}, scalars), st.builds(lambda v: {"boolValue": v}, scalars),
        st.builds(lambda v: {"bytesValue": v}, scalars))
    odd = st.one_of(st.just({}), st.just({"fooValue": 1}), st.just({"stringValue": "a", "intValue": "1"}),
                    st.just({"arrayValue": None}), st.just({"arrayValue": {"values": None}}),
                    st.just({"arrayValue": {}}), st.just({"kvlistValue": {"values": None}}), scalars)
    if depth == 0:
        return st.one_of(one_kind, odd)
    inner = any_values(depth - 1)
    nested = st.one_of(
        st.builds(lambda vs: {"arrayValue": {"values": vs}}, st.lists(inner, max_size=2)),
        st.builds(lambda kvs: {"kvlistValue": {"values": kvs}},
                  st.lists(st.builds(lambda k, v: {"key": k, "value": v}, st.sampled_from(KEYS), inner), max_size=2)))
    return st.one_of(one_kind, one_kind, one_kind, odd, nested)


attribute = st.one_of(st.builds(lambda k, v: {"key": k, "value": v}, st.sampled_from(KEYS), any_values()),
                      st.builds(lambda k: {"key": k}, st.sampled_from(KEYS)), st.just({"value": {"intValue": "9"}}),
                      st.just("junk"), st.builds(lambda v: {"key": 5, "value": v}, any_values(0)))
usage = st.builds(lambda k, n: {"key": k, "value": {"intValue": n}},
                  st.sampled_from(KEYS[:6]), st.sampled_from(["812", "40", "0", 7]))
times = st.one_of(st.none(), st.sampled_from(["1790856000000000000", "1790856000504000000", 1790856000000000000,
                                              BIG, "x", 1.5e18, ""]))
status = st.one_of(st.none(), st.just({}), st.just("ERROR"), st.just({"code": 2.0}),
                   st.builds(lambda c, m: {"code": c, "message": m},
                             st.sampled_from([0, 1, 2, "2", "STATUS_CODE_ERROR", "ERROR", None]),
                             st.one_of(st.none(), st.text(max_size=4), st.just(3))))


@st.composite
def spans(draw: st.DrawFn) -> dict:
    span: dict = {"attributes": draw(st.lists(usage, max_size=2)) + draw(st.lists(attribute, max_size=5))}
    draw(st.randoms()).shuffle(span["attributes"])
    for camel, snake in (("traceId", "trace_id"), ("spanId", "span_id"),
                         ("startTimeUnixNano", "start_time_unix_nano"), ("endTimeUnixNano", "end_time_unix_nano"),
                         ("startTime", "start_time")):
        which = draw(st.sampled_from(["camel", "camel", "snake", "both", "none"]))
        if which in ("camel", "both"):
            span[camel] = draw(st.one_of(st.text("0123456789abcdef", min_size=1, max_size=4), times))
        if which in ("snake", "both"):
            span[snake] = draw(st.one_of(st.text("0123456789abcdef", min_size=1, max_size=4), times))
    if draw(st.booleans()):
        span["status"] = draw(status)
    if draw(st.booleans()):
        span["name"] = draw(st.one_of(st.text(max_size=8), st.none(), st.just(4)))
    if draw(st.booleans()):  # fields the reading never looks at
        span.update(kind=3, events=[{"name": "e", "attributes": [{"key": "n", "value": {"intValue": BIG}}]}],
                    links=[], droppedAttributesCount=0)
    if draw(st.integers(0, 20)) == 0:
        span["attributes"] = draw(st.sampled_from([None, {"gen_ai.usage.input_tokens": 3}, "x"]))
    return span


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    resource_spans = []
    for _ in range(draw(st.integers(0, 2))):
        rs: dict = {}
        resource = draw(st.sampled_from(["list", "list", "none", "empty", "dict"]))
        if resource == "list":
            rs["resource"] = {"attributes": draw(st.lists(st.one_of(
                st.builds(lambda k, v: {"key": k, "value": v}, st.sampled_from(["service.name", "user.id",
                                                                                "process.command_args"]),
                          any_values()), attribute), max_size=3))}
        elif resource == "empty":
            rs["resource"] = {}
        elif resource == "dict":
            rs["resource"] = {"attributes": {"service.name": "chat"}}
        scopes = [{"scope": {"name": "s"}, "spans": draw(st.lists(spans(), max_size=3))}
                  for _ in range(draw(st.integers(0, 2)))]
        rs[draw(st.sampled_from(["scopeSpans", "scopeSpans", "instrumentationLibrarySpans"]))] = scopes
        if draw(st.integers(0, 10)) == 0:
            rs["scopeSpans"] = []
            rs["instrumentationLibrarySpans"] = scopes
        resource_spans.append(rs)
    line: dict = {"resourceSpans": draw(st.one_of(st.just(resource_spans), st.just(resource_spans),
                                                  st.sampled_from([None, [], ["x"], {}])))}
    return json.dumps(line, separators=(",", ":")).encode()  # json: it writes integers past 64 bits


def outcome(record: object) -> object:
    normaliser = Normaliser()
    try:
        events = normaliser.normalise(record)
    except RecordError as exc:
        return ("rejected", str(exc))
    return ([dataclasses.asdict(e) for e in events], normaliser.skipped)


@settings(max_examples=400, deadline=None)
@given(lines())
def test_a_typed_line_reads_as_the_dict_reading_reads_it(raw: bytes):
    try:
        expected = outcome(orjson.loads(raw))
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            otlp.loads(raw)
        return
    assert outcome(otlp.loads(raw)) == expected


SDK_LINE = {"resourceSpans": [{
    "resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "support-bot"}},
        {"key": "telemetry.sdk.language", "value": {"stringValue": "python"}},
        {"key": "process.command_args", "value": {"arrayValue": {"values": [{"stringValue": "app.py"}]}}},
        {"key": "process.pid", "value": {"intValue": "4242"}}]},
    "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai_v2", "version": "2.1b0"},
                    "spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                               "parentSpanId": "", "flags": 256, "name": "chat gpt-4o-mini", "kind": 3,
                               "startTimeUnixNano": "1790856000000000000",
                               "endTimeUnixNano": "1790856001250000000",
                               "attributes": [
                                   {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                   {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                                   {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                                   {"key": "gen_ai.response.model",
                                    "value": {"stringValue": "gpt-4o-mini-2024-07-18"}},
                                   {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "812"}},
                                   {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "96"}},
                                   {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.2}},
                                   {"key": "gen_ai.response.finish_reasons",
                                    "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}}],
                               "events": [{"timeUnixNano": "1790856000100000000", "name": "gen_ai.user.message",
                                           "attributes": [{"key": "content", "value": {"stringValue": "hi"}}]}],
                               "links": [], "status": {}}]}]}]}


def test_an_sdk_line_takes_the_typed_path_and_gives_the_dict_readings_event():
    raw = orjson.dumps(SDK_LINE)
    line = otlp.loads(raw)
    assert isinstance(line, otlp.OtlpLine)
    records, skipped = otlp.expand(line)  # no Fallback: the typed reading says it all
    assert (len(records), skipped) == (1, 0)
    assert records[0]["prompt_tokens"] == 812 and records[0]["service"] == "support-bot"
    assert records[0]["latency_ms"] == 1250
    assert outcome(line) == outcome(orjson.loads(raw))


@pytest.mark.parametrize("raw", [
    b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"gen_ai.usage.input_tokens",'
    b'"value":{"intValue":18446744073709551621}}]}]}]}]}',  # past 64 bits: orjson reads a float
    b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"gen_ai.usage.input_tokens",'
    b'"value":{"intValue":"3","fooValue":1}}]}]}]}]}',  # a kind OTLP does not have
    b'{"resourceSpans":[{"resource":{"attributes":{"service.name":"chat"}},"scopeSpans":[]}]}',
])
def test_what_the_structs_do_not_read_is_read_by_orjson(raw: bytes):
    assert type(otlp.loads(raw)) is dict


def test_an_anyvalue_of_no_kind_where_a_field_reads_it_falls_back_to_the_dict_reading():
    raw = (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"gen_ai.usage.input_tokens",'
           b'"value":{"intValue":"3"}},{"key":"user.id","value":{}}]}]}]}]}')
    line = otlp.loads(raw)
    with pytest.raises(otlp.Fallback):
        otlp.expand(line)
    assert outcome(line) == outcome(orjson.loads(raw))


def test_a_line_only_orjson_refuses_is_rejected_with_its_reason():
    line = otlp.OtlpLine(otlp.TracesData([]), b'{"resourceSpans":[] x')
    with pytest.raises(RecordError, match="invalid JSON"):
        line.record()
