"""Daily and monthly summaries against the ledger, on SQLite and PostgreSQL.

Time is frozen through ``worker.clock.now()`` (freezegun); the summaries job is
called directly (``run_job``) rather than through the scheduler thread.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, update

from tests.helpers import PRICES, ingest, record, utc
from worker.ledger import dirty_days
from worker.summaries import aggregate, recompute as summaries, usage, verify
from worker.models import Base, DailySummary, MonthlySummary, SummaryCorrection, SummaryDay
from worker.registry import registry
from worker.scheduler import run_job
from worker.settings import Settings

MEASURES = aggregate.MEASURES
KEYS = aggregate.KEYS


# --------------------------------------------------------------------------- helpers


def config(tz: str = "UTC", extra: str = "") -> str:
    return f'timezone = "{tz}"\n{extra}\n{PRICES}'


def local_noon(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(12), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def run_summaries(settings: Settings, engine: Engine, job: str = "summaries", **options: Any) -> dict[str, Any]:
    run = run_job(registry.get(job), settings, engine, **options)
    assert run is not None and run.status == "success", (run.error if run else None)
    return run.stats


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def dirty(engine: Engine) -> dict[date, int]:
    with engine.connect() as conn:
        return dirty_days.dirty_days(conn)


def summary_days(engine: Engine) -> dict[date, tuple[datetime, bool]]:
    with engine.connect() as conn:
        return {r.day: (r.computed_at, r.final) for r in conn.execute(select(SummaryDay))}


def daily_rows(engine: Engine, day: date | None = None) -> list[Any]:
    query = select(DailySummary)
    if day is not None:
        query = query.where(DailySummary.day == day)
    with engine.connect() as conn:
        return conn.execute(query).all()


def day_requests(engine: Engine) -> dict[date, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(DailySummary.day, func.sum(DailySummary.requests))
                            .group_by(DailySummary.day)).all()
    return {d: int(n) for d, n in rows if n}


def corrections(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(SummaryCorrection).order_by(SummaryCorrection.id)).all()


def keyed(rows: list[usage.UsageRow]) -> dict[str | None, usage.UsageRow]:
    out = {r.key: r for r in rows}
    assert len(out) == len(rows), rows
    return out


def assert_usage_equals_ledger(engine: Engine, tz: ZoneInfo, first: date, last: date) -> None:
    with engine.connect() as conn:
        for by in usage.GROUPS:
            from_summaries = keyed(usage.usage(conn, tz, first, last, by))
            from_ledger = keyed(usage.usage_from_ledger(conn, tz, first, last, by))
            assert from_summaries == from_ledger, (by, first, last)


def assert_months_are_sums_of_days(engine: Engine) -> None:
    expected: dict[tuple, dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(DailySummary)):
            key = (row.day.replace(day=1), *(getattr(row, k) for k in KEYS))
            acc = expected.setdefault(key, {m: (None if m in ("latency_min", "latency_max") else 0)
                                            for m in MEASURES})
            for m in MEASURES:
                value = getattr(row, m)
                if m == "latency_min":
                    acc[m] = value if acc[m] is None else (acc[m] if value is None else min(acc[m], value))
                elif m == "latency_max":
                    acc[m] = value if acc[m] is None else (acc[m] if value is None else max(acc[m], value))
                else:
                    acc[m] += value
        monthly = {(row.month, *(getattr(row, k) for k in KEYS)): {m: getattr(row, m) for m in MEASURES}
                   for row in conn.execute(select(MonthlySummary))}
        monthly_rows = conn.execute(select(func.count()).select_from(MonthlySummary)).scalar_one()
    assert monthly_rows == len(monthly)  # one row per month and key
    assert monthly == expected


# --------------------------------------------------------------------------- the property

# (time zone, its autumn DST change day: 25 hours)
DST_CASES = [("Europe/Berlin", date(2026, 10, 25)), ("America/New_York", date(2026, 11, 1))]


def event_strategy(tz: ZoneInfo, dst_day: date) -> st.SearchStrategy[dict[str, Any]]:
    """Events spread over the local days around the DST change, with their edges over-represented."""
    window_start = datetime.combine(dst_day - timedelta(days=2), time.min, tzinfo=tz).astimezone(UTC)
    window_end = datetime.combine(dst_day + timedelta(days=2), time.min, tzinfo=tz).astimezone(UTC)
    seconds = int((window_end - window_start).total_seconds())
    edges = []
    for offset in range(-2, 3):
        edge = datetime.combine(dst_day + timedelta(days=offset), time.min, tzinfo=tz).astimezone(UTC)
        for delta in (-1, 0, 1):
            at = edge + timedelta(seconds=delta)
            if window_start <= at < window_end:
                edges.append(int((at - window_start).total_seconds()))
    # the hour that happens twice on the DST day, and UTC midnights
    edges += [int((datetime.combine(dst_day, time(h), tzinfo=UTC) - window_start).total_seconds())
              for h in range(0, 24, 3)
              if window_start <= datetime.combine(dst_day, time(h), tzinfo=UTC) < window_end]
    when = st.one_of(st.integers(0, seconds - 1), st.sampled_from(edges))
    return st.builds(
        lambda offset, model, account, tenant, service, status, prompt, completion, cached, reasoning,
        latency, cost: record(window_start + timedelta(seconds=offset), model=model, account=account,
                              tenant=tenant, service=service, status=status, prompt=prompt,
                              completion=completion, cached=min(cached, prompt) if cached is not None else None,
                              reasoning=reasoning, latency=latency, cost=cost),
        when,
        st.sampled_from(["house-llm", "house-mini", "my-private-model"]),
        st.sampled_from(["a1", "a2", "a3"]),
        st.sampled_from([None, "t1", "t2"]),
        st.sampled_from([None, "chat", "search"]),
        st.sampled_from(["success", "success", "error", "timeout"]),
        st.integers(0, 50_000),
        st.integers(0, 20_000),
        st.one_of(st.none(), st.integers(0, 5_000)),
        st.one_of(st.none(), st.integers(0, 3_000)),
        st.one_of(st.none(), st.integers(0, 120_000)),
        st.one_of(st.none(), st.none(), st.decimals(min_value=0, max_value=5, places=6,
                                                   allow_nan=False, allow_infinity=False).map(str)),
    )


@pytest.mark.parametrize(("tz_name", "dst_day"), DST_CASES)
@hsettings(max_examples=12, deadline=None, derandomize=True, database=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_summaries_and_usage_always_agree_with_the_ledger(engine, make_settings, tmp_path, tz_name, dst_day,
                                                          data):
    tz = ZoneInfo(tz_name)
    settings = make_settings(config(tz_name))
    events = event_strategy(tz, dst_day)
    first_batch = data.draw(st.lists(events, min_size=1, max_size=40), label="first batch")
    late_batch = data.draw(st.lists(events, max_size=12), label="late batch")
    clear(engine)
    ranges = [(dst_day - timedelta(days=3), dst_day + timedelta(days=3)), (dst_day, dst_day),
              (dst_day - timedelta(days=1), dst_day + timedelta(days=1))]
    everything = ranges[0]

    def local_day(rec: dict[str, Any]) -> date:
        return utc(rec["timestamp"]).astimezone(tz).date()

    with freeze_time("2026-12-15T12:00:00Z"):  # every day in the window is final
        ingest(settings, engine, tmp_path, first_batch)
        stats = run_summaries(settings, engine)
        assert stats["corrections"] == 0  # a first build is never a correction
        assert dirty(engine) == {}
        computed_first = set(summary_days(engine))
        assert {local_day(r) for r in first_batch} <= computed_first
        assert verify.verify(engine, settings, *everything) == []
        for first, last in ranges:
            assert_usage_equals_ledger(engine, tz, first, last)

        # Late data: its days are dirty, usage() takes them from the ledger until the job runs.
        if late_batch:
            ingest(settings, engine, tmp_path, late_batch)
            assert {local_day(r) for r in late_batch} <= set(dirty(engine))
        for first, last in ranges:
            assert_usage_equals_ledger(engine, tz, first, last)

        stats = run_summaries(settings, engine)
        changed_final_days = {local_day(r) for r in late_batch} & computed_first
        assert stats["corrections"] == len(changed_final_days)
        assert {c.day for c in corrections(engine)} == changed_final_days
        assert dirty(engine) == {}
        assert verify.verify(engine, settings, *everything) == []
        for first, last in ranges:
            assert_usage_equals_ledger(engine, tz, first, last)
        assert_months_are_sums_of_days(engine)

    # The local day of every event, worked out here with zoneinfo, is the day it is summed under.
    expected = Counter(local_day(r) for r in first_batch + late_batch)
    assert day_requests(engine) == dict(expected)


# --------------------------------------------------------------------------- DST days


@pytest.mark.parametrize(("tz_name", "day", "hours"), [
    ("Europe/Berlin", date(2026, 10, 25), 25),
    ("Europe/Berlin", date(2026, 3, 29), 23),
    ("America/New_York", date(2026, 11, 1), 25),
    ("America/New_York", date(2026, 3, 8), 23),
])
def test_a_dst_day_of_23_or_25_hours_is_summarised_as_one_local_day(engine, make_settings, tmp_path, tz_name,
                                                                     day, hours):
    tz = ZoneInfo(tz_name)
    settings = make_settings(config(tz_name))
    start = datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    assert end - start == timedelta(hours=hours)
    inside = [record(start + timedelta(hours=h, minutes=30)) for h in range(hours)]
    inside += [record(start), record(end - timedelta(seconds=1))]
    outside = [record(start - timedelta(seconds=1)), record(end)]

    with freeze_time("2027-01-10T00:00:00Z"):
        ingest(settings, engine, tmp_path, inside + outside)
        run_summaries(settings, engine)

    assert day_requests(engine) == {day - timedelta(days=1): 1, day: hours + 2, day + timedelta(days=1): 1}
    with engine.connect() as conn:
        for rows in (usage.usage(conn, tz, day, day, "day"), usage.usage_from_ledger(conn, tz, day, day, "day")):
            assert [(r.key, r.requests) for r in rows] == [(day.isoformat(), hours + 2)]
    assert verify.verify(engine, settings, day - timedelta(days=1), day + timedelta(days=1)) == []


# --------------------------------------------------------------------------- incremental


def test_the_job_recomputes_only_the_marked_days_and_clears_their_marks(engine, make_settings, tmp_path):
    tz = "Europe/Berlin"
    settings = make_settings(config(tz))
    days = [date(2026, 10, 19) + timedelta(days=i) for i in range(5)]  # 19th..23rd, all CEST
    t1, t2 = utc("2026-11-01T08:00:00Z"), utc("2026-11-02T09:00:00Z")
    with freeze_time(t1):
        ingest(settings, engine, tmp_path, [record(local_noon(d, tz)) for d in days])
        first = run_summaries(settings, engine)
    built = summary_days(engine)
    assert set(days) <= set(built)
    assert dirty(engine) == {}
    assert first["months"] == 1

    with freeze_time(t2):
        ingest(settings, engine, tmp_path, [record(local_noon(days[1], tz), prompt=7)])
        marked = set(dirty(engine))
        assert marked == {days[1]}  # exactly the local day touched
        stats = run_summaries(settings, engine)

    assert stats == {"days": len(marked), "months": 1, "corrections": 1}  # only days[1] changed
    assert dirty(engine) == {}
    after = summary_days(engine)
    for day, (computed_at, _final) in after.items():
        assert computed_at == (t2 if day in marked else t1), day
    for row in daily_rows(engine):
        assert row.computed_at == (t2 if row.day in marked else t1), row.day
    with engine.connect() as conn:
        assert {r.computed_at for r in conn.execute(select(MonthlySummary))} == {t2}
    assert day_requests(engine)[days[1]] == 2
    assert verify.verify(engine, settings, days[0], days[-1]) == []


@pytest.mark.parametrize("tz_name, hour, expected", [
    ("Europe/Berlin", "2026-11-20T22:00:00Z", {date(2026, 11, 20)}),   # 23:00-23:59 local
    ("Europe/Berlin", "2026-11-20T23:00:00Z", {date(2026, 11, 21)}),   # 00:00-00:59 local
    ("America/New_York", "2026-11-01T05:00:00Z", {date(2026, 11, 1)}),  # the repeated 01:00 hour
    ("Asia/Kolkata", "2026-11-20T18:00:00Z", {date(2026, 11, 20), date(2026, 11, 21)}),  # 23:30-00:29
    ("Asia/Kathmandu", "2026-11-20T17:00:00Z", {date(2026, 11, 20)}),  # 22:45-23:44
])
def test_ingest_marks_the_local_days_of_the_utc_hours_it_touched(tz_name, hour, expected):
    marked = dirty_days.local_days_of_utc_hours({dirty_days.utc_hour(utc(hour) + timedelta(minutes=17))},
                                               ZoneInfo(tz_name))
    assert marked == expected


def test_running_the_job_with_nothing_marked_recomputes_nothing(engine, make_settings, tmp_path):
    settings = make_settings(config())
    with freeze_time("2026-11-01T08:00:00Z"):
        ingest(settings, engine, tmp_path, [record(utc("2026-10-20T12:00:00Z"))])
        run_summaries(settings, engine)
    before = summary_days(engine)
    with freeze_time("2026-11-01T09:00:00Z"):
        assert run_summaries(settings, engine) == {"days": 0, "months": 0, "corrections": 0}
    assert summary_days(engine) == before


def test_a_day_marked_again_while_it_is_recomputed_keeps_its_mark(engine, make_settings, tmp_path):
    settings = make_settings(config())
    day = date(2026, 10, 20)
    with freeze_time("2026-11-01T08:00:00Z"):
        ingest(settings, engine, tmp_path, [record(utc("2026-10-20T12:00:00Z"))])
        read = dirty(engine)  # what the job read before recomputing
        assert read == {day: 1}
        # Meanwhile more data lands for the same day: its generation goes up.
        ingest(settings, engine, tmp_path, [record(utc("2026-10-20T13:00:00Z"))])
        assert dirty(engine) == {day: 2}
        stats = summaries._recompute(engine, settings, dict(read))
        assert stats.days == 1
        assert dirty(engine) == {day: 2}  # the newer mark survives the stale recompute
        with engine.connect() as conn:  # and usage() still takes the day from the ledger
            rows = usage.usage(conn, settings.tz, day, day, "day")
        assert [(r.key, r.requests) for r in rows] == [(day.isoformat(), 2)]

        # The next run clears it.
        run_summaries(settings, engine)
    assert dirty(engine) == {}
    assert day_requests(engine) == {day: 2}


def _ingest_during_recompute(monkeypatch, settings: Settings, engine: Engine, tmp_path: Path,
                             late: list[dict[str, Any]]) -> list[date]:
    """Let another connection commit new events after a day's rows were inserted and before its
    transaction ends: data that lands while the day is being recomputed."""
    original = summaries.recompute_day
    seen: list[date] = []

    def recompute_then_ingest(conn, day, settings_, now):
        result = original(conn, day, settings_, now)
        if not seen:
            seen.append(day)
            ingest(settings, engine, tmp_path, late)
        return result

    monkeypatch.setattr(summaries, "recompute_day", recompute_then_ingest)
    return seen


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize("how", ["marked day (summaries job)", "unmarked day (rebuild, nightly)"])
def test_data_committed_while_a_day_is_recomputed_is_never_lost(engine, make_settings, tmp_path, monkeypatch,
                                                                 how):
    """PostgreSQL only: SQLite's single writer cannot commit inside another write transaction."""
    settings = make_settings(config())
    day = date(2026, 10, 20)
    with freeze_time("2026-11-01T08:00:00Z"):
        ingest(settings, engine, tmp_path, [record(utc("2026-10-20T12:00:00Z"))])
        if how.startswith("unmarked"):
            run_summaries(settings, engine)
            assert dirty(engine) == {}
        seen = _ingest_during_recompute(monkeypatch, settings, engine, tmp_path,
                                        [record(utc("2026-10-20T13:00:00Z"))])
        if how.startswith("marked"):
            summaries.run_dirty(engine, settings)
        else:
            summaries.rebuild(engine, settings, day, day)
        monkeypatch.undo()
        assert seen == [day]
        # The late event is in the ledger; either the day is still marked or its summary has it.
        with engine.connect() as conn:
            rows = usage.usage(conn, settings.tz, day, day, "day")
        assert [(r.key, r.requests) for r in rows] == [(day.isoformat(), 2)]
        assert day in dirty(engine) or verify.verify(engine, settings, day, day) == []


