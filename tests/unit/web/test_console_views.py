"""The console's pure pieces: chart geometry, paging parameters, the usage CSV, the filters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from web.pages.render import ago, query, url
from web.views.chart import daily_bars
from web.views.paging import MAX_PAGE, clamp
from web.views.usage import UsageQuery, to_csv


def test_the_chart_has_a_bar_for_every_day_and_zero_for_days_without_cost() -> None:
    first, last = date(2026, 11, 2), date(2026, 12, 1)
    chart = daily_bars({date(2026, 11, 30): (Decimal("3.2"), 0), last: (Decimal("1.6"), 4)}, first, last)
    assert len(chart.bars) == 30 and [b.day for b in chart.bars][0] == first
    assert chart.total == Decimal("4.8") and not chart.empty
    assert [t.label for t in chart.ticks] == ["$0.0000", "$1.25", "$2.50", "$3.75", "$5.00"]  # axis up to 5
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.day == date(2026, 11, 30) and tallest.y + tallest.height == chart.baseline
    assert chart.bars[-1].unpriced == 4 and chart.bars[-1].label == "1"
    assert sum(b.height for b in chart.bars[:-2]) == 0


def test_a_chart_of_no_cost_is_empty_and_draws_no_axis() -> None:
    chart = daily_bars({}, date(2026, 11, 2), date(2026, 12, 1))
    assert chart.empty and chart.ticks == [] and chart.total == 0


def test_page_parameters_are_clamped() -> None:
    assert clamp("3") == (3, 50)
    assert clamp("-2", "0") == (1, 1)
    assert clamp("x", "100000") == (1, MAX_PAGE)


def test_the_usage_csv_neutralises_formulas_and_keeps_numbers() -> None:
    rows = [{"account_id": "=HYPERLINK(\"http://x\")", "requests": 2, "errors": 0, "timeouts": 0, "prompt_tokens": 10,
             "completion_tokens": 5, "total_tokens": 15, "cost_usd": "-0.5000000000", "unpriced_requests": 0},
            {"account_id": None, "requests": 1, "errors": 0, "timeouts": 0, "prompt_tokens": 1, "completion_tokens": 1,
             "total_tokens": 2, "cost_usd": "0.0000000000", "unpriced_requests": 1}]
    text = to_csv(rows, UsageQuery(date(2026, 11, 1), date(2026, 11, 30), "account"))
    lines = text.splitlines()
    assert lines[0] == "account_id,requests,errors,timeouts,prompt_tokens,completion_tokens,total_tokens,cost_usd,unpriced_requests"
    assert lines[1].startswith("\"'=HYPERLINK(\"\"http://x\"\")\",2,") and lines[1].endswith(",-0.5000000000,0")
    assert lines[2].startswith(",1,")


def test_times_read_as_how_long_ago_or_how_soon() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert ago(now - timedelta(seconds=42), now) == "42 s ago"
    assert ago(now - timedelta(hours=5, minutes=3), now) == "5 h ago"
    assert ago(now + timedelta(days=2, hours=1), now) == "in 2 d"
    assert ago(None, now) == "never"


def test_links_keep_the_other_parameters_and_drop_empty_ones() -> None:
    assert query({"by": "model", "from": "2026-11-01", "page": "2"}, page=3) == "?by=model&from=2026-11-01&page=3"
    assert query({"state": ""}) == "?"
    assert url("/usage", {"by": "account", "from": "2026-11-25", "to": None}) == "/usage?by=account&from=2026-11-25"
    assert url("/alerts") == "/alerts"
