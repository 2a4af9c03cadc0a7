"""OpenRouter: the activity endpoint, with a management key.

Request (``Authorization: Bearer <management key>``)::

    GET /api/v1/activity[?date=YYYY-MM-DD]

It answers ``{"data": [item...]}`` for the last 30 completed UTC days (yesterday and
the 29 days before it), one item per day and endpoint: ``date``, ``model``,
``model_permaslug``, ``endpoint_id``, ``provider_name``, ``usage`` (USD, OpenRouter
credits spent), ``byok_usage_inference`` (USD spent on your own provider keys),
``requests``, ``prompt_tokens``, ``completion_tokens``, ``reasoning_tokens``. There is
no pagination. A single-day range is asked for with ``date``; a longer range fetches
the whole window once and keeps the days inside first..last.

Rows are summed per (date, ``model``), the model slug such as "openai/gpt-4.1".

What OpenRouter does not give, and how it shows here:

* cached tokens: not reported, so ``cached_tokens`` is 0 (prompt tokens include them);
* cache writes are not told apart from other prompt tokens;
* reasoning tokens are reported but not added to ``output_tokens`` (completion tokens
  are taken as OpenRouter gives them);
* days older than 30 completed days, or today: not available; a warning is logged and
  they are simply absent.

``cost_usd`` and ``day_costs`` are ``usage``, what OpenRouter charged; BYOK inference
billed by the upstream provider (``byok_usage_inference``) is not included. Days in
range that OpenRouter covers but has no activity for get a day cost of 0.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

from worker import clock

from worker.providers import ProviderConfig, ProviderReport
from worker.providers.http import Client
from worker.providers.shape import Shape
from worker.providers.tally import Tally

logger = logging.getLogger(__name__)

PATH = "/api/v1/activity"
WINDOW_DAYS = 30  # completed UTC days the endpoint reports


def fetch(config: ProviderConfig, first: date, last: date) -> ProviderReport:
    yesterday = clock.now().date() - timedelta(days=1)
    window_first = yesterday - timedelta(days=WINDOW_DAYS - 1)
    if first < window_first or last > yesterday:
        logger.warning("provider range partly unavailable", extra={
            "action": "provider_range_partial", "provider": config.name, "first": first.isoformat(),
            "last": last.isoformat(), "available_first": window_first.isoformat(),
            "available_last": yesterday.isoformat()})
    shape = Shape(config.name, f"GET {PATH}")
    tally = Tally()
    day_costs: dict[date, Decimal] = {}
    with Client(config, {"Authorization": f"Bearer {config.api_key}"}) as client:
        body = client.get_json(PATH, [("date", first.isoformat())] if first == last else [])
    for item in shape.array(body, "data"):
        item = shape.mapping(item, "data[]")
        day = shape.iso_day(item, "date", "data[]")
        if not first <= day <= last:
            continue
        usd = shape.decimal(item.get("usage"), "data[].usage")
        tally.add(day, shape.text(item, "model", "data[]"),
                  requests=shape.count(item, "requests", "data[]"),
                  input_tokens=shape.count(item, "prompt_tokens", "data[]"),
                  output_tokens=shape.count(item, "completion_tokens", "data[]"),
                  cached_tokens=0, cost_usd=usd)
        day_costs[day] = day_costs.get(day, Decimal(0)) + usd
    day = max(first, window_first)
    while day <= min(last, yesterday):
        day_costs.setdefault(day, Decimal(0))
        day += timedelta(days=1)
    return ProviderReport(provider=config.name, first=first, last=last, usage=tally.rows(),
                          day_costs=dict(sorted(day_costs.items())), requests_made=client.requests_made)
