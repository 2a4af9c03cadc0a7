"""Pricing: genai-prices' offline data plus ``[[pricing.overrides]]``.

genai-prices' ``calc_price`` costs ~0.1-0.3 ms a call, far too slow per event.
Prices are linear in token counts within one price period (and, for tiered
prices, within one tier), so for each (provider, model, price period, tier) the
package is asked once for the per-token rates (by pricing unit usages, so its own
rules for cached tokens and per-request prices hold) and every event is then a
few Decimal multiplications.

Never call genai-prices' updater: the bundled snapshot is the price data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from genai_prices import Usage, __version__ as GENAI_PRICES_VERSION
from genai_prices import data_snapshot
from genai_prices.types import ConditionalPrice, ModelPrice, StartDateConstraint, TieredPrices

from worker.models.base import MONEY_SCALE, money_to_units, units_to_money
from worker.models.events import UNKNOWN
from worker.ledger.event import Event
from worker.settings import PriceOverride

QUANTUM = Decimal("1e-10")  # NUMERIC(20,10)
UNITS_PER_USD = Decimal(10) ** 10
MTOK = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token of each class (and per request) for one model in one price period and tier.

    The classes partition a call's tokens: uncached input = prompt - cache reads - cache writes;
    cache writes are 5-minute ones plus ``cache_write_1h`` 1-hour ones; output includes reasoning.
    ``total`` is a flat rate for events that carry only a total (an override's ``total_per_mtok``).
    """

    uncached_input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    output: Decimal
    per_request: Decimal
    source: str
    effective_from: date | None
    total: Decimal | None = None
    # The same rates in 1e-10 USD units when they are whole numbers there (any price per
    # million tokens with up to 4 decimals): then a cost is exact integer arithmetic.
    units: tuple[int, int, int, int, int, int] | None = None

    @classmethod
    def make(cls, uncached: Decimal, cached: Decimal, output: Decimal, per_request: Decimal, source: str,
             effective_from: date | None, cache_write: Decimal | None = None,
             cache_write_1h: Decimal | None = None, total: Decimal | None = None) -> Rates:
        cache_write = uncached if cache_write is None else cache_write
        cache_write_1h = cache_write if cache_write_1h is None else cache_write_1h
        scaled = [r * UNITS_PER_USD for r in (uncached, cached, cache_write, cache_write_1h, output, per_request)]
        units = tuple(int(u) for u in scaled) if all(u == u.to_integral_value() for u in scaled) else None
        return cls(uncached, cached, cache_write, cache_write_1h, output, per_request, source, effective_from,
                   total, units)  # type: ignore[arg-type]

    def cost_units(self, prompt: int, completion: int, cached: int, write: int = 0, write_1h: int = 0) -> int:
        """The cost in 1e-10 USD units, rounded half-even like NUMERIC(20,10). Classes that do not
        fit inside the prompt are cut to it (the normaliser flags such records)."""
        if cached > prompt:
            cached = prompt
        if write > prompt - cached:
            write = prompt - cached
        if write_1h > write:
            write_1h = write
        uncached = prompt - cached - write
        if self.units is not None:
            uncached_u, cached_u, write_u, write_1h_u, output_u, request_u = self.units
            return (request_u + uncached_u * uncached + cached_u * cached + write_u * (write - write_1h)
                    + write_1h_u * write_1h + output_u * completion)
        return money_to_units((self.per_request + self.uncached_input * uncached + self.cached_input * cached
                               + self.cache_write * (write - write_1h) + self.cache_write_1h * write_1h
                               + self.output * completion).quantize(QUANTUM))

    def cost(self, prompt: int, completion: int, cached: int, write: int = 0, write_1h: int = 0) -> Decimal:
        return units_to_money(self.cost_units(prompt, completion, cached, write, write_1h))

    def total_units(self, total: int) -> int:
        """A flat-rate cost of ``total`` tokens (only with ``total`` set)."""
        return money_to_units((self.total * total).quantize(QUANTUM))  # type: ignore[operator]