# --------------------------------------------------------------------------- provisional / final


SETTLE_1H = "[summaries]\nsettle_hours = 1\n"


def test_late_data_on_a_final_day_is_recorded_as_exactly_one_correction(engine, make_settings, tmp_path):
    tz = "Europe/Berlin"
    settings = make_settings(config(tz, SETTLE_1H))
    day = date(2026, 9, 10)
    t1, t2 = utc("2026-09-20T08:00:00Z"), utc("2026-09-25T08:00:00Z")
    with freeze_time(t1):
        ingest(settings, engine, tmp_path, [
            record(local_noon(day, tz), prompt=1000, completion=500),  # 0.002
            record(local_noon(day, tz) + timedelta(hours=1), status="error", prompt=1000, completion=0),  # 0.001
        ])
        assert run_summaries(settings, engine)["corrections"] == 0
    assert summary_days(engine)[day] == (t1, True)
    assert corrections(engine) == []

    with freeze_time(t2):
        # A late, unpriced event for the final day.
        ingest(settings, engine, tmp_path, [record(local_noon(day, tz) + timedelta(hours=2),
                                                   model="my-private-model", prompt=300, completion=100)])
        stats = run_summaries(settings, engine)
        assert stats["corrections"] == 1
        assert run_summaries(settings, engine)["corrections"] == 0  # nothing new: nothing recorded
        rebuilt = run_summaries(settings, engine, job="summaries_nightly", date_from=day - timedelta(days=1),
                                date_to=day + timedelta(days=1))
        assert rebuilt["corrections"] == 0  # recomputing an unchanged final day is not a correction

    (corr,) = corrections(engine)
    assert corr.day == day
    assert corr.detected_at == t2
    assert corr.before == {"requests": 2, "errors": 1, "timeouts": 0, "total_tokens": 2500,
                           "cost_usd": "0.0030000000", "unpriced_requests": 0}
    assert corr.after == {"requests": 3, "errors": 1, "timeouts": 0, "total_tokens": 2900,
                          "cost_usd": "0.0030000000", "unpriced_requests": 1}
    assert corr.changed == {"requests": 1, "total_tokens": 400, "unpriced_requests": 1}
    assert summary_days(engine)[day][1] is True


