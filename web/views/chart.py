"""The overview's 30-day cost chart as geometry for an inline SVG (no image, no script).

:func:`daily_bars` turns (day, cost) points into bars in a fixed ``viewBox`` coordinate
space; the template ``templates/web/_chart.html`` draws them as ``<rect>`` elements with
a ``<title>`` each (the day and its cost, shown on hover), so the chart scales with the
page and obeys a strict Content-Security-Policy. Money stays Decimal: the bar heights
are the only floats, and only for drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from worker import money

WIDTH, HEIGHT = 960, 220  # the viewBox
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 30  # room for the axis labels


@dataclass(frozen=True)
class Bar:
    day: date
    cost: Decimal
    unpriced: int
    x: float
    y: float
    width: float
    height: float
    label: str | None  # the day of month under every few bars


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    baseline: float
    total: Decimal
    empty: bool


def daily_bars(points: dict[date, tuple[Decimal, int]], first: date, last: date) -> Chart:
    """One bar per day from ``first`` to ``last`` (missing days are zero); ``points``: day ->
    (cost, unpriced requests)."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    costs = [points.get(d, (Decimal(0), 0))[0] for d in days]
    top = max(costs, default=Decimal(0))
    scale = _nice_top(top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(days), 1)
    baseline = TOP + plot_h
    bars = []
    for i, (day, cost) in enumerate(zip(days, costs)):
        h = float(cost / scale) * plot_h if scale else 0.0
        label = str(day.day) if (len(days) - 1 - i) % 5 == 0 else None  # the newest day is labelled
        bars.append(Bar(day, cost, points.get(day, (Decimal(0), 0))[1], LEFT + i * step + step * 0.15,
                        baseline - h, step * 0.7, h, label))
    ticks = [Tick(baseline - plot_h * k / 4, f"${money.short(scale * k / 4)}") for k in range(5)] if scale else []
    return Chart(WIDTH, HEIGHT, bars, ticks, baseline, sum(costs, Decimal(0)), not scale)


def _nice_top(top: Decimal) -> Decimal:
    """The axis maximum: the next 1, 2 or 5 times a power of ten at or above ``top``."""
    if top <= 0:
        return Decimal(0)
    exponent = top.adjusted()
    for mantissa in (1, 2, 5, 10):
        candidate = Decimal(mantissa).scaleb(exponent)
        if candidate >= top:
            return candidate
    return Decimal(10).scaleb(exponent)
