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
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    effective_from: date
    provider: str | None = None
    cached_input_per_mtok: Decimal | None = None


def parse_override(item: Any, index: int) -> PriceOverride:
    r = Reader(item, f"pricing.overrides[{index}]", None)
    model = r.take("model", str, required=True)
    eff = r.take("effective_from", (str, date), date(1970, 1, 1))
    if isinstance(eff, str):
        try:
            eff = date.fromisoformat(eff)
        except ValueError:
            raise SettingsError(f"{r.key('effective_from')}: expected a date like 2025-01-01, got {eff!r}") from None
    ov = PriceOverride(
        model=model, provider=r.take("provider", str),
        input_per_mtok=r.decimal("input_per_mtok", required=True),
        output_per_mtok=r.decimal("output_per_mtok", required=True),
        cached_input_per_mtok=r.decimal("cached_input_per_mtok"),
        effective_from=eff,
    )
    r.done()
    return ov


def fingerprint(overrides: tuple[PriceOverride, ...]) -> str:
    """Changes whenever the price overrides change (stored with each priced event)."""
    text = repr(sorted(repr(o) for o in overrides))
    return hashlib.sha256(text.encode()).hexdigest()[:12]