def test_a_correction_of_cost_records_the_signed_difference_as_a_decimal(engine, make_settings, tmp_path):
    settings = make_settings(config("UTC", SETTLE_1H))
    day = date(2026, 9, 10)
    with freeze_time("2026-09-20T08:00:00Z"):
        ingest(settings, engine, tmp_path, [record(utc("2026-09-10T12:00:00Z"), cost="0.25")])
        run_summaries(settings, engine)
    with freeze_time("2026-09-21T08:00:00Z"):
        ingest(settings, engine, tmp_path, [record(utc("2026-09-10T13:00:00Z"), cost="0.0000000001",
                                                   prompt=0, completion=0)])
        assert run_summaries(settings, engine)["corrections"] == 1
    (corr,) = corrections(engine)
    assert corr.day == day
    assert corr.changed == {"requests": 1, "cost_usd": "+0.0000000001"}
    assert Decimal(corr.after["cost_usd"]) - Decimal(corr.before["cost_usd"]) == Decimal("1e-10")


def test_the_first_build_of_an_old_day_is_not_a_correction(engine, make_settings, tmp_path):
    settings = make_settings(config("Europe/Berlin", SETTLE_1H))
    day = date(2026, 3, 3)
    with freeze_time("2026-11-01T08:00:00Z"):  # months after the day: final at once
        ingest(settings, engine, tmp_path, [record(local_noon(day, "Europe/Berlin"))])
        assert run_summaries(settings, engine)["corrections"] == 0
    assert summary_days(engine)[day][1] is True
    assert corrections(engine) == []
    assert day_requests(engine) == {day: 1}


