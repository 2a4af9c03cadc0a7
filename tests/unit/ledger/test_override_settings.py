"""``[[pricing.overrides]]`` keys for cache writes, flat totals and tiers, parsed with the key named in errors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from worker.settings import SettingsError
from worker.settings.pricing import parse_override


def test_an_override_reads_cache_write_flat_total_and_tier_keys():
    ov = parse_override({"model": "m", "input_per_mtok": "1", "output_per_mtok": 2, "cache_write_per_mtok": "1.25",
                         "cache_write_1h_per_mtok": "2", "tier": "batch", "effective_from": "2026-01-01"}, 0)
    assert (ov.cache_write_per_mtok, ov.cache_write_1h_per_mtok, ov.tier) == (Decimal("1.25"), Decimal("2"), "batch")
    assert ov.effective_from == date(2026, 1, 1)


def test_a_flat_total_rate_makes_input_and_output_rates_optional():
    ov = parse_override({"model": "grok-2", "total_per_mtok": "5.00"}, 3)
    assert (ov.total_per_mtok, ov.input_per_mtok, ov.output_per_mtok) == (Decimal("5.00"), None, None)


def test_without_a_flat_rate_the_input_rate_is_required_and_named():
    with pytest.raises(SettingsError, match=r"pricing\.overrides\[2\]\.input_per_mtok"):
        parse_override({"model": "m", "output_per_mtok": "1"}, 2)


@pytest.mark.parametrize(("key", "value"), [("cache_write_per_mtok", "-1"), ("cache_write_1h_per_mtok", "lots"),
                                            ("total_per_mtok", "nan"), ("tier", 5), ("tier", " ")])
def test_a_bad_value_names_its_key(key: str, value: object):
    with pytest.raises(SettingsError, match=rf"pricing\.overrides\[0\]\.{key}"):
        parse_override({"model": "m", "input_per_mtok": "1", "output_per_mtok": "1", key: value}, 0)
