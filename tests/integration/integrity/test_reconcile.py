"""Reconciliation against the providers' usage APIs, served by a real HTTP server on loopback."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from tests.helpers import alert_sentence, record, utc
from worker.integrity import reconcile
from worker.ingest.ingestor import Ingestor
from worker.models import Alert, JobRun, Reconciliation
from worker.settings import SettingsError, load

KEY = "sk-admin-test-secret"
NOW = "2026-11-23T08:00:00Z"
DAY1, DAY2 = date(2026, 11, 20), date(2026, 11, 21)


@pytest.fixture
def settings_for(db_url: str, tmp_path: Path):
    def factory(httpserver, extra: str = "", providers: tuple[str, ...] = ("openai",)):
        tables = "".join(f'[reconcile.{p}]\nbase_url = "{httpserver.url_for("")}"\n' for p in providers)
        path = tmp_path / "settings.toml"
        path.write_text(f"[reconcile]\nmax_retries = 1\nbackoff_seconds = 0.01\n{extra}\n{tables}", encoding="utf-8")
        env = {"TOKENTALLY_DATABASE_URL": db_url,
               **{f"TOKENTALLY_RECONCILE_{p.upper()}_API_KEY": KEY for p in providers}}
        return load(path, env=env), path, env
    return factory


def ledger(settings, engine, tmp_path: Path, calls: list[tuple[date, str, int, int, int, str]],
           provider: str = "openai", service_tier: str | None = None, project_id: str | None = None) -> None:
    """calls: (day, model, requests, prompt tokens each, completion tokens each, cost each)."""
    records = []
    for day, model, n, prompt, completion, cost in calls:
        at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)
        for i in range(n):
            rec = record(at + timedelta(seconds=i), model=model, prompt=prompt, completion=completion, cost=cost)
            rec["provider"] = provider
            if service_tier:
                rec["service_tier"] = service_tier
            if project_id:
                rec["project_id"] = project_id
            records.append(rec)
    path = tmp_path / f"ledger-{len(list(tmp_path.glob('ledger-*')))}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert Ingestor(settings, engine).ingest_paths([path]).accepted == len(records)


def _unix(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp())


def openai_usage(rows: dict[date, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"object": "page", "has_more": False, "next_page": None, "data": [
        {"object": "bucket", "start_time": _unix(d), "end_time": _unix(d + timedelta(days=1)),
         "results": [{"object": "organization.usage.completions.result", "input_cached_tokens": 0,
                      "input_audio_tokens": 0, "output_audio_tokens": 0, "project_id": None, "user_id": None,
                      "api_key_id": None, "batch": None, **r} for r in results]}
        for d, results in sorted(rows.items())]}


def openai_costs(costs: dict[date, str]) -> dict[str, Any]:
    return {"object": "page", "has_more": False, "next_page": None, "data": [
        {"object": "bucket", "start_time": _unix(d), "end_time": _unix(d + timedelta(days=1)),
         "results": [{"object": "organization.costs.result", "amount": {"value": float(v), "currency": "usd"},
                      "line_item": None, "project_id": None}]} for d, v in sorted(costs.items())]}


def serve_openai(httpserver, usage: dict[date, list[dict[str, Any]]], costs: dict[date, str]) -> None:
    httpserver.expect_request("/v1/organization/usage/completions",
                              headers={"Authorization": f"Bearer {KEY}"}).respond_with_json(openai_usage(usage))
    httpserver.expect_request("/v1/organization/costs").respond_with_json(openai_costs(costs))


def mini(requests: int, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"model": "gpt-4o-mini-2024-07-18", "num_model_requests": requests, "input_tokens": input_tokens,
            "output_tokens": output_tokens}


CALLS = [(DAY1, "gpt-4o-mini", 40, 1000, 200, "0.0100"), (DAY2, "gpt-4o-mini", 60, 1000, 200, "0.0100")]


@freeze_time(NOW)
def test_matching_provider_figures_reconcile_without_alerts(settings_for, engine, tmp_path, httpserver) -> None:
    settings, _, _ = settings_for(httpserver)
    ledger(settings, engine, tmp_path, CALLS)
    serve_openai(httpserver, {DAY1: [mini(40, 40_000, 8_000)], DAY2: [mini(60, 60_000, 12_000)]},
                 {DAY1: "0.40", DAY2: "0.60"})
    result = reconcile.run(engine, settings, "openai", DAY1, DAY2, utc(NOW))
    assert result.counts() == {"ok": 4, "unlogged": 0, "overcount": 0, "mixed": 0}
    with engine.connect() as conn:
        rows = conn.execute(select(Reconciliation).order_by(Reconciliation.day, Reconciliation.model)).all()
        assert conn.execute(select(Alert)).all() == []
    assert [(r.day, r.model, r.status) for r in rows] == [(DAY1, "(day)", "ok"), (DAY1, "gpt-4o-mini", "ok"),
                                                          (DAY2, "(day)", "ok"), (DAY2, "gpt-4o-mini", "ok")]
    day2 = rows[3]
    assert (day2.provider_requests, day2.ledger_requests, day2.provider_input_tokens, day2.ledger_input_tokens) == \
        (60, 60, 60_000, 60_000)
    assert rows[2].provider_cost_usd == Decimal("0.6") and rows[2].ledger_cost_usd == Decimal("0.6")
    assert rows[3].detail["provider_models"] == ["gpt-4o-mini-2024-07-18"]


@freeze_time(NOW)
def test_with_project_ids_each_project_is_compared_with_the_ledgers_events_of_that_project(
        settings_for, engine, tmp_path, httpserver) -> None:
    """OpenAI's usage API groups by ``project_id`` when asked (``group_by=project_id``,
    https://platform.openai.com/docs/api-reference/usage/completions); the ledger keeps each
    event's project, so a project whose calls never reached the books is named."""
    settings, _, _ = settings_for(httpserver, providers=())
    path = settings.config_path
    path.write_text(path.read_text() + f'[reconcile.openai]\nbase_url = "{httpserver.url_for("")}"\n'
                    'project_ids = ["proj_a", "proj_b"]\n', encoding="utf-8")
    settings = load(path, env={"TOKENTALLY_DATABASE_URL": str(engine.url.render_as_string(hide_password=False)),
                               "TOKENTALLY_RECONCILE_OPENAI_API_KEY": KEY})
    ledger(settings, engine, tmp_path, [(DAY1, "gpt-4o-mini", 10, 1000, 200, "0.0100")], project_id="proj_a")
    ledger(settings, engine, tmp_path, [(DAY1, "gpt-4o-mini", 10, 1000, 200, "0.0100")], project_id="proj_b")
    ledger(settings, engine, tmp_path, [(DAY1, "gpt-4o-mini", 50, 1000, 200, "0.0100")], project_id="proj_c")
    serve_openai(httpserver, {DAY1: [{**mini(10, 10_000, 2_000), "project_id": "proj_a"},
                                     {**mini(30, 30_000, 6_000), "project_id": "proj_b"}]}, {DAY1: "0.40"})
    reconcile.run(engine, settings, "openai", DAY1, DAY1, utc(NOW))
    with engine.connect() as conn:
        rows = {r.model: r for r in conn.execute(select(Reconciliation).where(Reconciliation.day == DAY1))}
    assert rows["gpt-4o-mini [proj_a]"].status == "ok"
    b = rows["gpt-4o-mini [proj_b]"]
    assert (b.status, b.provider_requests, b.ledger_requests) == ("unlogged", 30, 10)
    assert not any("proj_c" in name for name in rows)  # only the configured projects are compared