def test_changes_to_a_provisional_day_are_not_corrections_until_it_is_final(engine, make_settings, tmp_path):
    tz = "Europe/Berlin"
    settings = make_settings(config(tz))  # settle_hours defaults to 48
    day = date(2026, 9, 10)
    day_end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(tz)).astimezone(UTC)

    with freeze_time(day_end + timedelta(minutes=30)):
        ingest(settings, engine, tmp_path, [record(local_noon(day, tz))])
        run_summaries(settings, engine)
    assert summary_days(engine)[day][1] is False

    with freeze_time(day_end + timedelta(hours=47)):  # still within the settle period
        ingest(settings, engine, tmp_path, [record(local_noon(day, tz) + timedelta(minutes=5))])
        assert run_summaries(settings, engine)["corrections"] == 0
    assert summary_days(engine)[day][1] is False
    assert corrections(engine) == []
    assert day_requests(engine)[day] == 2

    with freeze_time(day_end + timedelta(hours=48)):  # settled: the nightly sweep makes it final
        run_summaries(settings, engine, job="summaries_nightly")
    assert summary_days(engine)[day][1] is True
    assert corrections(engine) == []

    with freeze_time(day_end + timedelta(hours=72)):  # now a change is a correction
        ingest(settings, engine, tmp_path, [record(local_noon(day, tz) + timedelta(minutes=10))])
        assert run_summaries(settings, engine)["corrections"] == 1
    assert [c.day for c in corrections(engine)] == [day]


