"""Normalisation of raw usage records (DESIGN.md, "The raw usage record").

The alias table below is copied from DESIGN.md on purpose (not imported from
worker.ingest.normalise): the tests check the code against the spec.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.ingest.fields import RecordError, parse_timestamp
from worker.ingest.normalise import Normaliser
from worker.ledger.event import Event

TS = "2026-10-30T12:00:00Z"
NOON = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)

# DESIGN.md: canonical name -> aliases, in the order they win.
SPEC_ALIASES: dict[str, tuple[str, ...]] = {
    "event_id": ("request_id", "id", "requestId"),
    "occurred_at": ("timestamp", "created_at", "createdAt", "ts", "time"),
    "account_id": ("user_id", "userId", "user"),
    "tenant_id": ("tenantId", "org_id", "organization_id"),
    "service": ("operation_type", "operationType", "purpose", "use_case", "useCase"),
    "provider": ("custom_llm_provider",),
    "model": ("modelId", "model_requested", "model_name"),
    "model_used": ("model_actually_used",),
    "prompt_tokens": ("input_tokens", "inputTokens", "promptTokens"),
    "completion_tokens": ("output_tokens", "outputTokens", "completionTokens"),
    "total_tokens": ("tokens_used", "tokensUsed", "totalTokens"),
    "cached_tokens": ("cache_read_tokens",),
    "latency_ms": ("duration_ms", "response_time_ms", "latencyMs"),
    "cost_usd": ("total_cost_usd", "cost"),
    "error_message": ("errorMessage", "error"),
}
TEXT_FIELDS = {"event_id", "account_id", "tenant_id", "service", "provider", "model", "model_used",
               "error_message"}
INT_FIELDS = {"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "latency_ms"}
EVENT_ATTRIBUTE = {"cost_usd": "cost_reported"}


def sample(field: str, i: int) -> tuple[Any, Any]:
    """(raw value, expected Event value) for ``field``, distinct for each ``i``."""
    if field in TEXT_FIELDS:
        return f"{field}-v{i}", f"{field}-v{i}"
    if field in INT_FIELDS:
        return 100 + i, 100 + i
    if field == "occurred_at":
        return f"2026-10-30T12:{i:02d}:00Z", datetime(2026, 10, 30, 12, i, tzinfo=UTC)
    if field == "cost_usd":
        return f"0.00{i + 1}", Decimal(f"0.00{i + 1}")
    raise AssertionError(field)


def base_record(without: str) -> dict[str, Any]:
    """A minimal valid record that does not carry ``without`` (nor any of its aliases)."""
    record: dict[str, Any] = {"occurred_at": TS, "prompt_tokens": 10, "completion_tokens": 5}
    record.pop(without, None)
    return record


def norm(record: Any, **kwargs: Any) -> Event:
    return Normaliser(**kwargs).normalise(record)


def value_of(ev: Event, field: str) -> Any:
    return getattr(ev, EVENT_ATTRIBUTE.get(field, field))


# --------------------------------------------------------------------------- aliases

ALIAS_CASES = [(canon, alias) for canon, aliases in SPEC_ALIASES.items() for alias in aliases]


@pytest.mark.parametrize(("canonical", "alias"), ALIAS_CASES, ids=[f"{c}<-{a}" for c, a in ALIAS_CASES])
def test_every_alias_fills_its_canonical_field(canonical: str, alias: str):
    raw, expected = sample(canonical, 1)
    record = {**base_record(without=canonical), alias: raw}
    ev = norm(record)
    assert value_of(ev, canonical) == expected
    assert not (ev.metadata or {}).get(alias), "a known alias must not also land in metadata"


@pytest.mark.parametrize("canonical", list(SPEC_ALIASES))
def test_canonical_name_wins_over_every_alias(canonical: str):
    record = base_record(without=canonical)
    for i, alias in enumerate(SPEC_ALIASES[canonical], start=1):
        record[alias] = sample(canonical, i)[0]
    raw, expected = sample(canonical, 0)
    record[canonical] = raw  # last in the dict: key order must not matter
    assert value_of(norm(record), canonical) == expected


PRECEDENCE_CASES = [(canon, i) for canon, aliases in SPEC_ALIASES.items() if len(aliases) > 1
                    for i in range(len(aliases))]


@pytest.mark.parametrize(("canonical", "first"), PRECEDENCE_CASES,
                         ids=[f"{c}:{SPEC_ALIASES[c][i]}" for c, i in PRECEDENCE_CASES])
def test_aliases_win_in_the_listed_order(canonical: str, first: int):
    aliases = SPEC_ALIASES[canonical]
    record = base_record(without=canonical)
    # the later (losing) aliases go first in the dict so key order cannot explain the result
    for i in range(len(aliases) - 1, first - 1, -1):
        record[aliases[i]] = sample(canonical, i + 1)[0]
    expected = sample(canonical, first + 1)[1]
    assert value_of(norm(record), canonical) == expected


def test_seed_003_model_id_is_the_model_and_model_name_goes_to_metadata():
    ev = norm({"createdAt": TS, "modelId": "gpt-4o-mini", "modelName": "GPT-4o mini",
               "inputTokens": 12, "outputTokens": 3, "userId": "u1"})
    assert ev.model == "gpt-4o-mini"
    assert ev.model_used == "gpt-4o-mini"
    assert ev.metadata == {"modelName": "GPT-4o mini"}


def test_an_empty_canonical_value_lets_the_alias_through():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "model": "", "modelId": "gpt-4o"})
    assert ev.model == "gpt-4o"


def test_status_and_reasoning_tokens_are_read_by_their_canonical_names():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "completion_tokens": 9, "reasoning_tokens": 4,
               "status": "timeout"})
    assert ev.reasoning_tokens == 4
    assert ev.status == "timeout"
    assert ev.metadata is None


def test_metadata_service_is_the_service_when_no_service_field_is_given():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "metadata": {"service": "lesson_builder", "x": 1}})
    assert ev.service == "lesson_builder"
    assert ev.metadata == {"service": "lesson_builder", "x": 1}


def test_service_aliases_win_over_metadata_service():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "useCase": "quiz", "metadata": {"service": "other"}})
    assert ev.service == "quiz"


def test_metadata_given_as_json_text_is_parsed_like_a_csv_cell():
    ev = norm({"occurred_at": TS, "prompt_tokens": "1", "metadata": '{"service": "grader", "n": 2}'})
    assert ev.service == "grader"
    assert ev.metadata == {"service": "grader", "n": 2}


def test_fields_not_in_the_table_go_into_metadata_beside_the_given_metadata():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "session": "s-9", "region": "eu",
               "metadata": {"trace": "t1"}})
    assert ev.metadata == {"trace": "t1", "session": "s-9", "region": "eu"}


def test_a_record_with_only_known_fields_has_no_metadata():
    assert norm({"occurred_at": TS, "prompt_tokens": 1, "user_id": "u", "model": "m"}).metadata is None


# --------------------------------------------------------------------------- timestamps

@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-10-30T12:00:00Z", NOON),
    ("2026-10-30T12:00:00+00:00", NOON),
    ("2026-10-30T17:30:00+05:30", NOON),
    ("2026-10-30T08:00:00-04:00", NOON),
    ("2026-10-30T12:00:00", NOON),
    ("2026-10-30 12:00:00", NOON),
    ("2026-10-30 12:00:00.123456+00", NOON.replace(microsecond=123456)),
    ("2026-10-30T12:00:00.250Z", NOON.replace(microsecond=250000)),
    (1793361600, NOON),
    ("1793361600", NOON),
    (1793361600.5, NOON.replace(microsecond=500000)),
    ("1793361600.5", NOON.replace(microsecond=500000)),
    (1793361600000, NOON),
    ("1793361600000", NOON),
    (1793361600123, NOON.replace(microsecond=123000)),
    (" 2026-10-30T12:00:00Z ", NOON),
], ids=repr)
def test_every_timestamp_form_becomes_the_same_utc_instant(raw: Any, expected: datetime):
    parsed = parse_timestamp(raw)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_a_record_timestamp_is_stored_in_utc():
    ev = norm({"time": "2026-10-30T17:30:00+05:30", "prompt_tokens": 1})
    assert ev.occurred_at == NOON
    assert ev.occurred_at.tzinfo is not None and ev.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("raw", ["yesterday", "2026-13-01T00:00:00Z", "30/10/2026 12:00", True, [1],
                                 {"at": 1}, -5, float("nan"), "²"], ids=repr)
def test_unparseable_timestamps_are_rejected_with_the_reason(raw: Any):
    with pytest.raises(RecordError, match="unparseable timestamp"):
        norm({"occurred_at": raw, "prompt_tokens": 1})


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-05:00"])
def test_a_timestamp_with_no_utc_equivalent_is_rejected_not_raised(raw: str):
    """Python's datetime stops at years 1 and 9999: the offset pushes these past either end."""
    with pytest.raises(RecordError, match="timestamp out of range"):
        norm({"occurred_at": raw, "prompt_tokens": 1})