def test_the_provider_showing_more_raises_unlogged_calls_and_a_fixed_day_resolves(settings_for, engine, tmp_path,
                                                                                  httpserver) -> None:
    settings, _, _ = settings_for(httpserver)
    with freeze_time(NOW):
        ledger(settings, engine, tmp_path, CALLS)
        serve_openai(httpserver, {DAY1: [mini(40, 40_000, 8_000)], DAY2: [mini(85, 85_000, 17_000)]},
                     {DAY1: "0.40", DAY2: "0.85"})
        result = reconcile.run(engine, settings, "openai", DAY1, DAY2, utc(NOW))
    assert result.counts()["unlogged"] == 2 and result.alerts["raised"] == 1
    with engine.connect() as conn:
        alert = conn.execute(select(Alert)).one()
    assert (alert.kind, alert.scope, alert.scope_id, alert.period) == \
        ("integrity.unlogged_calls", "provider", "openai", "2026-11-21")
    measures = {(e["model"], e["measure"]): (e["provider"], e["ledger"]) for e in alert.payload["examples"]}
    assert measures == {("gpt-4o-mini", "requests"): ("85", "60"), ("gpt-4o-mini", "input_tokens"): ("85000", "60000"),
                        ("gpt-4o-mini", "output_tokens"): ("17000", "12000"), ("(day)", "cost_usd"): ("0.85", "0.6000000000")}
    assert "calls were made and not logged" in alert_sentence(alert)

    with freeze_time(NOW):  # the integrity job over the same days leaves the provider's alert alone
        from worker.integrity import run as integrity

        with engine.begin() as conn:
            found = integrity.run_checks(conn, settings, utc(NOW), DAY1, DAY2)
            assert integrity.apply(conn, settings, utc(NOW), DAY1, DAY2, found).alerts_resolved == 0
            assert conn.execute(select(Alert.state).where(Alert.scope == "provider")).scalar() == "open"

    with freeze_time(NOW):  # the daily report of the 21st shows it
        from reports.messages import make_message
        from reports import archive, periods

        archived = archive.archive(engine, replace(settings, reports=replace(settings.reports,
                                                                             archive_dir=str(tmp_path / "ar"))),
                                   periods.period_containing("daily", DAY2))
    [summary] = archived.report["reconciliation"]
    assert (summary["provider"], summary["days"], summary["provider_cost_usd"], summary["ledger_cost_usd"]) == \
        ("openai", 1, "0.8500", "0.6000")
    assert [f["model"] for f in summary["flagged"]] == ["(day)", "gpt-4o-mini"]
    html = (archived.directory / "report.html").read_text(encoding="utf-8")
    assert "Provider reconciliation" in html and "theirs 85000, ours 60000" in html
    text = make_message("report", {"report": archived.report, "chart_cid": "chart", "report_url": None,
                                   "channel": "email", "target": "admins@example.com"},
                        kind="report.daily", key="k", data={}).text
    assert "openai: 1 days, tokens theirs 102,000 / ours 72,000" in text

    with freeze_time("2026-11-23T09:00:00Z"):  # the missing 25 calls were ingested late
        ledger(settings, engine, tmp_path, [(DAY2, "gpt-4o-mini", 25, 1000, 200, "0.0100")])
        httpserver.clear()
        serve_openai(httpserver, {DAY1: [mini(40, 40_000, 8_000)], DAY2: [mini(85, 85_000, 17_000)]},
                     {DAY1: "0.40", DAY2: "0.85"})
        again = reconcile.run(engine, settings, "openai", DAY1, DAY2, utc("2026-11-23T09:00:00Z"))
    assert again.counts()["ok"] == 4 and again.alerts["resolved"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(Alert.state).where(Alert.scope == "provider")).scalar() == "resolved"
        assert conn.execute(select(Reconciliation)).all().__len__() == 4  # replaced, not added