# --------------------------------------------------------------------------- months


def test_monthly_rows_are_the_sums_of_their_local_days(engine, make_settings, tmp_path):
    tz = "Europe/Berlin"
    settings = make_settings(config(tz))
    records = [
        record(utc("2026-10-30T10:00:00Z"), latency=100),
        record(utc("2026-10-30T11:00:00Z"), latency=None, model="house-mini", cached=200),
        record(utc("2026-10-31T22:59:59Z"), latency=900, status="timeout"),  # 23:59:59 CET: October
        record(utc("2026-10-31T23:00:00Z"), latency=50),  # 00:00 CET on 1 November: November
        record(utc("2026-11-01T12:00:00Z"), latency=70, model="my-private-model", tenant=None, service=None),
        record(utc("2026-11-02T12:00:00Z"), latency=None, model="my-private-model", cost="1.5"),
        record(utc("2026-11-02T13:00:00Z"), latency=30, status="error", account="a2", reasoning=40),
    ]
    with freeze_time("2026-11-20T00:00:00Z"):
        ingest(settings, engine, tmp_path, records)
        stats = run_summaries(settings, engine)
    assert stats["months"] == 2
    assert_months_are_sums_of_days(engine)
    with engine.connect() as conn:
        per_month = dict(conn.execute(select(MonthlySummary.month, func.sum(MonthlySummary.requests))
                                      .group_by(MonthlySummary.month)).all())
        october = conn.execute(select(MonthlySummary).where(
            MonthlySummary.month == date(2026, 10, 1), MonthlySummary.model == "house-llm",
            MonthlySummary.status == "success")).one()
    assert {m: int(n) for m, n in per_month.items()} == {date(2026, 10, 1): 3, date(2026, 11, 1): 4}
    assert (october.requests, october.latency_count, october.latency_sum, october.latency_min,
            october.latency_max) == (1, 1, 100, 100, 100)

    # A late event changes one day: its month is recomputed and still adds up.
    with freeze_time("2026-11-21T00:00:00Z"):
        ingest(settings, engine, tmp_path, [record(utc("2026-10-30T12:00:00Z"), latency=5)])
        assert run_summaries(settings, engine)["months"] >= 1
    assert_months_are_sums_of_days(engine)
    with engine.connect() as conn:
        row = conn.execute(select(MonthlySummary).where(
            MonthlySummary.month == date(2026, 10, 1), MonthlySummary.model == "house-llm",
            MonthlySummary.status == "success")).one()
    assert (row.requests, row.latency_min, row.latency_max) == (2, 5, 100)