@settings(max_examples=200, database=None, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1971, 1, 2), max_value=datetime(9998, 12, 30),
                           timezones=st.timezones() | st.builds(
                               timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                                       max_value=timedelta(hours=23, minutes=59)))))
def test_any_aware_datetime_round_trips_through_iso_text_to_the_same_utc_instant(moment: datetime):
    parsed = parse_timestamp(moment.isoformat())
    assert parsed.utcoffset() == timedelta(0)
    assert parsed == moment.astimezone(UTC)


@settings(max_examples=200, database=None, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1974, 1, 1), max_value=datetime(4999, 12, 31),
                           timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)))
def test_any_instant_written_as_epoch_seconds_or_milliseconds_parses_back(moment: datetime):
    seconds = int(moment.timestamp())
    assert parse_timestamp(seconds) == moment
    assert parse_timestamp(str(seconds)) == moment
    assert parse_timestamp(seconds * 1000) == moment


# --------------------------------------------------------------------------- status

@pytest.mark.parametrize(("word", "expected"), [
    ("success", "success"), ("ok", "success"), ("completed", "success"), ("OK", "success"),
    (" Completed ", "success"),
    ("failure", "error"), ("failed", "error"), ("error", "error"), ("FAILED", "error"),
    ("timeout", "timeout"),
])
def test_status_words_map_to_success_error_or_timeout(word: str, expected: str):
    assert norm({"occurred_at": TS, "prompt_tokens": 1, "status": word}).status == expected