class Priced:
    """How one event was priced. Amounts are kept as exact 1e-10 USD units (what the
    ledger writer needs); ``cost_usd``/``cost_computed`` give them as Decimal."""

    __slots__ = ("provider", "cost_units", "computed_units", "cost_status", "price_source",
                 "price_effective_from")

    def __init__(self, provider: str, cost_units: int | None, computed_units: int | None, cost_status: str,
                 price_source: str | None, price_effective_from: date | None):
        self.provider = provider
        self.cost_units = cost_units  # what counts: reported when present, else computed
        self.computed_units = computed_units
        self.cost_status = cost_status  # priced | reported | unpriced
        self.price_source = price_source
        self.price_effective_from = price_effective_from

    @property
    def cost_usd(self) -> Decimal | None:
        return None if self.cost_units is None else units_to_money(self.cost_units)

    @property
    def cost_computed(self) -> Decimal | None:
        return None if self.computed_units is None else units_to_money(self.computed_units)

    def __repr__(self) -> str:
        return (f"Priced({self.provider!r}, cost_usd={self.cost_usd}, cost_computed={self.cost_computed}, "
                f"{self.cost_status!r}, {self.price_source!r}, {self.price_effective_from})")


def reported_units(amount: Decimal) -> int:
    """A reported cost in 1e-10 USD units, rounded half away from zero as PostgreSQL rounds a value with
    more places into the NUMERIC(20,10) column, so that cost_usd and cost_reported agree to the unit on
    both databases (the ledger writer stores these units as cost_reported too)."""
    return int(amount.scaleb(MONEY_SCALE).to_integral_value(ROUND_HALF_UP))


STANDARD_TIERS = frozenset({"standard", "default", "auto"})  # the standard rate under its own names


def price_context(tier: str | None) -> dict[str, str] | None:
    """genai-prices' price context for a service tier: Batch API calls are ``processing = batch``,
    other tiers ``service_tier = <tier>``; the standard tier needs none."""
    if tier is None:
        return None
    tier = tier.strip().lower()
    if not tier or tier in STANDARD_TIERS:
        return None
    return {"processing": "batch"} if tier == "batch" else {"service_tier": tier}


class _Override:
    __slots__ = ("starts_at", "rates", "tier")

    def __init__(self, ov: PriceOverride, tz: ZoneInfo):
        # effective_from is a local date: the price applies from local midnight.
        self.starts_at = datetime.combine(ov.effective_from, time.min, tzinfo=tz).astimezone(UTC)
        self.tier = ov.tier.strip().lower() if ov.tier else None
        flat = ov.total_per_mtok
        per_in = ov.input_per_mtok if ov.input_per_mtok is not None else flat
        per_out = ov.output_per_mtok if ov.output_per_mtok is not None else flat
        cached = ov.cached_input_per_mtok if ov.cached_input_per_mtok is not None else per_in
        write = ov.cache_write_per_mtok if ov.cache_write_per_mtok is not None else per_in
        write_1h = ov.cache_write_1h_per_mtok if ov.cache_write_1h_per_mtok is not None else write
        label = (f"override {ov.provider + '/' if ov.provider else ''}{ov.model}"
                 f"{' tier ' + self.tier if self.tier else ''} from {ov.effective_from}")
        self.rates = Rates.make(per_in / MTOK, cached / MTOK, per_out / MTOK, Decimal(0), label,  # type: ignore[operator]
                                ov.effective_from, write / MTOK, write_1h / MTOK,  # type: ignore[operator]
                                None if flat is None else flat / MTOK)


