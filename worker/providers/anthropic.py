"""Anthropic: the Admin API's messages usage report and cost report, with an admin key.

Requests (``x-api-key: <admin key>``, ``anthropic-version: 2023-06-01``)::

    GET /v1/organizations/usage_report/messages
        ?starting_at=<RFC 3339>&ending_at=<RFC 3339, exclusive>&bucket_width=1d&limit=<=31
        &group_by[]=model&group_by[]=service_tier[&group_by[]=workspace_id]
        &workspace_ids[]=...&page=<next_page>
    GET /v1/organizations/cost_report
        ?starting_at=...&ending_at=...&bucket_width=1d&limit=<=31
        &group_by[]=description[&group_by[]=workspace_id]&page=...

Both answer ``{"data": [bucket...], "has_more", "next_page"}``; a bucket is
``{"starting_at", "ending_at", "results": [...]}``, one per UTC day.

Usage results: ``uncached_input_tokens``, ``cache_read_input_tokens``,
``cache_creation: {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}``,
``output_tokens``, ``model``, ``service_tier``. Input is the sum of all four input counts;
cached is the cache reads. There are no request counts, so ``requests`` is None.

Cost results: ``amount`` is a decimal string in the currency's lowest unit — cents for
USD ("123.45" is $1.2345) — with ``currency`` (always "USD" so far). Grouped by
``description``, token costs carry ``cost_type: "tokens"`` and ``model`` (the same model
id as the usage report); web search and code execution costs (``cost_type`` other than
"tokens") have no model and go to ``other_costs`` per day and cost type, to be compared
per day. Each usage row's ``cost_usd`` is the sum of its day's token costs for that model
(None where the cost report has none). ``day_costs`` is every cost of the day, models or not.

Anthropic documents that Priority Tier costs are not in the cost report; to see priority
usage, group the usage report by ``service_tier`` and look for ``priority``. So usage is
grouped by service tier and a row with priority traffic carries ``cost_gap``
(:data:`PRIORITY_GAP`): its cost cannot be compared.

Projects are Anthropic workspaces. With ``project_ids`` the usage report is filtered to
them and grouped by ``workspace_id``; the cost report has no workspace filter, so it is
grouped by workspace as well and filtered here (the default workspace has no id, so it
cannot be selected that way). Each row keeps its workspace as ``project``.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Callable

from worker.providers import ProviderConfig, ProviderReport
from worker.providers.http import Client
from worker.providers.shape import Shape
from worker.providers.tally import Tally

USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
API_VERSION = "2023-06-01"
PAGE_LIMIT = 31  # most 1d buckets per page, both reports
PRIORITY_GAP = "priority tier usage: Anthropic's cost report leaves Priority Tier costs out"


def fetch(config: ProviderConfig, first: date, last: date) -> ProviderReport:
    days = (last - first).days + 1
    common = [("starting_at", f"{first.isoformat()}T00:00:00Z"),
              ("ending_at", f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z"),
              ("bucket_width", "1d"), ("limit", str(min(days, PAGE_LIMIT)))]
    headers = {"x-api-key": config.api_key, "anthropic-version": API_VERSION}
    tally = Tally()
    model_costs: dict[tuple[date, str | None, str | None], Decimal] = {}
    day_costs: dict[date, Decimal] = {}
    other_costs: dict[date, dict[str, Decimal]] = {}
    by_workspace = [("group_by[]", "workspace_id")] if config.project_ids else []
    with Client(config, headers) as client:
        shape = Shape(config.name, f"GET {USAGE_PATH}")
        usage_params = [*common, ("group_by[]", "model"), ("group_by[]", "service_tier"), *by_workspace,
                        *(("workspace_ids[]", w) for w in config.project_ids)]
        for page in client.pages(USAGE_PATH, usage_params):
            for day, result in shape.results(page, first, last, _day(shape)):
                _add_usage(tally, shape, day, result, bool(config.project_ids))

        shape = Shape(config.name, f"GET {COST_PATH}")
        cost_params = [*common, ("group_by[]", "description"), *by_workspace]
        for page in client.pages(COST_PATH, cost_params):
            for day, bucket in shape.buckets(page, first, last, _day(shape)):
                day_costs.setdefault(day, Decimal(0))
                for result in shape.array(bucket, "results", "data[]"):
                    result = shape.mapping(result, "results[]")
                    workspace = result.get("workspace_id")
                    if config.project_ids and workspace not in config.project_ids:
                        continue
                    usd = _usd(shape, result)
                    day_costs[day] += usd
                    model, cost_type = result.get("model"), result.get("cost_type")
                    if cost_type == "tokens" and isinstance(model, str) and model:
                        key = (day, model, workspace if config.project_ids else None)
                        model_costs[key] = model_costs.get(key, Decimal(0)) + usd
                    else:  # web_search, code_execution, ...: no model to put them on
                        kinds = other_costs.setdefault(day, {})
                        kind = cost_type if isinstance(cost_type, str) and cost_type else "other"
                        kinds[kind] = kinds.get(kind, Decimal(0)) + usd
    return ProviderReport(provider=config.name, first=first, last=last,
                          usage=tally.rows(costs=model_costs), day_costs=dict(sorted(day_costs.items())),
                          requests_made=client.requests_made, other_costs=dict(sorted(other_costs.items())))

def _add_usage(tally: Tally, shape: Shape, day: date, result: dict[str, Any], by_workspace: bool) -> None:
    writes = shape.mapping(result.get("cache_creation"), "results[].cache_creation")
    uncached = shape.count(result, "uncached_input_tokens", "results[]")
    reads = shape.count(result, "cache_read_input_tokens", "results[]")
    written = (shape.count(writes, "ephemeral_5m_input_tokens", "results[].cache_creation")
               + shape.count(writes, "ephemeral_1h_input_tokens", "results[].cache_creation"))
    tier = result.get("service_tier")
    gap = PRIORITY_GAP if isinstance(tier, str) and tier.startswith("priority") else None
    project = shape.text_or_none(result, "workspace_id", "results[]") if by_workspace else None
    tally.add(day, shape.text(result, "model", "results[]"), requests=None, project=project, cost_gap=gap,
              input_tokens=uncached + reads + written,
              output_tokens=shape.count(result, "output_tokens", "results[]"), cached_tokens=reads)


def _day(shape: Shape) -> Callable[[dict[str, Any]], date]:
    return lambda bucket: shape.rfc3339_day(bucket, "starting_at", "data[]")


def _usd(shape: Shape, result: dict[str, Any]) -> Decimal:
    """The result's amount in dollars: the API gives a decimal string of cents."""
    currency = result.get("currency", "USD")
    if not isinstance(currency, str) or currency.upper() != "USD":
        raise shape.unexpected(f"results[].currency is {currency!r}, not USD")
    amount = result.get("amount")
    if not isinstance(amount, str):  # documented as a decimal string; a number would be suspect
        raise shape.unexpected(f"results[].amount is {amount!r}, not a decimal string of cents")
    return shape.decimal(amount, "results[].amount").scaleb(-2)