@pytest.mark.parametrize(("code", "expected"), [
    (200, "success"), (201, "success"), (299, "success"), ("200", "success"),
    (408, "timeout"), (504, "timeout"), ("504", "timeout"),
    (400, "error"), (401, "error"), (429, "error"), (500, "error"), (503, "error"), (302, "error"),
])
def test_status_is_derived_from_status_code_when_absent(code: Any, expected: str):
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "status_code": code})
    assert ev.status == expected
    assert ev.status_code == int(code)


@pytest.mark.parametrize("code", [2**31, -(2**31) - 1, 10**12, "99999999999"])
def test_a_status_code_too_large_for_the_column_is_dropped_but_still_says_error(code: Any):
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "status_code": code})
    assert ev.status == "error"
    assert ev.status_code is None


def test_absent_status_means_success():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1})
    assert ev.status == "success"
    assert ev.status_code is None


# --------------------------------------------------------------------------- rejects

@pytest.mark.parametrize("record", [[{"occurred_at": TS}], "a string", 42, None, True], ids=repr)
def test_a_record_that_is_not_an_object_is_rejected(record: Any):
    with pytest.raises(RecordError, match="not a JSON object"):
        norm(record)


def test_a_record_without_a_timestamp_is_rejected():
    with pytest.raises(RecordError, match="no timestamp"):
        norm({"user_id": "u1", "prompt_tokens": 10, "completion_tokens": 2})


