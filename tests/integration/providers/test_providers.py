"""The providers' usage/cost clients against a real HTTP server on loopback
(pytest-httpserver) replaying responses shaped like the documented ones.

Waits stay tiny through ``backoff=0.01``; nothing here patches time."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any, Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from werkzeug.datastructures import MultiDict

from tests.helpers import free_port
from worker.providers import PROVIDERS, ProviderConfig, ProviderError, ProviderReport, ProviderUsage, fetch
from worker.providers import anthropic
from worker.providers import http as provider_http

KEY = "sk-admin-SECRETVALUE-0123456789"
AUG1, AUG2 = date(2025, 8, 1), date(2025, 8, 2)
UNIX_AUG1, UNIX_AUG2, UNIX_AUG3 = 1754006400, 1754092800, 1754179200

OPENAI_USAGE = "/v1/organization/usage/completions"
OPENAI_COSTS = "/v1/organization/costs"
ANTHROPIC_USAGE = "/v1/organizations/usage_report/messages"
ANTHROPIC_COSTS = "/v1/organizations/cost_report"
OPENROUTER_ACTIVITY = "/api/v1/activity"
FIRST_PATH = {"openai": OPENAI_USAGE, "anthropic": ANTHROPIC_USAGE, "openrouter": OPENROUTER_ACTIVITY}


@pytest.fixture(autouse=True)
def _every_request_was_expected(httpserver: HTTPServer) -> Iterator[None]:
    yield
    httpserver.check_assertions()


def config(httpserver: HTTPServer, name: str, **changes: Any) -> ProviderConfig:
    fields: dict[str, Any] = {"name": name, "base_url": httpserver.url_for("/").rstrip("/"), "api_key": KEY,
                              "timeout": 5.0, "max_retries": 2, "backoff": 0.01}
    fields.update(changes)
    return ProviderConfig(**fields)


def failure(cfg: ProviderConfig, first: date = AUG1, last: date = AUG2) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        fetch(cfg, first, last)
    assert KEY not in str(info.value)
    return info.value


# --- responses as the providers document them -------------------------------------------------

def openai_usage(model: str, input_tokens: int, output_tokens: int, cached: int, requests: int) -> dict[str, Any]:
    return {"object": "organization.usage.completions.result", "input_tokens": input_tokens,
            "output_tokens": output_tokens, "input_cached_tokens": cached, "num_model_requests": requests,
            "project_id": None, "user_id": None, "api_key_id": None, "model": model, "batch": None,
            "input_audio_tokens": 0, "output_audio_tokens": 0}


def openai_bucket(start: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "bucket", "start_time": start, "end_time": start + 86400, "results": results}


def openai_page(buckets: list[dict[str, Any]], next_page: str | None = None) -> dict[str, Any]:
    return {"object": "page", "data": buckets, "has_more": next_page is not None, "next_page": next_page}


def openai_cost(value: float | str, line_item: str | None = None) -> dict[str, Any]:
    return {"object": "organization.costs.result", "amount": {"value": value, "currency": "usd"},
            "line_item": line_item, "project_id": None}


def anthropic_usage(model: str, uncached: int, reads: int, write_5m: int, write_1h: int,
                    output: int, tier: str = "standard") -> dict[str, Any]:
    return {"api_key_id": None, "workspace_id": None, "model": model, "service_tier": tier,
            "context_window": "0-200k", "uncached_input_tokens": uncached, "cache_read_input_tokens": reads,
            "cache_creation": {"ephemeral_1h_input_tokens": write_1h, "ephemeral_5m_input_tokens": write_5m},
            "output_tokens": output, "server_tool_use": {"web_search_requests": 0}}


def anthropic_cost(cents: str, model: str | None, token_type: str | None, *, cost_type: str = "tokens",
                   workspace_id: str | None = None) -> dict[str, Any]:
    return {"amount": cents, "currency": "USD", "cost_type": cost_type, "model": model,
            "description": f"{model or 'Web search'} usage", "service_tier": "standard" if model else None,
            "token_type": token_type, "context_window": "0-200k" if model else None,
            "workspace_id": workspace_id}


def anthropic_bucket(day: date, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"starting_at": f"{day}T00:00:00Z", "ending_at": f"{day + timedelta(days=1)}T00:00:00Z",
            "results": results}


def anthropic_page(buckets: list[dict[str, Any]], next_page: str | None = None) -> dict[str, Any]:
    return {"data": buckets, "has_more": next_page is not None, "next_page": next_page}


def openrouter_item(day: date, model: str, endpoint: str, usage: float, requests: int, prompt: int,
                    completion: int) -> dict[str, Any]:
    return {"date": day.isoformat(), "model": model, "model_permaslug": f"{model}-2025-04-14",
            "endpoint_id": endpoint, "provider_name": "OpenAI", "usage": usage, "byok_usage_inference": 0,
            "requests": requests, "prompt_tokens": prompt, "completion_tokens": completion,
            "reasoning_tokens": 0}


def openai_empty_costs(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(OPENAI_COSTS).respond_with_json(
        openai_page([openai_bucket(UNIX_AUG1, []), openai_bucket(UNIX_AUG2, [])]))


# --- OpenAI -----------------------------------------------------------------------------------

def test_openai_follows_pages_and_sums_tokens_per_day_and_model(httpserver: HTTPServer) -> None:
    base = [("start_time", str(UNIX_AUG1)), ("end_time", str(UNIX_AUG3)), ("bucket_width", "1d"),
            ("group_by[]", "model"), ("limit", "2")]
    httpserver.expect_ordered_request(OPENAI_USAGE, query_string=MultiDict(base)).respond_with_json(openai_page(
        [openai_bucket(UNIX_AUG1, [openai_usage("gpt-4o-2024-08-06", 1000, 200, 400, 3),
                                   openai_usage("gpt-4o-mini-2024-07-18", 50, 10, 0, 1)])],
        next_page="page_AAAAAGdGxdEiJdKOAAAAAGcqsYA="))
    httpserver.expect_ordered_request(
        OPENAI_USAGE, query_string=MultiDict([*base, ("page", "page_AAAAAGdGxdEiJdKOAAAAAGcqsYA=")]),
    ).respond_with_json(openai_page(
        [openai_bucket(UNIX_AUG2, [openai_usage("gpt-4o-2024-08-06", 300, 30, 100, 2),
                                   openai_usage("gpt-4o-2024-08-06", 700, 70, 0, 5)])]))
    openai_empty_costs(httpserver)

    report = fetch(config(httpserver, "openai"), AUG1, AUG2)

    assert report == ProviderReport(provider="openai", first=AUG1, last=AUG2, usage=[
        ProviderUsage(AUG1, "gpt-4o-2024-08-06", 3, 1000, 200, 400, None),
        ProviderUsage(AUG1, "gpt-4o-mini-2024-07-18", 1, 50, 10, 0, None),
        ProviderUsage(AUG2, "gpt-4o-2024-08-06", 7, 1000, 100, 100, None),
    ], day_costs={AUG1: Decimal(0), AUG2: Decimal(0)}, requests_made=3)


def test_openai_day_costs_come_from_the_costs_api_summed_per_bucket_exactly(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(OPENAI_USAGE).respond_with_json(openai_page([]))
    httpserver.expect_ordered_request(OPENAI_COSTS, query_string=MultiDict([
        ("start_time", str(UNIX_AUG1)), ("end_time", str(UNIX_AUG3)), ("bucket_width", "1d"), ("limit", "2"),
    ])).respond_with_json(openai_page(
        [openai_bucket(UNIX_AUG1, [openai_cost(0.06, "gpt-4o-2024-08-06, input"), openai_cost(0.1)])],
        next_page="cost-page-2"))
    httpserver.expect_ordered_request(OPENAI_COSTS).respond_with_json(openai_page(
        [openai_bucket(UNIX_AUG2, [openai_cost("0.8958740000000000")])]))

    report = fetch(config(httpserver, "openai"), AUG1, AUG2)

    assert report.day_costs == {AUG1: Decimal("0.16"), AUG2: Decimal("0.895874")}
    assert report.usage == [] and report.requests_made == 3


def test_openai_sends_the_admin_key_as_bearer_and_filters_on_project_ids(httpserver: HTTPServer) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    projects = [("project_ids[]", "proj_abc"), ("project_ids[]", "proj_def")]
    common = [("start_time", str(UNIX_AUG1)), ("end_time", str(UNIX_AUG2)), ("bucket_width", "1d"), *projects]
    httpserver.expect_ordered_request(OPENAI_USAGE, headers=headers, query_string=MultiDict(
        [*common, ("group_by[]", "model"), ("group_by[]", "project_id"), ("limit", "1")]),
    ).respond_with_json(openai_page([]))
    httpserver.expect_ordered_request(OPENAI_COSTS, headers=headers, query_string=MultiDict(
        [*common, ("limit", "1")])).respond_with_json(openai_page([]))

    report = fetch(config(httpserver, "openai", project_ids=("proj_abc", "proj_def")), AUG1, AUG1)

    assert report.usage == [] and report.day_costs == {}


def test_openai_a_result_without_a_model_is_kept_unnamed_and_never_fails_the_fetch(httpserver: HTTPServer) -> None:
    """OpenAI's own example response for GET /v1/organization/usage/completions answers
    ``"model": null`` (https://developers.openai.com/api/reference/resources/organization/subresources/usage/methods/get_completions/
    and the example at https://share.apidog.com/apidoc/docs-site/370474/api-12401171:
    input_tokens 1000, output_tokens 500, input_cached_tokens 800, num_model_requests 5)."""
    documented = {**openai_usage("unused", 1000, 500, 800, 5), "model": None}
    httpserver.expect_ordered_request(OPENAI_USAGE).respond_with_json(openai_page([openai_bucket(
        UNIX_AUG1, [documented, openai_usage("gpt-4o-mini-2024-07-18", 50, 10, 0, 1)])]))
    openai_empty_costs(httpserver)

    report = fetch(config(httpserver, "openai"), AUG1, AUG1)

    assert report.usage == [ProviderUsage(AUG1, None, 5, 1000, 500, 800, None),
                            ProviderUsage(AUG1, "gpt-4o-mini-2024-07-18", 1, 50, 10, 0, None)]


def test_openai_input_tokens_already_include_the_cached_ones_and_are_not_added_to(httpserver: HTTPServer) -> None:
    """OpenAI documents ``input_tokens`` as "the aggregated number of text input tokens used,
    including cached tokens", ``input_cached_tokens`` being those cached (the UsageCompletionsResult
    schema, https://docs.rs/openai-client-base/0.12.0/ generated from OpenAI's OpenAPI 2.3.0)."""
    httpserver.expect_ordered_request(OPENAI_USAGE).respond_with_json(openai_page([openai_bucket(
        UNIX_AUG1, [openai_usage("gpt-4o-2024-08-06", 1000, 500, 800, 5)])]))
    openai_empty_costs(httpserver)

    [row] = fetch(config(httpserver, "openai"), AUG1, AUG1).usage

    assert (row.input_tokens, row.cached_tokens) == (1000, 800)