class _Model:
    """Everything needed to price one (provider, model) reference, resolved once."""

    __slots__ = ("provider", "info", "overrides", "thresholds", "_rates", "fixed", "_variants")

    def __init__(self, provider: str, info: Any, overrides: list[_Override]):
        self.provider = provider
        self.info = info  # genai-prices ModelInfo, or None when it does not know the model
        # Newest first, and an override for the event's tier before one for every tier.
        self.overrides = sorted(overrides, key=lambda o: (o.tier is not None, o.starts_at), reverse=True)
        self.thresholds = _tier_thresholds(info) if info is not None else ()
        self._rates: dict[tuple[Any, ...], Rates] = {}
        self._variants: dict[str, tuple[Any, ...]] = {}  # tier -> genai-prices variants for it
        # One price for all time and sizes (most models): no per-event lookup at all.
        self.fixed = (self._probe(datetime(2000, 1, 1, tzinfo=UTC), 0, 0, None) if info is not None
                      and not overrides and not self.thresholds and isinstance(info.prices, ModelPrice)
                      else None)

    def rates(self, at: datetime, prompt_tokens: int, tier: str | None = None) -> Rates | None:
        if self.overrides:
            wanted = tier.strip().lower() if tier else None
            for ov in self.overrides:  # the override in force wins
                if ov.starts_at <= at and (ov.tier is None or ov.tier == wanted):
                    return ov.rates
        if self.info is None:
            return None
        period = _active_period(self.info.prices, at)
        size = sum(1 for t in self.thresholds if prompt_tokens > t)
        ctx = price_context(tier)
        if ctx is None:
            key: tuple[Any, ...] = (period, size)
        else:
            variants = self._variants.get(tier)  # type: ignore[arg-type]
            if variants is None:
                variants = self._variants[tier] = tuple(  # type: ignore[index]
                    v for v in self.info.price_variants or ()
                    if all(ctx.get(k) == value for k, value in v.when.items()))
            # Which of the tier's variants are in force (they start on dates of their own).
            key = (period, size, tier, tuple(v.constraint is None or v.constraint.active(at) for v in variants))
        rates = self._rates.get(key)
        if rates is None:
            rates = self._rates[key] = self._probe(at, period, size, tier)
        return rates

    def _probe(self, at: datetime, period: int, size: int, tier: str | None) -> Rates:
        prices = self.info.prices
        effective = None
        if not isinstance(prices, ModelPrice):
            cond: ConditionalPrice = prices[period]
            effective = cond.constraint.start_date if isinstance(cond.constraint, StartDateConstraint) else None
        ctx = price_context(tier)
        model_price = self.info.get_prices(at, ctx)
        n = self.thresholds[size - 1] + 1 if size else 1  # a prompt size inside this size tier

        def calc(**usage: int) -> Decimal:
            return model_price.calc_price(Usage(**usage))["total_price"]

        base = calc(input_tokens=0, output_tokens=0)
        with_input = calc(input_tokens=n, output_tokens=0)
        source = f"genai-prices {GENAI_PRICES_VERSION} {self.provider}/{self.info.id}"
        if ctx is not None:
            applied = any(all(ctx.get(k) == value for k, value in v.when.items())
                          and (v.constraint is None or v.constraint.active(at))
                          for v in self.info.price_variants or ())
            source += f" {tier}" if applied else f" (no {tier} price: standard rate)"
        return Rates.make(
            uncached=(with_input - base) / n,
            cached=(calc(input_tokens=n, cache_read_tokens=n, output_tokens=0) - base) / n,
            cache_write=(calc(input_tokens=n, cache_write_tokens=n, output_tokens=0) - base) / n,
            cache_write_1h=(calc(input_tokens=n, cache_write_tokens=n, cache_write_1h_tokens=n,
                                 output_tokens=0) - base) / n,
            output=(calc(input_tokens=n, output_tokens=n) - with_input) / n,
            per_request=base,
            source=source,
            effective_from=effective,
        )


def _active_period(prices: Any, at: datetime) -> int:
    """Index of the conditional price in force at ``at`` (genai-prices' rule: last active wins)."""
    if isinstance(prices, ModelPrice):
        return 0
    for index in range(len(prices) - 1, -1, -1):
        constraint = prices[index].constraint
        if constraint is None or constraint.active(at):
            return index
    return 0


def _tier_thresholds(info: Any) -> tuple[int, ...]:
    price_sets = [info.prices] if isinstance(info.prices, ModelPrice) else [c.prices for c in info.prices]
    starts = {tier.start for mp in price_sets for value in vars(mp).values()
              if isinstance(value, TieredPrices) for tier in value.tiers}
    return tuple(sorted(starts))