def test_a_record_with_an_empty_timestamp_is_rejected_as_having_none():
    with pytest.raises(RecordError, match="no timestamp"):
        norm({"created_at": "", "prompt_tokens": 10})


TOKEN_FIELDS = ["prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"]


@pytest.mark.parametrize("field", TOKEN_FIELDS)
@pytest.mark.parametrize("value", [-1, "-3"], ids=repr)
def test_negative_token_counts_are_rejected_naming_the_field(field: str, value: Any):
    record = {"occurred_at": TS, "prompt_tokens": 10, "completion_tokens": 2, field: value}
    with pytest.raises(RecordError, match="negative") as info:
        norm(record)
    assert field in str(info.value)


@pytest.mark.parametrize("field", TOKEN_FIELDS)
@pytest.mark.parametrize("value", ["abc", "12abc", [3], {"n": 3}, True, 1.5, "2.5"], ids=repr)
def test_non_numeric_token_counts_are_rejected_naming_the_field(field: str, value: Any):
    record = {"occurred_at": TS, "prompt_tokens": 10, "completion_tokens": 2, field: value}
    with pytest.raises(RecordError, match="not a (whole )?number") as info:
        norm(record)
    assert field in str(info.value)


def test_a_token_count_in_superscript_digits_is_rejected_not_crashing():
    # "²".isdigit() is True but int("²") fails: this must still be a RecordError
    # (the ingest loop quarantines RecordError; any other exception stops the run).
    with pytest.raises(RecordError, match="prompt_tokens"):
        norm({"occurred_at": TS, "prompt_tokens": "²"})


def test_a_record_with_no_token_counts_and_no_cost_is_rejected():
    with pytest.raises(RecordError, match="no token counts and no cost"):
        norm({"occurred_at": TS, "user_id": "u1", "model": "gpt-4o-mini"})


def test_a_record_with_a_cost_but_no_token_counts_is_kept():
    ev = norm({"occurred_at": TS, "cost": "0.0042"})
    assert ev.cost_reported == Decimal("0.0042")
    assert ev.total_tokens == 0
    assert ev.token_split_known is False


# --------------------------------------------------------------------------- kept, flagged

def test_missing_account_is_kept_as_unattributed():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1})
    assert ev.account_id == "(unattributed)"
    assert ev.unattributed is True


@pytest.mark.parametrize("blank", ["", "   ", None], ids=repr)
def test_a_blank_account_is_unattributed_too(blank: Any):
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "user_id": blank})
    assert ev.account_id == "(unattributed)"
    assert ev.unattributed is True


def test_a_present_account_is_attributed():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "user": "alice"})
    assert ev.account_id == "alice"
    assert ev.unattributed is False


def test_missing_model_takes_the_source_default_model():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1}, defaults={"model": "grok-2"})
    assert ev.model == "grok-2"
    assert ev.model_used == "grok-2"
    assert ev.model_defaulted is True


def test_missing_model_without_a_default_is_unknown_and_flagged():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1})
    assert ev.model == "(unknown)"
    assert ev.model_used == "(unknown)"
    assert ev.model_defaulted is True


def test_a_present_model_is_not_flagged_as_defaulted():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "model": "gpt-4o"}, defaults={"model": "grok-2"})
    assert ev.model == "gpt-4o"
    assert ev.model_defaulted is False


def test_model_used_defaults_to_model_and_is_kept_when_given():
    assert norm({"occurred_at": TS, "prompt_tokens": 1, "model": "gpt-4o"}).model_used == "gpt-4o"
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "model": "gpt-4o", "model_actually_used": "gpt-4o-mini"})
    assert (ev.model, ev.model_used) == ("gpt-4o", "gpt-4o-mini")