@freeze_time(NOW)
def test_the_ledger_showing_more_is_an_overcount_and_small_differences_are_tolerated(settings_for, engine, tmp_path,
                                                                                     httpserver) -> None:
    settings, _, _ = settings_for(httpserver)
    ledger(settings, engine, tmp_path, [*CALLS, (DAY1, "gpt-4o", 20, 2000, 500, "0.0100")])
    # gpt-4o is not in the provider's figures at all; day 2 differs by 1 request and 1000 tokens: tolerated
    serve_openai(httpserver, {DAY1: [mini(40, 40_000, 8_000)], DAY2: [mini(61, 61_000, 12_200)]},
                 {DAY1: "0.40", DAY2: "0.60"})
    result = reconcile.run(engine, settings, "openai", DAY1, DAY2, utc(NOW))
    by_key = {(r["day"], r["model"]): r["status"] for r in result.rows}
    assert by_key == {(DAY1, "gpt-4o"): "overcount", (DAY1, "gpt-4o-mini"): "ok", (DAY1, "(day)"): "overcount",
                      (DAY2, "gpt-4o-mini"): "ok", (DAY2, "(day)"): "ok"}
    with engine.connect() as conn:
        alert = conn.execute(select(Alert)).one()
    assert (alert.kind, alert.period) == ("integrity.overcount", "2026-11-20")
    assert {(e["model"], e["measure"]) for e in alert.payload["examples"]} == {
        ("gpt-4o", "requests"), ("gpt-4o", "input_tokens"), ("gpt-4o", "output_tokens"), ("(day)", "cost_usd")}