class Pricer:
    """Prices events; resolves each (provider, model) once and caches the rates."""

    def __init__(self, overrides: Iterable[PriceOverride] = (), tz: ZoneInfo | None = None):
        tz = tz or ZoneInfo("UTC")
        self._overrides = [(ov, _Override(ov, tz)) for ov in overrides]
        self._models: dict[tuple[str | None, str], _Model] = {}
        self._snapshot = data_snapshot.get_snapshot()

    def model(self, provider: str | None, model: str) -> _Model:
        key = (provider, model)
        found = self._models.get(key)
        if found is None:
            found = self._models[key] = self._resolve(provider, model)
        return found

    def price(self, ev: Event) -> Priced:
        m = self._models.get((ev.provider, ev.model_used)) or self.model(ev.provider, ev.model_used)
        computed = None
        rates = None
        tier = ev.service_tier
        if ev.token_split_known:
            rates = (m.fixed if tier is None else None) or m.rates(ev.occurred_at, ev.prompt_tokens, tier)
            if rates is not None:
                computed = rates.cost_units(ev.prompt_tokens, ev.completion_tokens, ev.cached_tokens,
                                            ev.cache_write_tokens, ev.cache_write_1h_tokens)
        elif ev.total_tokens:
            # Only a total: exact with a flat rate (total_per_mtok), or when input and output cost the same.
            rates = (m.fixed if tier is None else None) or m.rates(ev.occurred_at, ev.total_tokens, tier)
            if rates is not None and rates.total is not None:
                computed = rates.total_units(ev.total_tokens)
            elif (rates is not None and rates.uncached_input == rates.output and not ev.cached_tokens
                  and not ev.cache_write_tokens):
                computed = rates.cost_units(ev.total_tokens, 0, 0)
            else:
                rates = None
        if ev.cost_reported is not None:
            reported = reported_units(ev.cost_reported)
            if rates is None:
                return Priced(m.provider, reported, None, "reported", None, None)
            return Priced(m.provider, reported, computed, "reported", rates.source, rates.effective_from)
        if rates is not None:
            return Priced(m.provider, computed, computed, "priced", rates.source, rates.effective_from)
        return Priced(m.provider, None, None, "unpriced", None, None)

    def _resolve(self, provider: str | None, model: str) -> _Model:
        info = None
        provider_id = provider.strip().lower() if provider else None
        if model != UNKNOWN:
            found = self._lookup(provider_id, model)
            if found is not None:
                prov, info = found
                provider_id = prov.id
        named = [(ov, o) for ov, o in self._overrides if ov.model.lower() == model.lower()]
        if provider_id is None:  # no provider known: the overrides say whose model it is
            provider_id = next((ov.provider.lower() for ov, _ in named if ov.provider), None)
        overrides = [o for ov, o in named if ov.provider is None or ov.provider.lower() == provider_id]
        return _Model(provider_id or UNKNOWN, info, overrides)

    def _lookup(self, provider_id: str | None, model: str) -> tuple[Any, Any] | None:
        """genai-prices' (provider, model) for a reference, idempotent: looked up again with the
        provider it returned and the same reference, it returns the same model. That is what lets
        ``reprice`` start from the provider stored in the ledger (issue 14: 'openai/gpt-oss-20b'
        resolved to provider 'openai' at ingest, and ('openai', 'openai/gpt-oss-20b') found nothing).
        So the provider-less resolution comes first, and is kept when it names the given provider."""
        found = self._provider_less(model)
        if provider_id is None or (found is not None and found[0].id == provider_id):
            return found
        return self._find(provider_id, model)

    def _provider_less(self, model: str) -> tuple[Any, Any] | None:
        found = self._find(None, model)
        if found is None and "/" in model:  # litellm / openrouter style "openai/gpt-4o"
            prefix, rest = model.split("/", 1)
            found = self._find(prefix.lower(), rest)
        if found is None:  # the model names no provider: the first provider that knows it
            snap = self._snapshot
            for prov in snap.providers:
                info = prov.find_model(model.lower(), all_providers=snap.providers)
                if info is not None:
                    return prov, info
        return found

    def _find(self, provider_id: str | None, model: str) -> tuple[Any, Any] | None:
        try:
            return self._snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            return None