def test_total_tokens_is_derived_from_prompt_and_completion_when_absent():
    ev = norm({"occurred_at": TS, "prompt_tokens": 120, "completion_tokens": 30})
    assert ev.total_tokens == 150
    assert ev.token_split_known is True


def test_a_given_total_is_kept_as_reported():
    ev = norm({"occurred_at": TS, "prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 170})
    assert (ev.prompt_tokens, ev.completion_tokens, ev.total_tokens) == (120, 30, 170)


def test_only_a_total_means_the_split_is_unknown():
    ev = norm({"occurred_at": TS, "tokens_used": 900})
    assert ev.total_tokens == 900
    assert (ev.prompt_tokens, ev.completion_tokens) == (0, 0)
    assert ev.token_split_known is False


def test_optional_counts_default_to_zero_and_latency_to_none():
    ev = norm({"occurred_at": TS, "prompt_tokens": 5})
    assert (ev.cached_tokens, ev.reasoning_tokens, ev.latency_ms) == (0, 0, None)
    assert ev.cost_reported is None
    assert ev.error_message is None


@settings(max_examples=300, database=None, deadline=None)
@given(prompt=st.integers(min_value=0, max_value=10**12), completion=st.integers(min_value=0, max_value=10**12),
       as_text=st.booleans())
def test_any_non_negative_counts_normalise_and_total_is_their_sum(prompt: int, completion: int, as_text: bool):
    record = {"occurred_at": TS, "input_tokens": str(prompt) if as_text else prompt,
              "output_tokens": str(completion) if as_text else completion}
    ev = norm(record)
    assert (ev.prompt_tokens, ev.completion_tokens) == (prompt, completion)
    assert ev.total_tokens == prompt + completion
    assert ev.token_split_known is True


# --------------------------------------------------------------------------- event ids

@pytest.mark.parametrize("key", ["event_id", "request_id", "id", "requestId"])
def test_the_event_id_comes_from_the_record(key: str):
    assert norm({"occurred_at": TS, "prompt_tokens": 1, key: "req-77"}).event_id == "req-77"


def test_the_event_id_namespace_prefixes_the_record_id():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "id": 42}, namespace="app1")
    assert ev.event_id == "app1:42"


def test_the_same_serial_id_from_two_namespaces_gives_two_event_ids():
    record = {"occurred_at": TS, "prompt_tokens": 1, "id": 7}
    assert norm(record, namespace="app1").event_id != norm(record, namespace="app2").event_id


HASHED = {"occurred_at": TS, "user_id": "u1", "tenant_id": "t1", "service": "chat", "provider": "openai",
          "model": "gpt-4o", "model_used": "gpt-4o-mini", "status": "success", "prompt_tokens": 100,
          "completion_tokens": 20, "total_tokens": 120, "cached_tokens": 10, "reasoning_tokens": 5,
          "latency_ms": 300, "cost_usd": "0.01", "error_message": "none", "session": "s1",
          "metadata": {"trace": "t1"}}


def test_a_record_without_an_id_gets_a_content_hash():
    ev = norm(dict(HASHED))
    assert ev.event_id.startswith("h:")
    assert len(ev.event_id) > 10


def test_identical_records_without_an_id_get_the_same_hash():
    assert norm(dict(HASHED)).event_id == Normaliser().normalise(dict(HASHED)).event_id


@pytest.mark.parametrize(("field", "other"), [
    ("occurred_at", "2026-10-30T12:00:01Z"), ("user_id", "u2"), ("tenant_id", "t2"), ("service", "quiz"),
    ("provider", "azure"), ("model", "gpt-4.1"), ("model_used", "gpt-4o"), ("status", "error"),
    ("prompt_tokens", 101), ("completion_tokens", 21), ("total_tokens", 121), ("cached_tokens", 11),
    ("reasoning_tokens", 6), ("latency_ms", 301), ("cost_usd", "0.02"), ("error_message", "other"),
    ("session", "s2"), pytest.param("metadata", {"trace": "t2"}, id="metadata"),
])
def test_records_without_an_id_that_differ_in_any_field_get_different_hashes(field: str, other: Any):
    changed = {**HASHED, field: other}
    assert norm(dict(HASHED)).event_id != norm(changed).event_id


