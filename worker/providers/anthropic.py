"""Anthropic: the Admin API's messages usage report and cost report, with an admin key.

Requests (``x-api-key: <admin key>``, ``anthropic-version: 2023-06-01``)::

    GET /v1/organizations/usage_report/messages
        ?starting_at=<RFC 3339>&ending_at=<RFC 3339, exclusive>&bucket_width=1d&limit=<=31
        &group_by[]=model&workspace_ids[]=...&page=<next_page>
    GET /v1/organizations/cost_report
        ?starting_at=...&ending_at=...&bucket_width=1d&limit=<=31
        &group_by[]=description[&group_by[]=workspace_id]&page=...

Both answer ``{"data": [bucket...], "has_more", "next_page"}``; a bucket is
``{"starting_at", "ending_at", "results": [...]}``, one per UTC day.

Usage results: ``uncached_input_tokens``, ``cache_read_input_tokens``,
``cache_creation: {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}``,
``output_tokens``, ``model``. Input is the sum of all four input counts; cached is the
cache reads. There are no request counts, so ``requests`` is None.

Cost results: ``amount`` is a decimal string in the currency's lowest unit — cents for
USD ("123.45" is $1.2345) — with ``currency`` (always "USD" so far). Grouped by
``description``, token costs carry ``cost_type: "tokens"`` and ``model`` (the same model
id as the usage report); web search and code execution costs have no model. Each usage
row's ``cost_usd`` is the sum of its day's token costs for that model (None where the
cost report has none, e.g. Priority Tier usage, which the cost report leaves out);
``day_costs`` is every cost of the day, models or not. The cost report has no workspace
filter: with ``project_ids`` it is grouped by workspace as well and filtered here (the
default workspace has no id, so it cannot be selected that way).
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


def fetch(config: ProviderConfig, first: date, last: date) -> ProviderReport:
    days = (last - first).days + 1
    common = [("starting_at", f"{first.isoformat()}T00:00:00Z"),
              ("ending_at", f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z"),
              ("bucket_width", "1d"), ("limit", str(min(days, PAGE_LIMIT)))]
    headers = {"x-api-key": config.api_key, "anthropic-version": API_VERSION}
    tally = Tally()
    model_costs: dict[tuple[date, str], Decimal] = {}
    day_costs: dict[date, Decimal] = {}
    with Client(config, headers) as client:
        shape = Shape(config.name, f"GET {USAGE_PATH}")
        usage_params = [*common, ("group_by[]", "model"),
                        *(("workspace_ids[]", w) for w in config.project_ids)]
        for page in client.pages(USAGE_PATH, usage_params):
            for day, result in shape.results(page, first, last, _day(shape)):
                _add_usage(tally, shape, day, result)

        shape = Shape(config.name, f"GET {COST_PATH}")
        cost_params = [*common, ("group_by[]", "description")]
        if config.project_ids:
            cost_params.append(("group_by[]", "workspace_id"))
        for page in client.pages(COST_PATH, cost_params):
            for day, bucket in shape.buckets(page, first, last, _day(shape)):
                day_costs.setdefault(day, Decimal(0))
                for result in shape.array(bucket, "results", "data[]"):
                    result = shape.mapping(result, "results[]")
                    if config.project_ids and result.get("workspace_id") not in config.project_ids:
                        continue
                    usd = _usd(shape, result)
                    day_costs[day] += usd
                    model = result.get("model")
                    if result.get("cost_type") == "tokens" and isinstance(model, str) and model:
                        model_costs[(day, model)] = model_costs.get((day, model), Decimal(0)) + usd
    return ProviderReport(provider=config.name, first=first, last=last,
                          usage=tally.rows(costs=model_costs), day_costs=dict(sorted(day_costs.items())),
                          requests_made=client.requests_made)


def _add_usage(tally: Tally, shape: Shape, day: date, result: dict[str, Any]) -> None:
    writes = shape.mapping(result.get("cache_creation"), "results[].cache_creation")
    uncached = shape.count(result, "uncached_input_tokens", "results[]")
    reads = shape.count(result, "cache_read_input_tokens", "results[]")
    written = (shape.count(writes, "ephemeral_5m_input_tokens", "results[].cache_creation")
               + shape.count(writes, "ephemeral_1h_input_tokens", "results[].cache_creation"))
    tally.add(day, shape.text(result, "model", "results[]"), requests=None,
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
