"""`tokentally usage`, `accounts import/list` and `reprice`, through the CLI, on both databases."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers import PRICES
from worker.models import Account, UsageEvent

TOTAL_FIELDS = ("requests", "errors", "timeouts", "prompt_tokens", "completion_tokens", "total_tokens",
                "unpriced_requests")


def record(event_id: str, ts: str, *, model: str = "house-llm", provider: str = "acme", account: str = "a1",
           tenant: str | None = None, service: str | None = "chat", prompt: int = 1000, completion: int = 500,
           **extra: Any) -> dict[str, Any]:
    rec = {"request_id": event_id, "timestamp": ts, "user_id": account, "provider": provider, "model": model,
           "service": service, "prompt_tokens": prompt, "completion_tokens": completion, **extra}
    if tenant is not None:
        rec["tenant_id"] = tenant
    return rec


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def ok(result) -> Any:
    assert result.exit_code == 0, result.output
    return result


def ingest(cli, tmp_path: Path, records: list[dict[str, Any]], config: Path) -> dict[str, Any]:
    log = write_jsonl(tmp_path / "usage.jsonl", records)
    stats = json.loads(ok(cli("ingest", log, "--format", "json", config=config)).stdout)
    assert stats["accepted"] == len(records), stats
    return stats


def usage_json(cli, first: str, last: str, by: str, config: Path) -> list[dict[str, Any]]:
    return json.loads(ok(cli("usage", "--from", first, "--to", last, "--by", by, "--format", "json",
                             config=config)).stdout)


def keyed(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    by_key = {row[key]: row for row in rows}
    assert len(by_key) == len(rows), rows
    return by_key


def flat(text: str) -> str:
    """CLI error text without the line breaks rich puts in long messages."""
    return " ".join(text.split())


# --------------------------------------------------------------------------- usage: keys and totals

# Range 2026-10-29..2026-10-31 (UTC); OUT_BEFORE and OUT_AFTER sit one second outside it.
RANGE_RECORDS = [
    record("out-before", "2026-10-28T23:59:59Z"),
    record("e1", "2026-10-29T00:00:00Z", account="a1", tenant="t1", prompt=1000, completion=500),  # 0.002
    record("e2", "2026-10-29T12:00:00Z", model="house-mini", account="a1", tenant="t1",
           prompt=10000, completion=5000),  # 0.001 + 0.002 = 0.003
    record("e3", "2026-10-30T08:00:00Z", account="a2", tenant="t2", service="summarise", status="error",
           prompt=2000, completion=0),  # 0.002
    record("e4", "2026-10-30T09:00:00Z", model="mystery-model", provider="other", account="a2", tenant="t2",
           service="summarise", prompt=300, completion=100),  # no price: unpriced
    record("e5", "2026-10-31T23:59:59Z", model="house-mini", account="a3", status_code=504,
           prompt=100, completion=0),  # 0.00001, timeout
    record("out-after", "2026-11-01T00:00:00Z"),
]


@pytest.fixture
def range_config(cli, tmp_path: Path) -> Path:
    config = write_config(tmp_path / "usage.toml", PRICES)
    ingest(cli, tmp_path, RANGE_RECORDS, config)
    return config


def test_usage_by_day_counts_both_ends_of_the_range_and_nothing_outside(cli, range_config):
    rows = usage_json(cli, "2026-10-29", "2026-10-31", "day", range_config)

    assert rows == [
        {"day": "2026-10-29", "requests": 2, "errors": 0, "timeouts": 0, "prompt_tokens": 11000,
         "completion_tokens": 5500, "total_tokens": 16500, "cost_usd": "0.0050000000", "unpriced_requests": 0},
        {"day": "2026-10-30", "requests": 2, "errors": 1, "timeouts": 0, "prompt_tokens": 2300,
         "completion_tokens": 100, "total_tokens": 2400, "cost_usd": "0.0020000000", "unpriced_requests": 1},
        {"day": "2026-10-31", "requests": 1, "errors": 0, "timeouts": 1, "prompt_tokens": 100,
         "completion_tokens": 0, "total_tokens": 100, "cost_usd": "0.0000100000", "unpriced_requests": 0},
    ]


def test_usage_of_a_single_day_includes_its_first_and_last_second(cli, range_config):
    assert [(r["day"], r["requests"]) for r in usage_json(cli, "2026-10-29", "2026-10-29", "day", range_config)] \
        == [("2026-10-29", 2)]
    assert [(r["day"], r["requests"]) for r in usage_json(cli, "2026-10-31", "2026-10-31", "day", range_config)] \
        == [("2026-10-31", 1)]


def test_usage_by_model_carries_the_model_and_counts_unpriced_requests(cli, range_config):
    rows = keyed(usage_json(cli, "2026-10-29", "2026-10-31", "model", range_config), "model")

    assert set(rows) == {"house-llm", "house-mini", "mystery-model"}
    assert rows["house-llm"] == {"model": "house-llm", "requests": 2, "errors": 1, "timeouts": 0,
                                 "prompt_tokens": 3000, "completion_tokens": 500, "total_tokens": 3500,
                                 "cost_usd": "0.0040000000", "unpriced_requests": 0}
    assert rows["house-mini"]["cost_usd"] == "0.0030100000"
    assert rows["house-mini"]["timeouts"] == 1
    assert rows["mystery-model"] == {"model": "mystery-model", "requests": 1, "errors": 0, "timeouts": 0,
                                     "prompt_tokens": 300, "completion_tokens": 100, "total_tokens": 400,
                                     "cost_usd": "0.0000000000", "unpriced_requests": 1}


@pytest.mark.parametrize(("by", "key", "expected"), [
    ("provider", "provider", {"acme": 4, "other": 1}),
    ("service", "service", {"chat": 3, "summarise": 2}),
    ("account", "account_id", {"a1": 2, "a2": 2, "a3": 1}),
    ("tenant", "tenant_id", {"t1": 2, "t2": 2, None: 1}),
    ("month", "month", {"2026-10": 5}),
])
def test_usage_json_rows_carry_the_grouping_key_under_its_own_name(cli, range_config, by, key, expected):
    rows = usage_json(cli, "2026-10-29", "2026-10-31", by, range_config)

    assert all(set(row) == {key, *TOTAL_FIELDS, "cost_usd"} for row in rows), rows
    assert {row[key]: row["requests"] for row in rows} == expected
    assert sum(Decimal(row["cost_usd"]) for row in rows) == Decimal("0.00701")
    assert sum(row["unpriced_requests"] for row in rows) == 1


def test_usage_cost_is_a_decimal_string_with_ten_places(cli, range_config):
    for row in usage_json(cli, "2026-10-29", "2026-10-31", "account", range_config):
        assert isinstance(row["cost_usd"], str)
        whole, _, places = row["cost_usd"].partition(".")
        assert whole.isdigit() and len(places) == 10 and places.isdigit(), row


def test_usage_by_month_cuts_months_in_the_range(cli, range_config):
    rows = usage_json(cli, "2026-10-01", "2026-11-30", "month", range_config)
    assert [(r["month"], r["requests"]) for r in rows] == [("2026-10", 6), ("2026-11", 1)]


def test_usage_as_csv_has_a_header_naming_the_key_and_the_totals(cli, range_config):
    out = ok(cli("usage", "--from", "2026-10-29", "--to", "2026-10-31", "--by", "account", "--format", "csv",
                 config=range_config)).stdout
    rows = list(csv.reader(io.StringIO(out)))

    assert rows[0] == ["account_id", "requests", "errors", "timeouts", "prompt_tokens", "completion_tokens",
                       "total_tokens", "cost_usd", "unpriced_requests"]
    assert rows[1:] == [
        ["a1", "2", "0", "0", "11000", "5500", "16500", "0.0050000000", "0"],
        ["a2", "2", "1", "0", "2300", "100", "2400", "0.0020000000", "1"],
        ["a3", "1", "0", "1", "100", "0", "100", "0.0000100000", "0"],
    ]


def test_usage_as_a_table_shows_each_day_and_its_cost(cli, range_config):
    out = ok(cli("usage", "--from", "2026-10-29", "--to", "2026-10-31", "--by", "day", "--format", "table",
                 config=range_config)).stdout
    for text in ("day", "cost_usd", "unpriced_requests", "2026-10-29", "2026-10-30", "2026-10-31",
                 "0.0050000000", "0.0000100000"):
        assert text in out
    assert "2026-10-28" not in out and "2026-11-01" not in out


def test_usage_with_the_range_reversed_is_refused(cli, range_config):
    result = cli("usage", "--from", "2026-10-31", "--to", "2026-10-29", "--by", "day", config=range_config)
    assert result.exit_code == 2
    assert "--to is before --from" in flat(result.output)


# --------------------------------------------------------------------------- usage: local days across DST

# (UTC instant, expected local day): both sides of local midnight on each DST change day.
DST_CASES = {
    "America/New_York": [
        ("2026-03-08T04:59:59Z", "2026-03-07"),  # 23:59:59 EST
        ("2026-03-08T05:00:00Z", "2026-03-08"),  # 00:00 EST, the 23-hour day starts
        ("2026-03-09T03:59:59Z", "2026-03-08"),  # 23:59:59 EDT
        ("2026-03-09T04:00:00Z", "2026-03-09"),  # 00:00 EDT
        ("2026-11-01T03:59:59Z", "2026-10-31"),  # 23:59:59 EDT
        ("2026-11-01T04:00:00Z", "2026-11-01"),  # 00:00 EDT, the 25-hour day starts
        ("2026-11-02T04:59:59Z", "2026-11-01"),  # 23:59:59 EST
        ("2026-11-02T05:00:00Z", "2026-11-02"),  # 00:00 EST
    ],
    "Europe/Berlin": [
        ("2026-03-28T22:59:59Z", "2026-03-28"),  # 23:59:59 CET
        ("2026-03-28T23:00:00Z", "2026-03-29"),  # 00:00 CET, the 23-hour day starts
        ("2026-03-29T21:59:59Z", "2026-03-29"),  # 23:59:59 CEST
        ("2026-03-29T22:00:00Z", "2026-03-30"),  # 00:00 CEST
        ("2026-10-24T21:59:59Z", "2026-10-24"),  # 23:59:59 CEST
        ("2026-10-24T22:00:00Z", "2026-10-25"),  # 00:00 CEST, the 25-hour day starts
        ("2026-10-25T22:59:59Z", "2026-10-25"),  # 23:59:59 CET
        ("2026-10-25T23:00:00Z", "2026-10-26"),  # 00:00 CET
    ],
}
# The two DST change days of each zone.
DST_DAYS = {"America/New_York": ("2026-03-08", "2026-11-01"), "Europe/Berlin": ("2026-03-29", "2026-10-25")}
# Last second of March in local summer time, and the first second of April.
MONTH_CASES = {
    "America/New_York": [("2026-04-01T03:59:59Z", "2026-03"), ("2026-04-01T04:00:00Z", "2026-04")],
    "Europe/Berlin": [("2026-03-31T21:59:59Z", "2026-03"), ("2026-03-31T22:00:00Z", "2026-04")],
}

zones = pytest.mark.parametrize("zone", list(DST_CASES))


def dst_records(cases: list[tuple[str, str]]) -> list[dict[str, Any]]:
    # Event i has 2**i prompt tokens, so a bucket's total says exactly which events it holds.
    return [record(f"dst-{i}", ts, model="house-llm" if i % 2 else "house-mini", prompt=2 ** i, completion=i)
            for i, (ts, _) in enumerate(cases)]


def expected_days(cases: list[tuple[str, str]], first: str, last: str) -> dict[str, int]:
    days: dict[str, int] = {}
    for i, (_, day) in enumerate(cases):
        if first <= day <= last:
            days[day] = days.get(day, 0) + 2 ** i
    return days


@pytest.fixture
def zone_config(tmp_path: Path):
    def make(zone: str) -> Path:
        return write_config(tmp_path / "zone.toml", f'timezone = "{zone}"\n' + PRICES)
    return make


@zones
def test_events_fall_on_their_local_day_on_both_sides_of_midnight_across_dst(cli, tmp_path, zone_config, zone):
    config = zone_config(zone)
    cases = DST_CASES[zone]
    ingest(cli, tmp_path, dst_records(cases), config)
    first, last = cases[0][1], cases[-1][1]  # a range holding both DST changes

    rows = usage_json(cli, first, last, "day", config)

    assert {r["day"]: r["prompt_tokens"] for r in rows} == expected_days(cases, first, last)


@zones
def test_a_dst_change_day_alone_holds_exactly_its_own_events(cli, tmp_path, zone_config, zone):
    config = zone_config(zone)
    cases = DST_CASES[zone]
    ingest(cli, tmp_path, dst_records(cases), config)

    for day in DST_DAYS[zone]:
        rows = usage_json(cli, day, day, "day", config)
        assert {r["day"]: r["prompt_tokens"] for r in rows} == expected_days(cases, day, day), day
        assert rows[0]["requests"] == 2


@zones
def test_totals_by_day_add_up_to_the_totals_by_model_across_dst(cli, tmp_path, zone_config, zone):
    config = zone_config(zone)
    cases = DST_CASES[zone]
    ingest(cli, tmp_path, dst_records(cases), config)
    first, last = cases[1][1], cases[-2][1]  # leave one event out at each end

    by_day = usage_json(cli, first, last, "day", config)
    by_model = usage_json(cli, first, last, "model", config)

    def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
        sums: dict[str, Any] = {f: sum(r[f] for r in rows) for f in TOTAL_FIELDS}
        sums["cost_usd"] = sum(Decimal(r["cost_usd"]) for r in rows)
        return sums

    assert totals(by_day) == totals(by_model)
    assert totals(by_day)["requests"] == len(cases) - 2
    assert totals(by_day)["cost_usd"] > 0


@zones
def test_local_months_are_cut_at_local_midnight_in_summer_time(cli, tmp_path, zone_config, zone):
    config = zone_config(zone)
    cases = MONTH_CASES[zone]
    ingest(cli, tmp_path, dst_records(cases), config)

    rows = usage_json(cli, "2026-03-01", "2026-04-30", "month", config)

    assert [(r["month"], r["prompt_tokens"]) for r in rows] == [("2026-03", 1), ("2026-04", 2)]


# --------------------------------------------------------------------------- accounts

TIERS = """
default_tier = "student"