# --------------------------------------------------------------------------- source defaults

DEFAULTS = {"model": "grok-2", "provider": "x-ai", "service": "auto_populate", "account_id": "svc-account",
            "tenant_id": "school-1"}
RECORD_VALUES = {"model": "gpt-4o", "provider": "openai", "service": "chat", "account_id": "alice",
                 "tenant_id": "school-9"}


@pytest.mark.parametrize("field", list(DEFAULTS))
def test_a_source_default_fills_a_missing_field(field: str):
    ev = norm({"occurred_at": TS, "prompt_tokens": 1}, defaults=DEFAULTS)
    assert getattr(ev, field) == DEFAULTS[field]


@pytest.mark.parametrize("field", list(DEFAULTS))
def test_a_source_default_never_overrides_the_records_own_value(field: str):
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, field: RECORD_VALUES[field]}, defaults=DEFAULTS)
    assert getattr(ev, field) == RECORD_VALUES[field]


def test_a_default_account_means_the_event_is_attributed():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1}, defaults={"account_id": "svc"})
    assert ev.account_id == "svc"
    assert ev.unattributed is False


# --------------------------------------------------------------------------- CSV-style text

def test_csv_style_string_values_are_converted():
    ev = norm({"created_at": "2026-10-30 12:00:00", "user_id": "u1", "model": "gpt-4o-mini",
               "prompt_tokens": "123", "completion_tokens": "45", "cached_tokens": "20",
               "latency_ms": "250", "status_code": "200", "cost": "0.0015"})
    assert ev.occurred_at == NOON
    assert (ev.prompt_tokens, ev.completion_tokens, ev.total_tokens, ev.cached_tokens) == (123, 45, 168, 20)
    assert ev.latency_ms == 250
    assert ev.status == "success" and ev.status_code == 200
    assert ev.cost_reported == Decimal("0.0015")
    assert isinstance(ev.cost_reported, Decimal)


def test_a_structured_error_is_kept_as_json_text():
    ev = norm({"occurred_at": TS, "prompt_tokens": 1, "error": {"code": 429, "type": "rate_limit"}})
    assert ev.error_message == '{"code":429,"type":"rate_limit"}'


# --------------------------------------------------------------------------- one normaliser, many records

MIXED = [
    {"user_id": 1}, {"user_id": 1.0}, {"user_id": True}, {"user_id": "1"}, {"user_id": " 1 "},
    {"user_id": ["a"]}, {"user_id": {"id": 1}}, {"user_id": ""}, {"user_id": None}, {},
    {"account_id": "a", "service": "chat"}, {"account_id": "a", "metadata": {"service": "meta-svc"}},
    {"account_id": "a", "metadata": {"service": "m" * 300}}, {"account_id": "a"},
    {"account_id": "a", "model": "m" * 250}, {"account_id": "a", "model": "gpt-4o", "model_used": "x" * 201},
    {"account_id": "b", "tenant_id": "t", "provider": "openai", "model": "gpt-4o"},
    {"account_id": "b", "tenant_id": "t", "provider": "openai", "model": "gpt-4o", "metadata": {"service": "s2"}},
    {"account_id": "a\x00b", "model": " gpt-4o "}, {"account_id": "a\x00b", "model": "gpt-4o"},
]


@pytest.mark.parametrize("defaults", [{}, DEFAULTS], ids=["no-defaults", "defaults"])
def test_one_normaliser_gives_every_record_what_a_fresh_one_gives(defaults: dict[str, str]):
    """The normaliser remembers what it worked out for earlier records; that never leaks into later ones."""
    shared = Normaliser(defaults=defaults)
    records = [{"occurred_at": TS, "prompt_tokens": 1, **r} for r in MIXED * 2]
    for record in records:
        assert shared.normalise(dict(record)) == norm(dict(record), defaults=defaults), record
