"""LedgerWriter rows read back exactly, on SQLite and PostgreSQL.

On PostgreSQL the writer encodes binary COPY tuples itself (ledger.PgRowEncoder), so
every column type is written here with the values at its edges and read back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from worker.ledger.rows import pg_numeric_units
from worker.ledger.writer import LedgerWriter
from worker.models import UsageEvent
from worker.ingest.normalise import Normaliser
from worker.ledger.pricing import Priced, Pricer

EVENTS = UsageEvent.__table__


def _write(engine: Engine, pairs: list[tuple[Any, Priced]]) -> dict[str, dict[str, Any]]:
    writer = LedgerWriter(source="rows", ingested_at=datetime(2026, 11, 2, 3, 4, 5, 678901, tzinfo=UTC),
                          dialect=engine.dialect.name, tz=ZoneInfo("UTC"))
    for ev, priced in pairs:
        writer.add(ev, priced)
    with engine.begin() as conn:
        stats = writer.flush(conn)
    assert stats.accepted == len(pairs)
    with engine.connect() as conn:
        return {r.event_id: dict(r._mapping) for r in conn.execute(select(EVENTS))}


def _event(**fields: Any):
    record = {"event_id": "e", "occurred_at": "2026-10-01T00:00:00Z", "prompt_tokens": 1, **fields}
    return Normaliser().normalise(record)


def test_every_column_reads_back_as_written(engine):
    ev = _event(event_id="ünïcødé-€-𝄞", occurred_at="2026-10-05T12:34:56.789012+02:00",
                user_id="acct 😀", tenant_id="t-1", service="chat\twith\ttabs", provider="openai",
                model="gpt-4o-mini", model_actually_used="gpt-4o-mini-2024-07-18", status="error",
                status_code=503, prompt_tokens=10**15 - 10, completion_tokens=7, total_tokens=10**15 - 3,
                cached_tokens=3, reasoning_tokens=2, latency_ms=2_000_000_000, cost_usd="12.345678901251",
                error="line one\nline \\two", metadata={"k": "v\x00nul", "n": [1, 2.5, None], "deep": {"a": True}},
                cache_write_tokens=10**15 - 20, cache_write_1h_tokens=10**15 - 30, service_tier="priority",
                api_key="sk-…hash ünï", project_id="proj_😀")
    priced = Priced("openai", 123456789012345678, 1, "reported", "genai-prices x openai/gpt-4o-mini",
                    date(1999, 12, 31))
    row = _write(engine, [(ev, priced)])[ev.event_id]

    assert row["source"] == "rows"
    assert row["occurred_at"] == datetime(2026, 10, 5, 10, 34, 56, 789012, tzinfo=UTC)
    assert row["ingested_at"] == datetime(2026, 11, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert (row["account_id"], row["tenant_id"], row["service"]) == ("acct 😀", "t-1", "chat\twith\ttabs")
    assert (row["provider"], row["model"], row["model_used"]) == ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (row["status"], row["status_code"]) == ("error", 503)
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (10**15 - 10, 7, 10**15 - 3)
    assert (row["cached_tokens"], row["reasoning_tokens"], row["latency_ms"]) == (3, 2, 2_000_000_000)
    assert row["cost_usd"] == Decimal("12345678.9012345678")
    assert row["cost_computed"] == Decimal("0.0000000001")
    assert row["cost_reported"] == row["cost_usd"]  # a reported cost is the priced cost (Pricer.price)
    assert row["cost_status"] == "reported"
    assert row["price_source"] == "genai-prices x openai/gpt-4o-mini"
    assert row["price_effective_from"] == date(1999, 12, 31)
    assert (row["unattributed"], row["model_defaulted"]) == (False, False)
    assert row["error_message"] == "line one\nline \\two"
    assert row["metadata"] == {"k": "v\ufffdnul", "n": [1, 2.5, None], "deep": {"a": True}}
    assert (row["cache_write_tokens"], row["cache_write_1h_tokens"]) == (10**15 - 20, 10**15 - 30)
    assert (row["service_tier"], row["api_key"], row["project_id"]) == ("priority", "sk-…hash ünï", "proj_😀")


@pytest.mark.parametrize("units", [
    0, 1, 9_999, 10_000, 99_999_999, 100_000_000, 1_234_567_890, 10_000_000_000, 12_345_678_901_234,
    10**14 - 1, 10**14, 10**14 + 1, 5 * 10**18 + 1,
])
def test_amounts_in_1e10_units_read_back_exactly(engine, units):
    ev = _event(event_id=f"u{units}")
    row = _write(engine, [(ev, Priced("openai", units, units, "priced", "s", None))])[ev.event_id]
    assert row["cost_usd"] == Decimal(units).scaleb(-10)
    assert row["cost_computed"] == Decimal(units).scaleb(-10)


@pytest.mark.parametrize("moment", [
    "0001-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "1970-01-01T00:00:00Z", "1999-12-31T23:59:59.999999Z",
    "2000-01-01T00:00:00Z", "2000-01-01T00:00:00.000001Z", "2038-01-19T03:14:08Z", "9999-12-30T23:59:59.999999Z",
])
def test_timestamps_at_the_edges_read_back_exactly(engine, moment):
    ev = _event(event_id=moment, occurred_at=moment)
    row = _write(engine, [(ev, Pricer().price(ev))])[ev.event_id]
    assert row["occurred_at"] == datetime.fromisoformat(moment)


def test_nulls_and_flags_read_back(engine):
    ev = Normaliser().normalise({"occurred_at": "2026-10-01T00:00:00Z", "total_tokens": 5})
    row = _write(engine, [(ev, Priced("(unknown)", None, None, "unpriced", None, None))])[ev.event_id]
    assert (row["unattributed"], row["model_defaulted"]) == (True, True)
    assert (row["cache_write_tokens"], row["cache_write_1h_tokens"]) == (0, 0)
    for column in ("service_tier", "api_key", "project_id", "tenant_id", "service", "status_code", "latency_ms", "cost_usd", "cost_computed",
                   "cost_reported", "price_source", "price_effective_from", "error_message", "metadata"):
        assert row[column] is None, column


def test_numeric_encoding_is_canonical_beyond_the_fast_range():
    # The general path (10,000 USD and more) writes normalised digits: no leading or trailing zero digit.
    encoded = pg_numeric_units(10**20)  # 10^10 USD: one digit, 10000^2... weight 2
    ndigits, weight, sign, dscale = (int.from_bytes(encoded[i:i + 2], "big", signed=True) for i in (4, 6, 8, 10))
    assert (ndigits, weight, sign, dscale) == (1, 2, 0, 10)
    assert int.from_bytes(encoded[12:14], "big") == 100


def test_a_reported_cost_rounds_half_away_from_zero_and_cost_usd_equals_cost_reported(engine):
    """PostgreSQL rounds a value with more places half away from zero into NUMERIC(20,10); the pricer
    rounds a reported cost the same way, so both columns agree to the unit on both databases (before,
    cost_usd rounded half to even: 1.00000000005 gave 1.0000000000 beside a cost_reported of 1.0000000001)."""
    pricer = Pricer()
    pairs = [(ev, pricer.price(ev)) for ev in (
        _event(event_id="tie", cost_usd="1.00000000005"), _event(event_id="long", cost_usd="12.345678901251"),
        _event(event_id="exact", cost_usd="0.0031234500"))]
    rows = _write(engine, pairs)
    expected = {"tie": Decimal("1.0000000001"), "long": Decimal("12.3456789013"), "exact": Decimal("0.00312345")}
    for event_id, amount in expected.items():
        assert (rows[event_id]["cost_reported"], rows[event_id]["cost_usd"]) == (amount, amount), event_id
        assert rows[event_id]["cost_status"] == "reported"
