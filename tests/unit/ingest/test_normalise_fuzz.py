"""The normaliser under arbitrary JSON: every record becomes an event (or events, or an attempt) or
raises RecordError, never another exception."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.ingest.fields import RecordError
from worker.ingest.formats.canonical import ALIASES
from worker.ingest.normalise import Normaliser
from worker.ledger.event import Attempt, Event

KEYS = sorted({k for canon, aliases in ALIASES.items() for k in (canon, *aliases)} | {"metadata", "record_type"})
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
           | st.sampled_from(["2026-10-30T12:00:00Z", "9999-12-31T23:30:00Z", "0001-01-01T00:00:00+01:00",
                              "1e400", "attempt", "usage", "", "NaN", "-1", "12"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5) | st.sampled_from(KEYS), inner, max_size=3), max_leaves=8)
DEEP = st.integers(min_value=250, max_value=320).map(lambda n: _deep(n))


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"x": value}
    return value


RECORDS = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), JSON | DEEP, max_size=10)
BASE = st.fixed_dictionaries({"occurred_at": st.just("2026-10-30T12:00:00Z"), "prompt_tokens": st.just(1)})


def accepted_or_rejected(normaliser: Normaliser, record: Any) -> str:
    try:
        out = normaliser.normalise(record)
    except RecordError:
        return "rejected"
    assert isinstance(out, (Event, Attempt, list)), out
    return "accepted"


@settings(max_examples=300, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=RECORDS | JSON)
def test_any_json_value_is_normalised_or_rejected_with_a_record_error(record: Any):
    assert accepted_or_rejected(Normaliser(), record) in ("accepted", "rejected")


@settings(max_examples=300, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=BASE, extra=RECORDS)
def test_a_valid_record_with_arbitrary_values_under_any_key_is_normalised_or_rejected(base: dict, extra: dict):
    assert accepted_or_rejected(Normaliser(fmt="canonical"), {**base, **extra}) in ("accepted", "rejected")