# --------------------------------------------------------------------------- nightly


def test_the_nightly_job_recomputes_the_last_n_local_days_whatever_was_marked(engine, make_settings, tmp_path):
    tz = "Europe/Berlin"
    settings = make_settings(config(tz, "[summaries]\nnightly_days = 2\n"))
    days = [date(2026, 9, 16), date(2026, 9, 17), date(2026, 9, 18), date(2026, 9, 19)]
    with freeze_time("2026-09-20T00:30:00Z"):  # 02:30 local on the 20th
        ingest(settings, engine, tmp_path, [record(local_noon(d, tz)) for d in days])
        run_summaries(settings, engine)
        with engine.begin() as conn:  # drift the summaries of an old and a recent day
            conn.execute(update(DailySummary).where(DailySummary.day.in_([days[0], days[3]]))
                         .values(requests=DailySummary.requests + 10))
        stats = run_summaries(settings, engine, job="summaries_nightly", trigger="schedule",
                              scheduled_for=utc("2026-09-20T00:30:00Z"))
    # (the 19th is still provisional: repairing it is not a correction)
    assert stats == {"from": "2026-09-18", "to": "2026-09-20", "days": 3, "months": 1, "corrections": 0}
    differences = verify.verify(engine, settings, days[0], days[-1])
    assert {d["day"] for d in differences} == {days[0].isoformat()}  # outside the last 2 days: untouched