def test_openai_with_projects_groups_by_project_id_and_keeps_each_rows_project(httpserver: HTTPServer) -> None:
    """``group_by`` accepts ``project_id`` beside ``model`` and each result then names its
    ``project_id`` (https://developers.openai.com/api/reference/resources/organization/subresources/usage/methods/get_completions/)."""
    httpserver.expect_ordered_request(OPENAI_USAGE, query_string=MultiDict([
        ("start_time", str(UNIX_AUG1)), ("end_time", str(UNIX_AUG2)), ("bucket_width", "1d"),
        ("project_ids[]", "proj_abc"), ("project_ids[]", "proj_def"), ("group_by[]", "model"),
        ("group_by[]", "project_id"), ("limit", "1"),
    ])).respond_with_json(openai_page([openai_bucket(UNIX_AUG1, [
        {**openai_usage("gpt-4o-2024-08-06", 300, 30, 0, 2), "project_id": "proj_def"},
        {**openai_usage("gpt-4o-2024-08-06", 100, 10, 0, 1), "project_id": "proj_abc"},
        {**openai_usage("gpt-4o-2024-08-06", 5, 1, 0, 1), "project_id": "proj_abc"},
    ])]))
    httpserver.expect_ordered_request(OPENAI_COSTS).respond_with_json(openai_page(
        [openai_bucket(UNIX_AUG1, [{**openai_cost(0.06), "project_id": "proj_abc"}])]))

    report = fetch(config(httpserver, "openai", project_ids=("proj_abc", "proj_def")), AUG1, AUG1)

    assert report.usage == [ProviderUsage(AUG1, "gpt-4o-2024-08-06", 2, 105, 11, 0, None, project="proj_abc"),
                            ProviderUsage(AUG1, "gpt-4o-2024-08-06", 2, 300, 30, 0, None, project="proj_def")]
    assert report.day_costs == {AUG1: Decimal("0.06")}


