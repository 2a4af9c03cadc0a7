"""The daily-cost bar chart of a report, as PNG bytes (matplotlib, Agg backend).

The same points give the same bytes, on every run and every machine with the same
matplotlib: the font is the DejaVu Sans matplotlib ships, every style setting is
fixed here (never read from a user's matplotlibrc), and the PNG carries no
"Software" or date metadata. The archive hashes the image, so this matters.

Money arrives as Decimal and is converted to float only to be drawn.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Collection, Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import matplotlib

from worker import money
from worker.text import shown

matplotlib.use("Agg", force=False)  # no display: never pick an interactive backend

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

DAYS = 30
MIN_DAYS = 7  # fewer days are padded on the left with zero days: a lone day is not one fat bar
WIDTH_IN, HEIGHT_IN, DPI = 6.4, 2.4, 100  # 640 x 240 px
MARGIN = 24 / 640  # left and right, as the email's content padding: the image is placed edge to edge

BAR = "#c9d3df"  # days before the period: muted slate
BAR_PERIOD = "#3d6a9e"  # the period's own days: muted blue
TEXT = "#344054"
MUTED = "#667085"
GRID = "#e4e7ec"

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # shipped with matplotlib: the same glyphs everywhere
    "font.size": 8,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": TEXT,
    "svg.hashsalt": "tokentally",
    "path.simplify": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def daily_cost_png(points: list[tuple[date, Decimal]], *, title: str,
                   highlight: Collection[date] = ()) -> bytes:
    """A 640x240 PNG: one bar per day for (up to) the last 30 days of ``points``.

    Days missing between the first and the last point are drawn as zero; the days in
    ``highlight`` (the report's period) are drawn in the stronger colour. No points, or
    only zero costs, still give a valid PNG, saying "No usage".
    """
    days, costs = _series(points)
    with matplotlib.rc_context(STYLE), warnings.catch_warnings():
        # A title from the data (a tenant 東京) may hold characters DejaVu Sans has no glyph for:
        # they are drawn as boxes, which is no reason to warn (or, under pytest, to fail).
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        FigureCanvasAgg(figure)
        # parse_math off: "$...$" in a tenant's name is text, not mathtext (which can fail to parse)
        figure.text(MARGIN, 0.94, shown(title), ha="left", va="top", fontsize=9.5, fontweight="bold", color=TEXT,
                    parse_math=False)
        if not days or not any(costs):
            _empty(figure, days)
        else:
            _bars(figure, days, costs, frozenset(highlight))
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def report_chart_png(report: Mapping[str, Any]) -> bytes:
    """The chart of a report context (its ``daily_cost`` rows, ``in_period`` highlighted)."""
    rows = report["daily_cost"]
    points = [(date.fromisoformat(r["day"]), Decimal(r["cost_usd"])) for r in rows]
    highlight = {date.fromisoformat(r["day"]) for r in rows if r.get("in_period")}
    tenant = f" · {report['tenant']}" if report.get("tenant") else ""
    return daily_cost_png(points, title=f"Daily cost, USD{tenant}", highlight=highlight)


def _series(points: Iterable[tuple[date, Decimal]]) -> tuple[list[date], list[float]]:
    """Continuous days (zero-filled), at most the last 30, ending at the newest point."""
    by_day: dict[date, Decimal] = {}
    for day, cost in points:
        by_day[day] = by_day.get(day, Decimal(0)) + Decimal(cost)
    if not by_day:
        return [], []
    last = max(by_day)
    first = min(max(min(by_day), last - timedelta(days=DAYS - 1)), last - timedelta(days=MIN_DAYS - 1))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return days, [float(by_day.get(d, 0)) for d in days]


def _bars(figure: Figure, days: list[date], costs: list[float], highlight: frozenset[date]) -> None:
    ax = figure.add_axes((0.1, 0.2, 0.9 - MARGIN, 0.64))
    xs = range(len(days))
    colours = [BAR_PERIOD if d in highlight else BAR for d in days]
    ax.bar(xs, costs, width=0.72, color=colours, linewidth=0, zorder=2)
    top = max(costs)
    ax.set_xlim(-0.6, len(days) - 0.4)
    ax.set_ylim(0, top * 1.18)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, min_n_ticks=3))
    ax.yaxis.set_major_formatter(FuncFormatter(_money_formatter(top)))
    ax.grid(axis="y", color=GRID, linewidth=0.8, zorder=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#d0d5dd")
    ax.tick_params(axis="both", length=0, pad=4)
    step = 1 if len(days) <= 16 else 2
    ticks = [i for i in xs if (len(days) - 1 - i) % step == 0]  # the newest day is always labelled
    ax.set_xticks(ticks)
    ax.set_xticklabels([_day_label(days, i, ticks) for i in ticks])
    marked = [i for i in xs if days[i] in highlight]
    if len(marked) <= 3:  # a day's bars get their amount; a week's or month's would crowd
        for i in marked:
            amount = f"${money.short(Decimal(costs[i]))}"  # the drawn float, exactly
            ax.annotate(amount, (i, costs[i]), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7, color=BAR_PERIOD, fontweight="bold")
    if marked:
        figure.text(1 - MARGIN, 0.94, "■ this period", ha="right", va="top", fontsize=7.5, color=BAR_PERIOD)


def _empty(figure: Figure, days: list[date]) -> None:
    span = f"{_short(days[0])} – {_short(days[-1])}" if days else "the last 30 days"
    figure.text(0.5, 0.52, "No usage", ha="center", va="center", fontsize=13, color=MUTED)
    figure.text(0.5, 0.36, f"no cost recorded in {span}", ha="center", va="center", fontsize=8, color=MUTED)


def _day_label(days: list[date], i: int, ticks: list[int]) -> str:
    """Day of month; the month's name under the first label and under each month's first."""
    day = days[i]
    earlier = [t for t in ticks if t < i]
    new_month = not earlier or days[earlier[-1]].month != day.month
    return f"{day.day}\n{_MONTHS[day.month - 1]}" if new_month else str(day.day)


def _short(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]}"


def _money_formatter(top: float):  # type: ignore[no-untyped-def]
    """Dollar tick labels with as many decimals as the scale needs."""
    places = 0 if top >= 20 else 2 if top >= 0.2 else 3 if top >= 0.02 else 4

    def fmt(value: float, _pos: Any) -> str:
        return f"${money.fixed(Decimal(value), places, grouping=True)}"

    return fmt
