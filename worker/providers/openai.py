"""OpenAI: the organisation Usage API (completions) and Costs API, with an admin key.

Requests (``Authorization: Bearer <admin key>``)::

    GET /v1/organization/usage/completions
        ?start_time=<unix, inclusive>&end_time=<unix, exclusive>&bucket_width=1d
        &group_by[]=model[&group_by[]=project_id]&limit=<=31&project_ids[]=...&page=<next_page>
    GET /v1/organization/costs
        ?start_time=...&end_time=...&bucket_width=1d&limit=<=180&project_ids[]=...&page=...

Both answer ``{"object": "page", "data": [bucket...], "has_more", "next_page"}``; a
bucket is ``{"start_time", "end_time", "results": [...]}``, one per UTC day when
``start_time`` is a UTC midnight (it is, here). Array parameters are sent with brackets
(``group_by[]=model``), as OpenAI's own SDK sends them.

Usage results give ``input_tokens``, ``input_cached_tokens``, ``output_tokens``,
``num_model_requests`` and ``model``. OpenAI documents ``input_tokens`` as all text input
tokens *including* cached ones, so ``input_cached_tokens`` is a part of it: it is taken as
the input as it is, and never added to it. ``model`` may be null (OpenAI's own example
answers ``"model": null``, and a bucket can carry usage no model is named for): such a row
is kept with ``model=None`` and the reconciliation compares it per day, it never fails the
fetch. With ``project_ids`` configured, usage is grouped by ``project_id`` as well and each
row keeps its project (costs stay per day: they are filtered by the same projects). Audio tokens
(``input_audio_tokens`` / ``output_audio_tokens``) are reported separately by OpenAI and
are not added in. Only completions usage is fetched: embeddings, images, audio and
moderations have their own usage endpoints.

Cost results give ``amount: {"value", "currency": "usd"}`` per bucket, summed into
``day_costs``. OpenAI's cost ``line_item`` strings are not documented in a form that
maps reliably to model names, so per-model ``cost_usd`` is None; compare costs per day.
The costs API covers everything the organisation is billed for, not only completions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Callable

from worker.providers import ProviderConfig, ProviderReport
from worker.providers.http import Client
from worker.providers.shape import Shape
from worker.providers.tally import Tally

USAGE_PATH = "/v1/organization/usage/completions"
COSTS_PATH = "/v1/organization/costs"
USAGE_LIMIT = 31  # most 1d buckets per page on the usage API
COSTS_LIMIT = 180  # most buckets per page on the costs API


def fetch(config: ProviderConfig, first: date, last: date) -> ProviderReport:
    days = (last - first).days + 1
    common = [("start_time", str(_unix(first))), ("end_time", str(_unix(last + timedelta(days=1)))),
              ("bucket_width", "1d"), *(("project_ids[]", p) for p in config.project_ids)]
    tally = Tally()
    day_costs: dict[date, Decimal] = {}
    with Client(config, {"Authorization": f"Bearer {config.api_key}"}) as client:
        shape = Shape(config.name, f"GET {USAGE_PATH}")
        group_by = [("group_by[]", "model"), *([("group_by[]", "project_id")] if config.project_ids else [])]
        usage_params = [*common, *group_by, ("limit", str(min(days, USAGE_LIMIT)))]
        for day, result in (r for page in client.pages(USAGE_PATH, usage_params)
                            for r in shape.results(page, first, last, _day(shape))):
            project = shape.text_or_none(result, "project_id", "results[]") if config.project_ids else None
            tally.add(day, shape.text_or_none(result, "model", "results[]"), project=project,
                      requests=shape.count(result, "num_model_requests", "results[]"),
                      input_tokens=shape.count(result, "input_tokens", "results[]"),
                      output_tokens=shape.count(result, "output_tokens", "results[]"),
                      cached_tokens=shape.count(result, "input_cached_tokens", "results[]", default=0))

        shape = Shape(config.name, f"GET {COSTS_PATH}")
        cost_params = [*common, ("limit", str(min(days, COSTS_LIMIT)))]
        for page in client.pages(COSTS_PATH, cost_params):
            for day, bucket in shape.buckets(page, first, last, _day(shape)):
                total = day_costs.setdefault(day, Decimal(0))
                for result in shape.array(bucket, "results", "data[]"):
                    total += _usd(shape, shape.mapping(result, "results[]"))
                day_costs[day] = total
    return ProviderReport(provider=config.name, first=first, last=last, usage=tally.rows(),
                          day_costs=dict(sorted(day_costs.items())), requests_made=client.requests_made)


def _unix(day: date) -> int:
    return int(datetime.combine(day, time.min, tzinfo=UTC).timestamp())


def _day(shape: Shape) -> Callable[[dict[str, Any]], date]:
    return lambda bucket: shape.unix_day(bucket, "start_time", "data[]")


def _usd(shape: Shape, result: dict[str, Any]) -> Decimal:
    amount = shape.mapping(result.get("amount"), "results[].amount")
    currency = amount.get("currency", "usd")
    if not isinstance(currency, str) or currency.lower() != "usd":
        raise shape.unexpected(f"results[].amount.currency is {currency!r}, not usd")
    return shape.decimal(amount.get("value"), "results[].amount.value")