# --- Anthropic --------------------------------------------------------------------------------

def test_anthropic_input_is_uncached_plus_cache_reads_plus_both_cache_writes(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(ANTHROPIC_USAGE).respond_with_json(anthropic_page([anthropic_bucket(
        AUG1, [anthropic_usage("claude-sonnet-4-20250514", uncached=1500, reads=200, write_5m=500,
                               write_1h=1000, output=500)])]))
    httpserver.expect_ordered_request(ANTHROPIC_COSTS).respond_with_json(anthropic_page([]))

    report = fetch(config(httpserver, "anthropic"), AUG1, AUG1)

    assert report.usage == [ProviderUsage(AUG1, "claude-sonnet-4-20250514", requests=None, input_tokens=3200,
                                          output_tokens=500, cached_tokens=200, cost_usd=None)]


def test_anthropic_follows_pages_and_turns_cost_cents_into_dollars_per_model(httpserver: HTTPServer) -> None:
    sonnet, haiku = "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"
    httpserver.expect_ordered_request(ANTHROPIC_USAGE).respond_with_json(anthropic_page(
        [anthropic_bucket(AUG1, [anthropic_usage(sonnet, 100, 0, 0, 0, 10),
                                 anthropic_usage(haiku, 40, 10, 0, 0, 4)])],
        next_page="page_MjAyNS0wOC0wMlQwMDowMDowMFo="))
    httpserver.expect_ordered_request(ANTHROPIC_USAGE, query_string=MultiDict([
        ("starting_at", "2025-08-01T00:00:00Z"), ("ending_at", "2025-08-03T00:00:00Z"), ("bucket_width", "1d"),
        ("limit", "2"), ("group_by[]", "model"), ("group_by[]", "service_tier"),
        ("page", "page_MjAyNS0wOC0wMlQwMDowMDowMFo="),
    ])).respond_with_json(anthropic_page(
        [anthropic_bucket(AUG2, [anthropic_usage(sonnet, 60, 0, 0, 0, 6, tier="batch"),
                                 anthropic_usage(sonnet, 40, 0, 0, 0, 4)])]))
    httpserver.expect_ordered_request(ANTHROPIC_COSTS, query_string=MultiDict([
        ("starting_at", "2025-08-01T00:00:00Z"), ("ending_at", "2025-08-03T00:00:00Z"), ("bucket_width", "1d"),
        ("limit", "2"), ("group_by[]", "description"),
    ])).respond_with_json(anthropic_page([anthropic_bucket(AUG1, [
        anthropic_cost("123.78912", sonnet, "uncached_input_tokens"),
        anthropic_cost("50", sonnet, "output_tokens"),
        anthropic_cost("1000", None, None, cost_type="web_search"),
    ])], next_page="page_cost_2"))
    httpserver.expect_ordered_request(ANTHROPIC_COSTS).respond_with_json(anthropic_page(
        [anthropic_bucket(AUG2, [anthropic_cost("7.5", sonnet, "output_tokens")])]))

    report = fetch(config(httpserver, "anthropic"), AUG1, AUG2)

    assert report.usage == [
        ProviderUsage(AUG1, haiku, None, 50, 4, 10, None),
        ProviderUsage(AUG1, sonnet, None, 100, 10, 0, Decimal("1.7378912")),
        ProviderUsage(AUG2, sonnet, None, 100, 10, 0, Decimal("0.075")),
    ]
    assert report.day_costs == {AUG1: Decimal("11.7378912"), AUG2: Decimal("0.075")}
    assert report.other_costs == {AUG1: {"web_search": Decimal("10")}}
    assert report.requests_made == 4


def test_anthropic_sends_the_key_and_version_headers_and_filters_on_workspaces(httpserver: HTTPServer) -> None:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    common = [("starting_at", "2025-08-01T00:00:00Z"), ("ending_at", "2025-08-02T00:00:00Z"),
              ("bucket_width", "1d"), ("limit", "1")]
    httpserver.expect_ordered_request(ANTHROPIC_USAGE, headers=headers, query_string=MultiDict(
        [*common, ("group_by[]", "model"), ("group_by[]", "service_tier"), ("group_by[]", "workspace_id"),
         ("workspace_ids[]", "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ")]),
    ).respond_with_json(anthropic_page([]))
    httpserver.expect_ordered_request(ANTHROPIC_COSTS, headers=headers, query_string=MultiDict(
        [*common, ("group_by[]", "description"), ("group_by[]", "workspace_id")]),
    ).respond_with_json(anthropic_page([anthropic_bucket(AUG1, [
        anthropic_cost("200", "claude-sonnet-4-20250514", "output_tokens",
                       workspace_id="wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"),
        anthropic_cost("999", "claude-sonnet-4-20250514", "output_tokens", workspace_id="wrkspc_other"),
        anthropic_cost("999", "claude-sonnet-4-20250514", "output_tokens", workspace_id=None),
    ])]))

    report = fetch(config(httpserver, "anthropic", project_ids=("wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",)), AUG1, AUG1)

    assert report.day_costs == {AUG1: Decimal("2")}


def test_anthropic_priority_tier_usage_says_its_cost_is_missing_from_the_cost_report(httpserver: HTTPServer) -> None:
    """Anthropic's Usage and Cost API guide: Priority Tier costs are not available in the cost
    endpoint; filter or group the usage report by ``service_tier`` and look for ``priority``
    (https://docs.anthropic.com/en/api/usage-cost-api; ``service_tier`` is one of standard,
    batch, priority: https://docs.claude.com/en/api/admin-api/usage-cost/get-messages-usage-report)."""
    sonnet = "claude-sonnet-4-20250514"
    httpserver.expect_ordered_request(ANTHROPIC_USAGE, query_string=MultiDict([
        ("starting_at", "2025-08-01T00:00:00Z"), ("ending_at", "2025-08-02T00:00:00Z"), ("bucket_width", "1d"),
        ("limit", "1"), ("group_by[]", "model"), ("group_by[]", "service_tier"),
    ])).respond_with_json(anthropic_page([anthropic_bucket(AUG1, [
        anthropic_usage(sonnet, 100, 0, 0, 0, 10), anthropic_usage(sonnet, 900, 0, 0, 0, 90, tier="priority"),
        anthropic_usage("claude-3-5-haiku-20241022", 40, 0, 0, 0, 4)])]))
    httpserver.expect_ordered_request(ANTHROPIC_COSTS).respond_with_json(anthropic_page([anthropic_bucket(
        AUG1, [anthropic_cost("30", sonnet, "uncached_input_tokens")])]))

    report = fetch(config(httpserver, "anthropic"), AUG1, AUG1)

    assert report.usage == [
        ProviderUsage(AUG1, "claude-3-5-haiku-20241022", None, 40, 4, 0, None),
        ProviderUsage(AUG1, sonnet, None, 1000, 100, 0, Decimal("0.30"), cost_gap=anthropic.PRIORITY_GAP),
    ]


def test_anthropic_with_workspaces_groups_usage_and_costs_by_workspace_and_keeps_it(httpserver: HTTPServer) -> None:
    """Usage results and cost results both carry ``workspace_id`` when grouped by it
    (https://platform.claude.com/docs/en/api/admin/cost_report and
    https://docs.claude.com/en/api/admin-api/usage-cost/get-messages-usage-report)."""
    sonnet, ws1, ws2 = "claude-sonnet-4-20250514", "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "wrkspc_second"
    httpserver.expect_ordered_request(ANTHROPIC_USAGE).respond_with_json(anthropic_page([anthropic_bucket(AUG1, [
        {**anthropic_usage(sonnet, 100, 0, 0, 0, 10), "workspace_id": ws1},
        {**anthropic_usage(sonnet, 7, 0, 0, 0, 1), "workspace_id": ws2}])]))
    httpserver.expect_ordered_request(ANTHROPIC_COSTS).respond_with_json(anthropic_page([anthropic_bucket(AUG1, [
        anthropic_cost("20", sonnet, "output_tokens", workspace_id=ws1),
        anthropic_cost("3", sonnet, "output_tokens", workspace_id=ws2),
        anthropic_cost("5", None, None, cost_type="code_execution", workspace_id=ws1),
        anthropic_cost("999", sonnet, "output_tokens", workspace_id="wrkspc_not_asked_for")])]))

    report = fetch(config(httpserver, "anthropic", project_ids=(ws1, ws2)), AUG1, AUG1)

    assert report.usage == [ProviderUsage(AUG1, sonnet, None, 100, 10, 0, Decimal("0.20"), project=ws1),
                            ProviderUsage(AUG1, sonnet, None, 7, 1, 0, Decimal("0.03"), project=ws2)]
    assert report.day_costs == {AUG1: Decimal("0.28")}
    assert report.other_costs == {AUG1: {"code_execution": Decimal("0.05")}}


# --- OpenRouter -------------------------------------------------------------------------------

def test_openrouter_sums_endpoints_per_day_and_model_and_drops_days_outside_the_range(
        httpserver: HTTPServer) -> None:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    d1, d2, before, after = yesterday - timedelta(days=2), yesterday - timedelta(days=1), \
        yesterday - timedelta(days=3), yesterday
    httpserver.expect_ordered_request(OPENROUTER_ACTIVITY, query_string="").respond_with_json({"data": [
        openrouter_item(d1, "openai/gpt-4.1", "ep-openai", 0.015, 5, 50, 125),
        openrouter_item(d1, "openai/gpt-4.1", "ep-azure", 0.005, 1, 20, 5),
        openrouter_item(d2, "anthropic/claude-sonnet-4", "ep-anthropic", 0.3, 2, 1000, 100),
        openrouter_item(before, "openai/gpt-4.1", "ep-openai", 9.0, 9, 9, 9),
        openrouter_item(after, "openai/gpt-4.1", "ep-openai", 9.0, 9, 9, 9),
    ]})

    report = fetch(config(httpserver, "openrouter"), d1, d2)

    assert report.usage == [
        ProviderUsage(d1, "openai/gpt-4.1", 6, 70, 130, 0, Decimal("0.020")),
        ProviderUsage(d2, "anthropic/claude-sonnet-4", 2, 1000, 100, 0, Decimal("0.3")),
    ]
    assert report.day_costs == {d1: Decimal("0.020"), d2: Decimal("0.3")}
    assert report.requests_made == 1


def test_openrouter_asks_for_one_day_with_the_date_parameter_and_the_bearer_key(httpserver: HTTPServer) -> None:
    day = datetime.now(UTC).date() - timedelta(days=5)
    httpserver.expect_ordered_request(OPENROUTER_ACTIVITY, query_string={"date": day.isoformat()},
                                      headers={"Authorization": f"Bearer {KEY}"}).respond_with_json({"data": []})

    report = fetch(config(httpserver, "openrouter"), day, day)

    assert report.usage == [] and report.day_costs == {day: Decimal(0)}


# --- retries ----------------------------------------------------------------------------------

def test_a_429_is_retried_after_the_servers_retry_after(httpserver: HTTPServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_ordered_request(OPENROUTER_ACTIVITY).respond_with_json(
        {"error": {"code": 429, "message": "Rate limit exceeded"}}, status=429, headers={"Retry-After": "1"})
    httpserver.expect_ordered_request(OPENROUTER_ACTIVITY).respond_with_json({"data": []})
    yesterday = datetime.now(UTC).date() - timedelta(days=1)

    with caplog.at_level(logging.WARNING, logger="worker.providers"):
        report = fetch(config(httpserver, "openrouter"), yesterday, yesterday)

    assert report.requests_made == 2
    [retry] = [r for r in caplog.records if getattr(r, "action", "") == "provider_request_retried"]
    assert (retry.status, retry.attempt, retry.wait_seconds) == (429, 1, 1.0)  # type: ignore[attr-defined]


def test_retry_after_may_be_an_http_date_and_is_capped() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < provider_http.parse_retry_after(soon) <= 120  # type: ignore[operator]
    assert provider_http.parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0
    assert provider_http.parse_retry_after("soon") is None
    cfg = ProviderConfig("openai", "http://x", KEY, backoff=1.0)
    assert provider_http.retry_delay(cfg, 0, 3600.0) == 300.0
    assert [provider_http.retry_delay(cfg, n, None) for n in (0, 1, 2, 10)] == [1.0, 2.0, 4.0, 60.0]


def test_a_503_twice_then_success_is_retried_and_every_attempt_is_counted(httpserver: HTTPServer) -> None:
    for _ in range(2):
        httpserver.expect_ordered_request(ANTHROPIC_USAGE).respond_with_json(
            {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}, status=503)
    httpserver.expect_ordered_request(ANTHROPIC_USAGE).respond_with_json(anthropic_page([]))
    httpserver.expect_ordered_request(ANTHROPIC_COSTS).respond_with_json(anthropic_page([]))

    report = fetch(config(httpserver, "anthropic"), AUG1, AUG2)

    assert report.requests_made == 4


def test_server_errors_until_the_retries_run_out_are_a_temporary_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(OPENAI_USAGE).respond_with_data("upstream connect error", status=502)

    error = failure(config(httpserver, "openai", max_retries=3))

    assert not error.permanent and error.status == 502
    assert str(error) == f"openai: GET {OPENAI_USAGE} failed: HTTP 502; gave up after 4 attempts"
    assert len(httpserver.log) == 4


def test_a_server_that_cannot_be_reached_is_a_temporary_error_after_the_retries() -> None:
    cfg = ProviderConfig("openrouter", f"http://127.0.0.1:{free_port()}", KEY, max_retries=1, backoff=0.01)

    error = failure(cfg)

    assert not error.permanent and error.status is None
    assert "cannot connect to http://127.0.0.1:" in str(error) and "gave up after 2 attempts" in str(error)


def test_a_server_that_does_not_answer_in_time_is_a_temporary_error_after_the_retries(
        httpserver: HTTPServer) -> None:
    released = threading.Event()

    def late(request: Request) -> Response:
        released.wait(5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request(OPENAI_USAGE).respond_with_handler(late)

    error = failure(config(httpserver, "openai", timeout=0.05, max_retries=1))
    released.set()  # let the server finish both requests inside this test
    deadline = time.monotonic() + 5
    while len(httpserver.log) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)

    assert not error.permanent and error.status is None
    assert str(error) == f"openai: GET {OPENAI_USAGE} failed: no answer within 0.05 s; gave up after 2 attempts"


# --- permanent errors -------------------------------------------------------------------------

@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_refused_key_is_permanent_names_the_setting_and_never_shows_the_key(
        httpserver: HTTPServer, provider: str, caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request(FIRST_PATH[provider]).respond_with_json(
        {"error": {"type": "authentication_error", "message": f"Incorrect API key provided: {KEY}"}}, status=401)

    with caplog.at_level(logging.DEBUG):
        error = failure(config(httpserver, provider))

    assert error.permanent and error.status == 401
    assert str(error) == (f"{provider}: the admin key was refused (HTTP 401): Incorrect API key provided: "
                          f"[redacted]; check TOKENTALLY_RECONCILE_{provider.upper()}_API_KEY")
    assert len(httpserver.log) == 1
    assert KEY not in caplog.text and KEY not in repr(config(httpserver, provider))


def test_a_rejected_request_carries_the_providers_own_message_cut_short(httpserver: HTTPServer) -> None:
    message = "starting_at: Input should be a valid datetime " + "x" * 500
    httpserver.expect_request(ANTHROPIC_USAGE).respond_with_json(
        {"type": "error", "error": {"type": "invalid_request_error", "message": message}}, status=400)

    error = failure(config(httpserver, "anthropic"))

    assert error.permanent and error.status == 400
    assert str(error).startswith(f"anthropic: GET {ANTHROPIC_USAGE} was rejected (HTTP 400): "
                                 "starting_at: Input should be a valid datetime xxx")
    assert len(str(error)) < 400 and str(error).endswith("…")


def test_a_body_that_is_not_json_is_an_unexpected_response(httpserver: HTTPServer) -> None:
    httpserver.expect_request(OPENAI_USAGE).respond_with_data(
        "<html><body>Welcome to nginx</body></html>", content_type="text/html")

    error = failure(config(httpserver, "openai"))

    assert error.permanent
    assert str(error) == (f"openai: unexpected response from GET {OPENAI_USAGE}: HTTP 200 body is not JSON "
                          "(text/html): '<html><body>Welcome to nginx</body></html>'")


def test_a_body_without_the_expected_fields_is_an_unexpected_response(httpserver: HTTPServer) -> None:
    bucket = anthropic_bucket(AUG1, [anthropic_usage("claude-sonnet-4-20250514", 1, 0, 0, 0, 1)])
    del bucket["results"][0]["cache_creation"]
    httpserver.expect_request(ANTHROPIC_USAGE).respond_with_json(anthropic_page([bucket]))

    error = failure(config(httpserver, "anthropic"))

    assert error.permanent
    assert str(error) == (f"anthropic: unexpected response from GET {ANTHROPIC_USAGE}: "
                          "results[].cache_creation is missing or null, not an object")


def test_a_key_echoed_into_a_response_field_is_redacted_from_the_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(OPENROUTER_ACTIVITY).respond_with_json({"data": [{"date": KEY}]})

    error = failure(config(httpserver, "openrouter"))

    assert error.permanent
    assert str(error) == (f"openrouter: unexpected response from GET {OPENROUTER_ACTIVITY}: "
                          "data[].date is not a YYYY-MM-DD date: '[redacted]'")


def test_a_cursor_that_never_ends_stops_at_the_page_guard(httpserver: HTTPServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provider_http, "MAX_PAGES", 3)
    httpserver.expect_request(OPENAI_USAGE).respond_with_json(openai_page([], next_page="same-again"))

    error = failure(config(httpserver, "openai"))

    assert error.permanent and "still had more pages after 3" in str(error)
    assert len(httpserver.log) == 3


def test_an_unknown_provider_is_a_permanent_error() -> None:
    error = failure(ProviderConfig("mistral", "https://api.mistral.ai", KEY))

    assert error.permanent and str(error) == "no provider 'mistral' (providers: anthropic, openai, openrouter)"