@freeze_time(NOW)
def test_anthropic_input_includes_cache_and_costs_compare_per_model_without_requests(settings_for, engine, tmp_path,
                                                                                     httpserver) -> None:
    settings, _, _ = settings_for(httpserver, providers=("anthropic",))
    ledger(settings, engine, tmp_path, [(DAY1, "claude-sonnet-4", 10, 3000, 400, "0.0150")], provider="anthropic")
    httpserver.expect_request("/v1/organizations/usage_report/messages",
                              headers={"x-api-key": KEY}).respond_with_json({
        "has_more": False, "next_page": None, "data": [{
            "starting_at": "2026-11-20T00:00:00Z", "ending_at": "2026-11-21T00:00:00Z", "results": [{
                "model": "claude-sonnet-4-20250514", "uncached_input_tokens": 10_000, "cache_read_input_tokens": 15_000,
                "cache_creation": {"ephemeral_5m_input_tokens": 3_000, "ephemeral_1h_input_tokens": 2_000},
                "output_tokens": 4_000, "server_tool_use": {"web_search_requests": 0}, "api_key_id": None,
                "workspace_id": None, "service_tier": "standard", "context_window": "0-200k"}]}]})
    httpserver.expect_request("/v1/organizations/cost_report").respond_with_json({
        "has_more": False, "next_page": None, "data": [{
            "starting_at": "2026-11-20T00:00:00Z", "ending_at": "2026-11-21T00:00:00Z", "results": [{
                "currency": "USD", "amount": "15.00", "workspace_id": None, "description": "Claude Sonnet 4 Usage",
                "cost_type": "tokens", "context_window": "0-200k", "model": "claude-sonnet-4-20250514",
                "service_tier": "standard", "token_type": "uncached_input_tokens"}]}]})
    result = reconcile.run(engine, settings, "anthropic", DAY1, DAY1, utc(NOW))
    [row] = result.rows
    assert row["model"] == "claude-sonnet-4" and row["status"] == "ok", row
    assert (row["provider_requests"], row["provider_input_tokens"], row["provider_cost_usd"]) == \
        (None, 30_000, Decimal("0.15"))


def test_a_refused_key_is_a_clear_error_that_stores_nothing(settings_for, engine, tmp_path, httpserver, cli) -> None:
    _, path, env = settings_for(httpserver)
    httpserver.expect_request("/v1/organization/usage/completions").respond_with_json(
        {"error": {"message": "Invalid authorization header", "type": "invalid_request_error"}}, status=401)
    with freeze_time(NOW):
        result = cli("reconcile", "--provider", "openai", "--from", "2026-11-20", "--to", "2026-11-21",
                     config=path, env=env)
    assert result.exit_code == 3
    assert "openai" in result.output and "401" in result.output and KEY not in result.output
    with engine.connect() as conn:
        assert conn.execute(select(Reconciliation)).all() == []


def test_the_reconcile_cli_prints_the_comparison_and_exits_1_on_a_difference(settings_for, engine, tmp_path,
                                                                           httpserver, cli) -> None:
    settings, path, env = settings_for(httpserver)
    with freeze_time(NOW):
        ledger(settings, engine, tmp_path, CALLS)
        serve_openai(httpserver, {DAY1: [mini(40, 40_000, 8_000)], DAY2: [mini(85, 85_000, 17_000)]},
                     {DAY1: "0.40", DAY2: "0.85"})
        result = cli("reconcile", "--provider", "openai", "--from", "2026-11-20", "--to", "2026-11-21",
                     "--format", "json", config=path, env=env)
        listed = cli("reconciliations", "list", "--format", "json", config=path, env=env)
        unknown = cli("reconcile", "--provider", "anthropic", config=path, env=env)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["unlogged"] == 2 and report["ok"] == 2 and report["alerts"]["raised"] == 1
    assert len(json.loads(listed.stdout)) == 4
    assert unknown.exit_code == 2 and "reconcile.anthropic: not configured" in unknown.output