[tiers.student]
daily_tokens = 10000
action = "warn"

[tiers.pro]
daily_tokens = 1000000
action = "block"
"""


def accounts(cli, config: Path) -> dict[str, dict[str, Any]]:
    rows = json.loads(ok(cli("accounts", "list", "--format", "json", config=config)).stdout)
    return keyed(rows, "account_id")


def test_accounts_import_creates_then_updates_accounts(cli, tmp_path):
    config = write_config(tmp_path / "tiers.toml", TIERS)
    (tmp_path / "first.csv").write_text(
        "account_id,tenant_id,tier,email\n"
        "a1,t1,pro,a1@example.com\n"
        "a2,t1,,a2@example.com\n", encoding="utf-8")
    (tmp_path / "second.csv").write_text(
        "account_id,tenant_id,tier,email\n"
        "a2,t2,pro,new-a2@example.com\n"
        "a3,,,\n", encoding="utf-8")

    first = json.loads(ok(cli("accounts", "import", "first.csv", "--format", "json", config=config)).stdout)
    assert first == {"rows": 2, "created": 2, "updated": 0}
    second = json.loads(ok(cli("accounts", "import", "second.csv", "--format", "json", config=config)).stdout)
    assert second == {"rows": 2, "created": 1, "updated": 1}

    assert accounts(cli, config) == {
        "a1": {"account_id": "a1", "tenant_id": "t1", "tier": "pro", "tier_source": "account",
               "email": "a1@example.com"},
        "a2": {"account_id": "a2", "tenant_id": "t2", "tier": "pro", "tier_source": "account",
               "email": "new-a2@example.com"},
        "a3": {"account_id": "a3", "tenant_id": None, "tier": "student", "tier_source": "default",
               "email": None},
    }


def test_accounts_list_shows_the_default_tier_for_accounts_without_one(cli, tmp_path):
    config = write_config(tmp_path / "tiers.toml", TIERS)
    (tmp_path / "accounts.csv").write_text("account_id,tier\nno-tier,\n", encoding="utf-8")
    ok(cli("accounts", "import", "accounts.csv", config=config))

    listed = accounts(cli, config)["no-tier"]
    assert (listed["tier"], listed["tier_source"]) == ("student", "default")


def test_accounts_import_rejects_an_unknown_tier_naming_the_line_and_imports_nothing(cli, tmp_path, engine):
    config = write_config(tmp_path / "tiers.toml", TIERS)
    (tmp_path / "bad.csv").write_text(
        "account_id,tenant_id,tier,email\n"
        "a4,t1,pro,a4@example.com\n"
        "a5,t1,platinum,a5@example.com\n"
        "a6,t1,student,a6@example.com\n", encoding="utf-8")

    result = cli("accounts", "import", "bad.csv", config=config)

    assert result.exit_code != 0
    message = flat(result.output)
    assert "bad.csv:3" in message
    assert "platinum" in message
    assert accounts(cli, config) == {}
    with Session(engine) as session:
        assert session.scalars(select(Account)).all() == []


# --------------------------------------------------------------------------- reprice

REPRICE_RECORDS = [
    record("r-before", "2026-10-28T23:59:59Z"),
    record("r-first", "2026-10-29T00:00:00Z", prompt=1000, completion=500),
    record("r-reported", "2026-10-30T12:00:00Z", prompt=1000, completion=500, cost_usd="0.5"),
    record("r-steady", "2026-10-30T13:00:00Z", model="house-mini", prompt=1000, completion=1000),
    record("r-last", "2026-10-31T23:59:59Z", prompt=2000, completion=1000),
    record("r-after", "2026-11-01T00:00:00Z"),
]

ONLY_MINI = """
[[pricing.overrides]]
model = "house-mini"
input_per_mtok = "0.10"
output_per_mtok = "0.40"
effective_from = "2025-01-01"
"""


def ledger_costs(engine) -> dict[str, tuple[Decimal | None, Decimal | None, str]]:
    with Session(engine) as session:
        return {e.event_id: (e.cost_usd, e.cost_computed, e.cost_status)
                for e in session.scalars(select(UsageEvent))}


def test_reprice_after_adding_an_override_changes_only_events_in_the_range(cli, tmp_path, engine):
    before_config = write_config(tmp_path / "before.toml", ONLY_MINI)
    after_config = write_config(tmp_path / "after.toml", PRICES)  # adds house-llm at 1.00 / 2.00
    stats = ingest(cli, tmp_path, REPRICE_RECORDS, before_config)
    assert stats["unpriced"] == 4  # house-llm has no price yet; r-reported has its own cost
    assert ledger_costs(engine)["r-reported"] == (Decimal("0.5"), None, "reported")

    result = json.loads(ok(cli("reprice", "--from", "2026-10-29", "--to", "2026-10-31", "--format", "json",
                               config=after_config)).stdout)

    # r-first, r-reported (its computed cost is now known), r-steady and r-last are in range;
    # r-steady's price did not change.
    assert result["examined"] == 4
    assert result["changed"] == 3
    assert Decimal(result["cost_before_usd"]) == Decimal("0.5005")
    assert Decimal(result["cost_after_usd"]) == Decimal("0.5065")
    assert ledger_costs(engine) == {
        "r-before": (None, None, "unpriced"),
        "r-first": (Decimal("0.002"), Decimal("0.002"), "priced"),
        "r-reported": (Decimal("0.5"), Decimal("0.002"), "reported"),
        "r-steady": (Decimal("0.0005"), Decimal("0.0005"), "priced"),
        "r-last": (Decimal("0.004"), Decimal("0.004"), "priced"),
        "r-after": (None, None, "unpriced"),
    }


def test_reprice_twice_changes_nothing_the_second_time(cli, tmp_path, engine):
    before_config = write_config(tmp_path / "before.toml", ONLY_MINI)
    after_config = write_config(tmp_path / "after.toml", PRICES)
    ingest(cli, tmp_path, REPRICE_RECORDS, before_config)
    args = ("reprice", "--from", "2026-10-29", "--to", "2026-10-31", "--format", "json")
    ok(cli(*args, config=after_config))
    costs = ledger_costs(engine)

    again = json.loads(ok(cli(*args, config=after_config)).stdout)

    assert (again["examined"], again["changed"]) == (4, 0)
    assert again["cost_before_usd"] == again["cost_after_usd"]
    assert ledger_costs(engine) == costs


def test_usage_after_reprice_reports_the_new_costs(cli, tmp_path):
    before_config = write_config(tmp_path / "before.toml", ONLY_MINI)
    after_config = write_config(tmp_path / "after.toml", PRICES)
    ingest(cli, tmp_path, REPRICE_RECORDS, before_config)
    before = keyed(usage_json(cli, "2026-10-29", "2026-10-31", "model", after_config), "model")
    assert before["house-llm"]["unpriced_requests"] == 2

    ok(cli("reprice", "--from", "2026-10-29", "--to", "2026-10-31", config=after_config))

    after = keyed(usage_json(cli, "2026-10-29", "2026-10-31", "model", after_config), "model")
    assert after["house-llm"]["unpriced_requests"] == 0
    assert after["house-llm"]["cost_usd"] == "0.5060000000"
    assert after["house-mini"]["cost_usd"] == "0.0005000000"
