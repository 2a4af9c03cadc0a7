"""The report's presentation: chart PNG, email (subject, text, HTML), Slack and archive page."""

from __future__ import annotations

import json
import random
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from reports.chart import daily_cost_png, report_chart_png
from reports.messages import make_message, mrkdwn, render
from tests.unit.reports.test_render import slack_texts

HOSTILE_MODEL = "<script>alert(1)</script>"
HOSTILE_ACCOUNT = "*bold* <@U123>"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLACES = Decimal("0.0000000001")


def _amount(value: Decimal) -> str:
    return str(value.quantize(PLACES))


def _fraction(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.0001")))


def _change(now: Decimal, before: Decimal) -> str | None:
    return None if before == 0 else _fraction((now - before) / before)


def sample_report(*, kind: str = "daily", hostile: bool = False, status: str = "provisional",
                  tenant: str | None = None) -> dict[str, Any]:
    """A realistic report context as worker/report.py builds it: 30 days of history, 6 models,
    20 accounts (one warned, one blocked), a correction, a system budget warning.
    ``hostile``: a model name and an account id that try to inject HTML and Slack mrkdwn."""
    rng = random.Random(20261122)
    last = date(2026, 11, 22)
    length = {"daily": 1, "weekly": 7, "monthly": 22}[kind]  # monthly: November so far
    first = last - timedelta(days=length - 1)
    label = {"daily": "2026-11-22", "weekly": "2026-W47", "monthly": "2026-11"}[kind]
    previous = {"daily": ("2026-11-21", "2026-11-21", "2026-11-21"),
                "weekly": ("2026-W46", "2026-11-09", "2026-11-15"),
                "monthly": ("2026-10", "2026-10-01", "2026-10-31")}[kind]

    daily = []
    for i in range(30):
        day = last - timedelta(days=29 - i)
        weekend = day.weekday() >= 5
        cost = Decimal(rng.randint(900, 2400) if not weekend else rng.randint(200, 600)) / 100
        cost += Decimal(i) / 5  # growing usage
        requests = int(cost * 130) + rng.randint(0, 90)
        daily.append({"day": day.isoformat(), "requests": requests, "cost_usd": _amount(cost),
                      "in_period": first <= day <= last})
    in_period = [d for d in daily if d["in_period"]]
    cost = sum((Decimal(d["cost_usd"]) for d in in_period), Decimal(0))
    requests = sum(d["requests"] for d in in_period)
    previous_cost = (cost * Decimal("0.81")).quantize(PLACES)
    previous_requests = int(requests * 0.9)

    def totals(cost: Decimal, requests: int) -> dict[str, Any]:
        errors, timeouts = requests // 80, requests // 400
        prompt, completion = requests * 1630, requests * 412
        return {"requests": requests, "errors": errors, "timeouts": timeouts,
                "success_rate": _fraction(Decimal(requests - errors - timeouts) / requests),
                "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "cost_usd": _amount(cost), "unpriced_requests": 3}

    current, before = totals(cost, requests), totals(previous_cost, previous_requests)

    def breakdown(keys: list[str], weights: list[int]) -> list[dict[str, Any]]:
        rows, total_weight = [], sum(weights)
        for key, weight in zip(keys, weights):
            share = Decimal(weight) / total_weight
            reqs = int(requests * share)
            rows.append({"key": key, "requests": reqs, "total_tokens": reqs * 2042,
                         "cost_usd": _amount(cost * share), "share": _fraction(share)})
        return sorted(rows, key=lambda r: Decimal(r["cost_usd"]), reverse=True)

    models = ["gpt-4o", HOSTILE_MODEL if hostile else "claude-3-5-sonnet-20241022", "gpt-4o-mini",
              "llama-3.1-70b-versatile", "gemini-1.5-flash", "text-embedding-3-small"]
    accounts = []
    for n in range(20):
        share = Decimal(rng.randint(5, 100)) / 1000
        reqs = int(requests * share)
        accounts.append({"account_id": f"user-{n * 37 % 1000:04d}", "tenant_id": f"tenant-{n % 3 + 1:02d}",
                         "tier": ["student", "staff", "research", "admin"][n % 4], "state": "ok",
                         "requests": reqs, "total_tokens": reqs * 2042, "cost_usd": _amount(cost * share)})
    accounts.sort(key=lambda a: Decimal(a["cost_usd"]), reverse=True)
    accounts[0]["state"], accounts[0]["tier"] = "blocked", "student"
    accounts[2]["state"] = "warned"
    if hostile:
        accounts[2]["account_id"] = HOSTILE_ACCOUNT  # the warned one: in every section that names accounts
    window = "day" if kind == "daily" else "month"
    period_of_window = "2026-11-22" if window == "day" else "2026-11"

    return {
        "kind": kind,
        "title": f"{kind.capitalize()} LLM cost report: {label}",
        "period": {"label": label, "first": first.isoformat(), "last": last.isoformat(),
                   "timezone": "Europe/Berlin"},
        "previous": {"label": previous[0], "first": previous[1], "last": previous[2]},
        "tenant": tenant,
        "generated_at": "2026-11-23T08:00:01+00:00",
        "cutoff": "2026-11-23T08:00:00+00:00",
        "status": status,
        "totals": current,
        "previous_totals": before,
        "change": {"requests": _change(Decimal(requests), Decimal(previous_requests)),
                   "total_tokens": _change(Decimal(current["total_tokens"]), Decimal(before["total_tokens"])),
                   "cost_usd": _change(cost, previous_cost)},
        "by_model": breakdown(models, [38, 27, 14, 9, 7, 5]),
        "by_provider": breakdown(["openai", "anthropic", "groq", "google"], [55, 27, 11, 7]),
        "by_service": breakdown(["draft_generator", "tutor_chat", "grading", "search"], [46, 31, 15, 8]),
        "by_tenant": [] if tenant else breakdown(["tenant-01", "tenant-02", "tenant-03"], [52, 33, 15]),
        "top_accounts": accounts,
        "budget": {
            "warned": [{"account_id": accounts[2]["account_id"], "tier": accounts[2]["tier"], "window": window,
                        "period": period_of_window, "state": "warned"}],
            "blocked": [{"account_id": accounts[0]["account_id"], "tier": "student", "window": window,
                         "period": period_of_window, "state": "blocked"}],
            "system": {"severity": "warning", "cost_usd": _amount(cost),
                       "thresholds": {"warning": "10", "critical": "50", "emergency": "200"},
                       "kill_switch": False},
        },
        "quality": {"open_rejects": 3, "rejects_in_period": 2, "unattributed_requests": 7,
                    "unattributed_cost_usd": "0.0100000000", "unpriced_requests": 3,
                    "unpriced_models": ["house-llm"], "open_integrity_alerts": 0,
                    "corrections": [{"day": "2026-11-20", "changes": {"cost_usd": ["21.0400000000", "21.2650000000"],
                                                                      "requests": [2801, 2830]}}]},
        "reconciliation": [
            {"provider": "openai", "days": 1, "provider_tokens": 102000, "ledger_tokens": 72000,
             "provider_cost_usd": "0.8500", "ledger_cost_usd": "0.6000", "checked_at": "2026-11-23T07:00:00+00:00",
             "flagged": [{"day": "2026-11-22", "model": "gpt-4o-mini", "status": "unlogged",
                          "differences": [{"measure": "requests", "provider": "85", "ledger": "60",
                                           "direction": "unlogged"}]}]},
        ],
        "freshness": [
            {"source": "inbox", "newest_event_at": "2026-11-23T07:59:00+00:00",
             "last_ingest_at": "2026-11-23T07:59:30+00:00"},
            {"source": "app-db", "newest_event_at": "2026-11-23T07:41:12+00:00",
             "last_ingest_at": "2026-11-23T07:59:02+00:00"},
            {"source": "archive-csv", "newest_event_at": None, "last_ingest_at": None},
        ],
        "daily_cost": daily,
        "build": {"ledger_rows": 1843211, "settings_hash": "ab12cd34ef56", "version": 1},
    }


def report_context(report: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {"report": report, "chart_cid": "chart", "chart_data_uri": "data:image/png;base64,iVBORw0KGgo=",
            "report_url": "https://reports.example.com/2026-11-22.html", "channel": "email",
            "target": "admins@example.com", **overrides}


def report_message(report: dict[str, Any], **overrides: Any):  # type: ignore[no-untyped-def]
    return make_message("report", report_context(report, **overrides), kind=f"report.{report['kind']}",
                        key=f"report:{report['kind']}:{report['period']['label']}")


@pytest.mark.parametrize("kind", ["daily", "weekly", "monthly"])
def test_the_subject_names_the_period_and_the_total_cost(kind: str):
    report = sample_report(kind=kind, status="final")
    subject = report_message(report).subject
    assert subject.startswith("[tokentally] ")
    assert report["period"]["label"] in subject
    assert "$" + f"{Decimal(report['totals']['cost_usd']):,.2f}" in subject
    assert "provisional" not in subject
    assert "provisional" in report_message(sample_report(kind=kind)).subject


def test_amounts_below_a_cent_keep_their_digits_in_subject_text_html_and_slack():
    report = sample_report()
    report["totals"]["cost_usd"] = "0.0042000000"
    report["quality"]["unattributed_cost_usd"] = "0.0031000000"
    message = report_message(report)
    assert "$0.0042" in message.subject and "$0.00 " not in message.subject
    assert "Total cost:    $0.0042" in message.text
    assert "$0.0042" in message.html and "$0.0042" in json.dumps(message.slack)
    assert "without an account ($0.0031)" in json.dumps(message.slack)


def test_the_text_part_has_the_headline_figures():
    report = sample_report()
    text = report_message(report).text
    totals = report["totals"]
    assert report["title"] in text and "[PROVISIONAL]" in text
    assert f"Total cost:    ${Decimal(totals['cost_usd']):,.2f}" in text
    assert f"{totals['requests']:,}" in text and f"{totals['total_tokens']:,}" in text
    assert "98.50%" in text  # success rate
    assert "▲ 23.5% vs" in text  # change of cost against the previous period
    assert "user-0222 (student, day 2026-11-22)" in text  # the blocked account
    assert "2026-11-20: cost $21.0400 -> $21.2650; requests 2,801 -> 2,830" in text  # the correction
    assert "https://reports.example.com/2026-11-22.html" in text


def test_hostile_names_are_escaped_in_the_email_html_and_the_archive_page():
    report = sample_report(hostile=True)
    message = report_message(report)
    page = render("report/report.html.j2", report_context(report))
    for html in (message.html, page):
        assert html is not None
        assert "<script" not in html and "<@U123>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "*bold* &lt;@U123&gt;" in html
    assert HOSTILE_MODEL in message.text and HOSTILE_ACCOUNT in message.text  # plain text: literal


def test_the_email_shows_the_chart_by_content_id_and_the_archive_by_data_uri():
    report = sample_report()
    html = report_message(report).html
    page = render("report/report.html.j2", report_context(report))
    assert html is not None and '<img src="cid:chart"' in html and "data:image" not in html
    assert '<img src="data:image/png;base64,iVBORw0KGgo="' in page


def test_the_email_lists_top_rows_and_the_archive_page_every_row_and_the_build():
    report = sample_report()
    html = report_message(report).html or ""
    page = render("report/report.html.j2", report_context(report))
    last_account = report["top_accounts"][-1]["account_id"]
    assert last_account not in html and "10 more in the" in html
    assert last_account in page
    assert all(row["key"] in page for row in report["by_model"])
    assert all(row["day"] in page for row in report["daily_cost"])
    for fact in ("1,843,211", "ab12cd34ef56", "2026-11-23 09:00:01 CET (Europe/Berlin)", "2026-11-23 09:00:00 CET (Europe/Berlin)"):
        assert fact in page


def test_warnings_are_amber_and_blocked_or_critical_red():
    report = sample_report()
    report["budget"]["system"]["severity"] = "critical"
    html = report_message(report).html or ""
    amber, red = "#b54708", "#b42318"
    assert f"color:{red};" in html.split("1 account blocked by budget")[0].rsplit("<div", 1)[1]
    assert f"color:{red};" in html.split("System budget CRITICAL")[0].rsplit("<div", 1)[1]
    assert f"color:{amber};" in html.split("1 account near budget")[0].rsplit("<div", 1)[1]


def test_report_times_are_in_the_reports_time_zone_with_its_name():
    message = report_message(sample_report())
    assert "Generated 2026-11-23 09:00 CET (Europe/Berlin) from data up to 2026-11-23 09:00 CET (Europe/Berlin)." \
        in message.text
    assert "newest event 2026-11-23 08:59 CET " in message.text
    assert "Generated 2026-11-23 09:00 CET (Europe/Berlin)" in (message.html or "")
    assert "Generated 2026-11-23 09:00 CET (Europe/Berlin)" in json.dumps(message.slack, ensure_ascii=False)
    assert " UTC" not in message.text.replace("UTC days", "")  # the reconciliation is about UTC days


def test_unpriced_rows_show_as_unpriced_not_as_zero_in_text_html_and_slack():
    report = sample_report()
    report["by_model"][0].update(key="house-llm", cost_usd="0E-10", unpriced_requests=report["by_model"][0]["requests"])
    report["by_model"][1].update(unpriced_requests=3)
    message = report_message(report)
    [line] = [ln for ln in message.text.splitlines() if "house-llm" in ln and "unpriced" in ln and "$" not in ln]
    assert "$0.0000" not in line
    second = f"{report['by_model'][1]['key']}"
    assert any(second in ln and "+ 3 unpriced" in ln for ln in message.text.splitlines())
    html = message.html or ""
    assert ">unpriced</td>" in html and "+ 3 unpriced</td>" in html
    assert "house-llm · unpriced" in json.dumps(message.slack, ensure_ascii=False)


def test_the_html_email_has_a_phone_layout_that_keeps_cost_and_share_and_drops_secondary_columns():
    html = report_message(sample_report()).html or ""
    head = html.split("</head>")[0]
    assert "@media only screen and (max-width: 480px)" in head and ".tt-card { display: block" in head
    assert html.count('class="tt-card"') == 3  # the three cards stack on a phone
    headers = re.findall(r'<th( class="([^"]+)")?[^>]*>([^<]+)</th>', html)
    hidden = {text for _, cls, text in headers if cls == "tt-wide"}
    kept = {text for _, cls, text in headers if cls != "tt-wide"}
    assert {"Tokens", "Tenant", "Their tokens"} <= hidden
    assert {"Cost", "Share", "Requests", "Account", "Model"} <= kept and not {"Cost", "Share"} & hidden
    assert 'width="640"' in html and "width:100%;max-width:640px;height:auto" in html  # the chart scales down


def test_tier_names_are_not_cut_in_the_text_email():
    report = sample_report()
    report["top_accounts"][1]["tier"] = "research-extended-gpu"
    report["budget"]["warned"][0]["tier"] = "research-extended-gpu"
    text = report_message(report).text
    [line] = [ln for ln in text.splitlines() if report["top_accounts"][1]["account_id"] in ln and "Near" not in ln]
    assert "research-extended-gpu " in line
    header = next(ln for ln in text.splitlines() if ln.strip().startswith("Account"))
    assert header.index("Budget") == line.index(report["top_accounts"][1]["state"].upper())


def test_the_organisation_report_shows_the_configured_thresholds():
    message = report_message(sample_report())
    assert "Thresholds: warning $10.00, critical $50.00, emergency $200.00" in message.text
    assert "warning $10.00 · critical $50.00 · emergency $200.00" in (message.html or "")


def test_a_tenant_report_leaves_the_system_thresholds_out():
    report = sample_report(tenant="tenant-02")
    report["budget"]["system"].update(severity=None, thresholds={})  # as figures.py builds a tenant's report
    message = report_message(report)
    for part in (message.text, message.html or "", json.dumps(message.slack)):
        assert "none set" not in part and "Thresholds" not in part and "System spend" not in part
    assert "Budget" in message.text and "Near budget:" in message.text


def test_a_quiet_report_says_all_is_well_and_renders_without_optional_parts():
    report = sample_report(kind="weekly", status="final", tenant="tenant-02")
    report["budget"].update(warned=[], blocked=[])
    report["budget"]["system"].update(severity=None)
    report["quality"].update(unpriced_requests=0, unpriced_models=[], corrections=[])
    report["change"] = {"requests": None, "total_tokens": None, "cost_usd": None}
    message = report_message(report, report_url=None)
    assert "No budget warnings; all usage priced." in (message.html or "")
    assert "No budget warnings; all usage priced." in message.text
    assert "FINAL" in (message.html or "") and "Full report:" not in message.text
    assert message.slack is not None
    assert not any(block["type"] == "actions" for block in message.slack["blocks"])  # no link without a URL


@pytest.mark.parametrize("hostile", [False, True])
def test_slack_payload_is_block_kit_json_with_values_mrkdwn_escaped(hostile: bool):
    report = sample_report(hostile=hostile)
    payload = report_message(report).slack
    assert payload is not None
    json.dumps(payload)  # plain JSON all the way down
    types = [block["type"] for block in payload["blocks"]]
    assert types[0] == "header" and types[-1] == "actions"
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    texts = slack_texts(payload)
    for text in texts:
        assert "<" not in text and ">" not in text  # no Slack links or mentions smuggled in
    joined = "\n".join(texts)
    assert "$11.69" in joined and "▲ 23.5%" in joined and "gpt-4o" in joined
    if hostile:
        assert mrkdwn(HOSTILE_MODEL) in joined and mrkdwn(HOSTILE_ACCOUNT) in joined
    button = payload["blocks"][-1]["elements"][0]
    assert button["url"] == "https://reports.example.com/2026-11-22.html"


def test_every_template_renders_a_period_without_usage():
    report = sample_report(kind="monthly")
    report["totals"] = {**{key: 0 for key in report["totals"]}, "cost_usd": "0E-10", "success_rate": None}
    report["change"] = {"requests": None, "total_tokens": None, "cost_usd": "-1.0000"}
    for key in ("by_model", "by_provider", "by_service", "by_tenant", "top_accounts", "freshness", "reconciliation"):
        report[key] = []
    message = report_message(report)
    assert "$0.00" in message.subject and "No usage in this period." in (message.html or "")
    assert "No usage in this period." in message.text
    render("report/report.html.j2", report_context(report))


def test_the_chart_is_a_png_and_the_same_bytes_every_time():
    report = sample_report()
    first, second = report_chart_png(report), report_chart_png(report)
    assert first.startswith(PNG_SIGNATURE)
    assert first == second
    assert b"Software" not in first and b"matplotlib" not in first
    other = sample_report(kind="weekly")  # other days highlighted: another image
    assert report_chart_png(other) != first


def test_the_chart_is_640_by_240_pixels():
    png = report_chart_png(sample_report())
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # IHDR
    assert (width, height) == (640, 240)


@pytest.mark.parametrize("points", [[], [(date(2026, 11, 22), Decimal(0)), (date(2026, 11, 21), Decimal(0))]])
def test_a_chart_without_cost_is_still_a_png(points: list[tuple[date, Decimal]]):
    png = daily_cost_png(points, title="Daily cost, USD")
    assert png.startswith(PNG_SIGNATURE)
    assert png == daily_cost_png(points, title="Daily cost, USD")


def test_the_chart_draws_at_most_the_last_30_days():
    last = date(2026, 11, 22)
    points = [(last - timedelta(days=n), Decimal(n + 1)) for n in range(45)]
    assert daily_cost_png(points, title="t") == daily_cost_png(points[:30], title="t")


def hostile_everywhere(report: dict[str, Any], value: str) -> dict[str, Any]:
    """Every free-text field of the report set to ``value`` (names, labels, timestamps,
    correction fields), the amounts left valid."""
    report["title"] = report["tenant"] = value
    report["period"]["timezone"] = report["period"]["label"] = report["previous"]["label"] = value
    report["build"]["settings_hash"] = value
    for key in ("by_model", "by_provider", "by_service", "by_tenant"):
        for row in report[key]:
            row["key"] = value
    for account in report["top_accounts"] + report["budget"]["warned"] + report["budget"]["blocked"]:
        account.update(account_id=value, tier=value, period=value, window=value)
        account.setdefault("tenant_id", value)
    report["quality"]["unpriced_models"] = [value, value]
    report["quality"]["corrections"] = [{"day": value, "changes": {value: [value, value], "cost_usd": ["1", "2"]}}]
    report["freshness"] = [{"source": value, "newest_event_at": value, "last_ingest_at": value + "+00:00"}]
    for provider in report["reconciliation"]:
        provider["provider"] = value
        for flagged in provider["flagged"]:
            flagged.update(day=value, model=value, status=value)
            for d in flagged["differences"]:
                d.update(measure=value, provider=value, ledger=value)
    report["generated_at"] = value
    return report


@pytest.mark.parametrize("value", [HOSTILE_MODEL, HOSTILE_ACCOUNT, "x\" onload=\"alert(1)", "a\nb\tc & <b>"])
def test_no_field_of_the_report_can_inject_html_or_slack_markup(value: str):
    report = hostile_everywhere(sample_report(), value)
    message = report_message(report)
    for html in (message.html or "", render("report/report.html.j2", report_context(report))):
        assert "<script" not in html and "<@U123>" not in html and "<b>" not in html
        assert 'onload="' not in html
    for text in slack_texts(message.slack):
        assert "<" not in text and ">" not in text
    assert len(message.subject.splitlines()) == 1
