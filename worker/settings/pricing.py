"""``[[pricing.overrides]]``: your own prices (self-hosted or negotiated), each from a date."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from worker.settings.reader import Reader, SettingsError


@dataclass(frozen=True)
class PriceOverride:
    """USD per million tokens of each class. ``input_per_mtok``/``output_per_mtok`` may be left out
    only when ``total_per_mtok`` (a flat rate, for records with only a total) is given; then every
    token costs that. Cache reads default to the input rate, cache writes to the input rate,
    1-hour writes to the cache write rate. ``tier``: only events on that service tier."""

    model: str
    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    effective_from: date
    provider: str | None = None
    cached_input_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    cache_write_1h_per_mtok: Decimal | None = None
    total_per_mtok: Decimal | None = None
    tier: str | None = None


def parse_override(item: Any, index: int) -> PriceOverride:
    r = Reader(item, f"pricing.overrides[{index}]", None)
    model = r.take("model", str, required=True)
    eff = r.take("effective_from", (str, date), date(1970, 1, 1))
    if isinstance(eff, str):
        try:
            eff = date.fromisoformat(eff)
        except ValueError:
            raise SettingsError(f"{r.key('effective_from')}: expected a date like 2025-01-01, got {eff!r}") from None
    total = r.decimal("total_per_mtok")
    ov = PriceOverride(
        model=model, provider=r.take("provider", str),
        input_per_mtok=r.decimal("input_per_mtok", required=total is None),
        output_per_mtok=r.decimal("output_per_mtok", required=total is None),
        cached_input_per_mtok=r.decimal("cached_input_per_mtok"),
        cache_write_per_mtok=r.decimal("cache_write_per_mtok"),
        cache_write_1h_per_mtok=r.decimal("cache_write_1h_per_mtok"),
        total_per_mtok=total,
        tier=r.take("tier", str),
        effective_from=eff,
    )
    if ov.tier is not None and not ov.tier.strip():
        raise SettingsError(f"{r.key('tier')}: expected a service tier such as batch, flex or priority")
    r.done()
    return ov


def fingerprint(overrides: tuple[PriceOverride, ...]) -> str:
    """Changes whenever the price overrides change (stored with each priced event)."""
    text = repr(sorted(repr(o) for o in overrides))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