def test_the_reconcile_job_goes_on_past_a_failing_provider_and_records_the_failure(settings_for, engine, tmp_path,
                                                                                  httpserver, cli) -> None:
    settings, path, env = settings_for(httpserver, providers=("openai", "openrouter"))
    with freeze_time(NOW):
        ledger(settings, engine, tmp_path, CALLS)
        serve_openai(httpserver, {DAY1: [mini(40, 40_000, 8_000)], DAY2: [mini(60, 60_000, 12_000)]},
                     {DAY1: "0.40", DAY2: "0.60"})
        httpserver.expect_request("/api/v1/activity").respond_with_data("upstream down", status=503)
        result = cli("jobs", "run", "reconcile", "--from", "2026-11-20", "--to", "2026-11-21", config=path, env=env)
    assert result.exit_code != 0
    with engine.connect() as conn:
        run = conn.execute(select(JobRun).where(JobRun.job == "reconcile")).one()
        stored = conn.execute(select(Reconciliation.provider)).scalars().all()
        failed = conn.execute(select(Alert).where(Alert.kind == "job.failed")).one()
    assert run.status == "failed" and "openrouter" in run.error and "503" in run.error
    assert run.stats["providers"]["openai"]["ok"] == 4
    assert set(stored) == {"openai"}
    assert failed.scope_id == "reconcile" and KEY not in json.dumps(failed.payload)


def test_model_names_compare_without_date_suffixes() -> None:
    assert reconcile.model_key("gpt-4o-mini-2024-07-18") == "gpt-4o-mini"
    assert reconcile.model_key("claude-sonnet-4-20250514") == "claude-sonnet-4"
    assert reconcile.model_key("GPT-4-0613") == "gpt-4"
    assert reconcile.model_key("claude-3-5-sonnet-latest") == "claude-3-5-sonnet"
    assert reconcile.model_key("openai/gpt-4.1") == "openai/gpt-4.1"
    assert reconcile.model_key("models/gemini-1.5-pro-002") == "gemini-1.5-pro-002"