# --------------------------------------------------------------------------- CLI verify / rebuild


def test_summaries_verify_exits_1_on_a_tampered_row_and_rebuild_repairs_it(cli, engine, tmp_path):
    cfg = tmp_path / "summaries.toml"
    cfg.write_text(config("Europe/Berlin"), encoding="utf-8")
    log = tmp_path / "usage.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in [
        record(utc("2026-10-24T10:00:00Z")),
        record(utc("2026-10-25T10:00:00Z"), model="house-mini", account="a2"),
        record(utc("2026-10-25T23:30:00Z"), model="my-private-model"),  # 26th, local
    ]), encoding="utf-8")
    assert cli("ingest", log, "--format", "json", config=cfg).exit_code == 0
    ran = cli("jobs", "run", "summaries", "--format", "json", config=cfg)
    assert ran.exit_code == 0, ran.output

    clean = cli("summaries", "verify", "--from", "2026-10-24", "--to", "2026-10-26", config=cfg)
    assert clean.exit_code == 0, clean.output
    assert "summaries match the ledger" in clean.output
    assert cli("summaries", "verify", config=cfg).exit_code == 0  # the ledger's own range

    with engine.begin() as conn:
        conn.execute(update(DailySummary).where(DailySummary.day == date(2026, 10, 25))
                     .values(requests=DailySummary.requests + 5))
        conn.execute(DailySummary.__table__.delete().where(DailySummary.day == date(2026, 10, 26)))

    broken = cli("summaries", "verify", "--from", "2026-10-24", "--to", "2026-10-26", "--format", "json",
                 config=cfg)
    assert broken.exit_code == 1, broken.output
    report = json.loads(broken.stdout)
    assert report["ok"] is False
    by_day = defaultdict(list)
    for diff in report["differences"]:
        by_day[diff["day"]].append(diff)
    assert set(by_day) == {"2026-10-25", "2026-10-26"}
    (tampered,) = by_day["2026-10-25"]
    assert tampered["summary"]["requests"] == tampered["ledger"]["requests"] + 5
    assert tampered["key"]["account_id"] == "a2"
    (missing,) = by_day["2026-10-26"]
    assert missing["summary"] is None and missing["ledger"]["requests"] == 1
    assert cli("summaries", "verify", "--from", "2026-10-24", "--to", "2026-10-24",
               config=cfg).exit_code == 0  # a range without the damage is fine
    assert cli("summaries", "verify", "--from", "2026-10-24", "--to", "2026-10-26",
               config=cfg).exit_code == 1  # table output too

    rebuilt = cli("summaries", "rebuild", "--from", "2026-10-25", "--to", "2026-10-26", "--format", "json",
                  config=cfg)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["days"] == 2
    fixed = cli("summaries", "verify", "--from", "2026-10-24", "--to", "2026-10-26", config=cfg)
    assert fixed.exit_code == 0, fixed.output
    assert_months_are_sums_of_days(engine)


def test_summaries_rebuild_of_an_empty_ledger_does_nothing(cli):
    result = cli("summaries", "rebuild", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"days": 0, "months": 0, "corrections": 0}
    assert cli("summaries", "verify").exit_code == 0
