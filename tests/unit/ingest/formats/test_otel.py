"""The OTel mapping's plan per attribute-key tuple (worker/ingest/formats/otel.py).

Spans after the OTLP JSON encoding (typed AnyValue; intValue as a string) with GenAI
semantic-convention attributes (gen_ai.usage.*, gen_ai.request.model, gen_ai.provider.name)."""

from __future__ import annotations

from worker.ingest.formats import otel


def attr(key: str, value: dict) -> dict:
    return {"key": key, "value": value}


def span(*attrs: dict, **extra) -> dict:
    return {"traceId": "t", "spanId": "s", "startTimeUnixNano": "1790856000000000000", "attributes": list(attrs),
            **extra}


def test_spans_with_the_same_keys_share_one_plan_and_each_gets_its_own_values():
    keys = ("gen_ai.request.model", "gen_ai.usage.input_tokens")
    one = otel.span_record(span(attr(keys[0], {"stringValue": "a"}), attr(keys[1], {"intValue": "5"})), {})
    two = otel.span_record(span(attr(keys[0], {"stringValue": "b"}), attr(keys[1], {"intValue": "7"})), {})
    assert (one["model"], one["prompt_tokens"], two["model"], two["prompt_tokens"]) == ("a", 5, "b", 7)
    assert keys in otel._PLANS


def test_attributes_no_field_needs_are_never_decoded():
    poison = {"kvlistValue": None, "stringValue": "two kinds: not an AnyValue"}  # decoding it would fail nowhere
    rec = otel.span_record(span(attr("gen_ai.input.messages", {"arrayValue": {"values": [poison]}}),
                                attr("gen_ai.usage.output_tokens", {"intValue": "3"})), {})
    assert rec["completion_tokens"] == 3 and "gen_ai.input.messages" not in str(rec)
    plan = otel._SpanPlan(("gen_ai.input.messages", "gen_ai.usage.output_tokens"))
    assert {i for _, positions in plan.fields for i in positions} == {1}


def test_a_span_without_usage_keys_or_with_empty_usage_is_not_an_llm_call():
    assert otel.span_record(span(attr("http.request.method", {"stringValue": "GET"})), {}) is None
    assert otel.span_record(span(attr("gen_ai.usage.input_tokens", {"intValue": "x"})), {}) is None


def test_an_empty_first_choice_falls_back_to_the_next_and_a_repeated_key_keeps_its_last_value():
    rec = otel.span_record(span(attr("gen_ai.request.model", {"stringValue": ""}),
                                attr("gen_ai.response.model", {"stringValue": "gpt-4o-2024-08-06"}),
                                attr("gen_ai.usage.input_tokens", {"intValue": "1"}),
                                attr("gen_ai.usage.input_tokens", {"intValue": "2"})), {})
    assert (rec["model"], rec["prompt_tokens"]) == ("gpt-4o-2024-08-06", 2)


def test_malformed_attribute_entries_are_left_out_rather_than_failing_the_span():
    rec = otel.span_record(span("junk", {"value": {"intValue": "9"}},
                                attr("gen_ai.usage.input_tokens", {"intValue": "4"})), {})
    assert rec["prompt_tokens"] == 4


def test_a_standard_service_tier_is_no_tier_and_an_error_type_marks_the_call_failed():
    rec = otel.span_record(span(attr("gen_ai.usage.input_tokens", {"intValue": "1"}),
                                attr("openai.response.service_tier", {"stringValue": "default"}),
                                attr("error.type", {"stringValue": "timeout"})), {"service.name": "bot"})
    assert "service_tier" not in rec
    assert (rec["status"], rec["error_message"], rec["service"]) == ("error", "timeout", "bot")