def test_an_enabled_provider_without_its_key_fails_at_start_naming_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[reconcile.openai]\nenabled = true\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="reconcile.openai.api_key: required; set TOKENTALLY_RECONCILE_OPENAI_API_KEY"):
        load(path, env={})
    path.write_text("[reconcile.openai]\napi_key = \"sk\"\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="secrets are not read from the settings file"):
        load(path, env={})
    path.write_text("[reconcile.mistral]\nenabled = true\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="reconcile.mistral: no such provider"):
        load(path, env={})
    path.write_text("[reconcile.openai]\nenabled = false\n", encoding="utf-8")
    assert load(path, env={}).reconcile.providers == {}


def anthropic_reports(httpserver, usage: list[dict[str, Any]], costs: list[dict[str, Any]]) -> None:
    """Shaped after Anthropic's documented reports (https://platform.claude.com/docs/en/api/admin/cost_report,
    https://docs.claude.com/en/api/admin-api/usage-cost/get-messages-usage-report), one bucket on DAY1."""
    bucket = {"starting_at": "2026-11-20T00:00:00Z", "ending_at": "2026-11-21T00:00:00Z"}
    httpserver.expect_request("/v1/organizations/usage_report/messages").respond_with_json(
        {"has_more": False, "next_page": None, "data": [{**bucket, "results": [{
            "model": "claude-sonnet-4-20250514", "cache_read_input_tokens": 0, "output_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "server_tool_use": {"web_search_requests": 0}, "api_key_id": None, "workspace_id": None,
            "service_tier": "standard", "context_window": "0-200k", **u} for u in usage]}]})
    httpserver.expect_request("/v1/organizations/cost_report").respond_with_json(
        {"has_more": False, "next_page": None, "data": [{**bucket, "results": [{
            "currency": "USD", "workspace_id": None, "description": "Claude Sonnet 4 Usage", "cost_type": "tokens",
            "context_window": "0-200k", "model": "claude-sonnet-4-20250514", "service_tier": "standard",
            "token_type": "uncached_input_tokens", **c} for c in costs]}]})


@freeze_time(NOW)
def test_openai_usage_without_a_model_is_compared_per_day_and_never_fails_the_run(settings_for, engine, tmp_path,
                                                                                  httpserver) -> None:
    """OpenAI's documented example of GET /v1/organization/usage/completions answers ``"model": null``
    (https://developers.openai.com/api/reference/resources/organization/subresources/usage/methods/get_completions/;
    the example at https://share.apidog.com/apidoc/docs-site/370474/api-12401171)."""
    settings, _, _ = settings_for(httpserver)
    ledger(settings, engine, tmp_path, CALLS)
    serve_openai(httpserver, {DAY1: [{**mini(40, 40_000, 8_000), "model": None}],
                              DAY2: [{**mini(60, 90_000, 12_000), "model": None}]},
                 {DAY1: "0.40", DAY2: "0.60"})

    result = reconcile.run(engine, settings, "openai", DAY1, DAY2, utc(NOW))

    assert [(r["day"], r["model"], r["status"]) for r in result.rows] == \
        [(DAY1, "(day)", "ok"), (DAY2, "(day)", "unlogged")]
    day2 = result.rows[1]
    assert (day2["provider_input_tokens"], day2["ledger_input_tokens"]) == (90_000, 60_000)
    assert [x["measure"] for x in day2["detail"]["differences"]] == ["input_tokens"]
    assert "named no model" in day2["detail"]["compared_per_day"]
    assert day2["detail"]["ledger_models"] == ["gpt-4o-mini"]


@freeze_time(NOW)
@pytest.mark.parametrize("where", ["usage report", "ledger"])
def test_priority_tier_cost_missing_from_anthropics_cost_report_is_not_an_overcount(settings_for, engine, tmp_path,
                                                                                    httpserver, where) -> None:
    """Anthropic: "Priority Tier costs are not available in the cost endpoint"; priority usage
    shows in the usage report's ``service_tier`` (https://docs.anthropic.com/en/api/usage-cost-api)."""
    settings, _, _ = settings_for(httpserver, providers=("anthropic",))
    ledger(settings, engine, tmp_path, [(DAY1, "claude-sonnet-4", 10, 3000, 400, "0.0150")], provider="anthropic",
           service_tier="priority" if where == "ledger" else None)
    usage = [{"uncached_input_tokens": 10_000, "output_tokens": 1_000},
             {"uncached_input_tokens": 20_000, "output_tokens": 3_000,
              "service_tier": "priority" if where == "usage report" else "standard"}]
    anthropic_reports(httpserver, usage, [{"amount": "5.00"}])  # $0.05 of the ledger's $0.15

    result = reconcile.run(engine, settings, "anthropic", DAY1, DAY1, utc(NOW))

    [row] = result.rows
    assert (row["model"], row["status"], row["provider_cost_usd"]) == ("claude-sonnet-4", "ok", None), row
    assert "Priority Tier" in row["detail"]["cost_not_compared"]
    assert result.alerts["raised"] == 0
    with engine.connect() as conn:
        assert conn.execute(select(Alert)).all() == []


@freeze_time(NOW)
def test_anthropics_web_search_and_code_execution_costs_are_reconciled_per_day(settings_for, engine, tmp_path,
                                                                                httpserver) -> None:
    """Cost report results with ``cost_type`` "web_search" or "code_execution" have no model
    (https://platform.claude.com/docs/en/api/admin/cost_report)."""
    settings, _, _ = settings_for(httpserver, providers=("anthropic",))
    ledger(settings, engine, tmp_path, [(DAY1, "claude-sonnet-4", 10, 3000, 400, "0.0150")], provider="anthropic")
    anthropic_reports(httpserver, [{"uncached_input_tokens": 30_000, "output_tokens": 4_000}], [
        {"amount": "15.00"},
        {"amount": "1000", "cost_type": "web_search", "model": None, "description": "Web search usage",
         "token_type": None, "context_window": None, "service_tier": None},
        {"amount": "250", "cost_type": "code_execution", "model": None, "description": "Code Execution Usage",
         "token_type": None, "context_window": None, "service_tier": None}])

    result = reconcile.run(engine, settings, "anthropic", DAY1, DAY1, utc(NOW))

    model_row, day_row = result.rows
    assert (model_row["model"], model_row["status"], model_row["provider_cost_usd"]) == \
        ("claude-sonnet-4", "ok", Decimal("0.15"))
    assert (day_row["model"], day_row["status"]) == ("(day)", "unlogged")
    assert (day_row["provider_cost_usd"], day_row["ledger_cost_usd"]) == (Decimal("12.65"), Decimal("0.15"))
    assert day_row["detail"]["other_costs"] == {"code_execution": "2.50", "web_search": "10.00"}
    with engine.connect() as conn:
        [summary] = reconcile.summary(conn, DAY1, DAY1)
    assert (summary["provider_cost_usd"], summary["ledger_cost_usd"]) == ("12.6500", "0.1500")
