"""The robust rule: an hour is unusual above median + k x MAD of the same hour's history.

The samples are the scope's spend (or requests) in the same local hour of the week, and the hours
either side, in each learned week (of the day on the days of the same kind, weekdays or weekend
days, while the scope has less than three weeks of history); hours without usage count as 0. The MAD (median absolute deviation) is floored at
``mad_floor`` x the median, so a flat history is not an alarm at the first extra cent, and an
hour also has to reach an absolute floor (``min_usd``, ``min_requests``) before it is unusual:
pennies never page anyone. Pure functions, no database.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence


@dataclass(frozen=True)
class Expectation:
    """What an hour usually is: the median and the highest usual value (median + k x MAD)."""

    median: Decimal
    mad: Decimal
    high: Decimal
    samples: int


def median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return Decimal(0)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def expect(values: Sequence[Decimal], k: float, mad_floor: float) -> Expectation:
    """The expectation from the samples (``values`` non-empty)."""
    mid = median(values)
    mad = median([abs(v - mid) for v in values])
    spread = max(mad, mid * Decimal(str(mad_floor)))
    return Expectation(mid, mad, mid + Decimal(str(k)) * spread, len(values))


def unusual(actual: Decimal, usual: Expectation | None, floor: Decimal) -> bool:
    """Above the usual high and the floor; with no history (``usual`` None), above the floor alone."""
    if actual < floor or actual <= 0:
        return False
    return usual is None or actual > usual.high
