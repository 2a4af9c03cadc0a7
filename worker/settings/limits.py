"""``[tiers.*]``, ``default_tier`` and ``[budgets]``: per-account limits and system-wide thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from worker.settings.reader import Reader, SettingsError, parse_duration

TIER_ACTIONS = ("warn", "block", "alert")


@dataclass(frozen=True)
class TierSettings:
    name: str
    action: str = "warn"
    daily_tokens: int | None = None
    daily_cost_usd: Decimal | None = None
    monthly_tokens: int | None = None
    monthly_cost_usd: Decimal | None = None
    requests_per_minute: int | None = None
    requests_per_hour: int | None = None
    requests_per_day: int | None = None
    requests_per_month: int | None = None
    warn_at: tuple[float, ...] = (0.8, 1.0)


@dataclass(frozen=True)
class BudgetSettings:
    """System-wide daily cost thresholds (the current local day, every account) and what they do."""

    system_warning_usd: Decimal | None = Decimal("10")
    system_critical_usd: Decimal | None = Decimal("50")
    system_emergency_usd: Decimal | None = Decimal("200")
    kill_switch: bool = True  # emergency turns the kill switch on
    projection: bool = True  # warn when the pace would cross a hard limit before the window resets
    keep_rate_windows: timedelta = timedelta(days=2)  # history of minute/hour windows


def parse_budgets(r: Reader) -> BudgetSettings:
    default = BudgetSettings()
    levels = {}
    for level in ("warning", "critical", "emergency"):
        name = f"system_{level}_usd"
        value = r.take(name, (str, int, float), None)
        if value is None:
            levels[name] = getattr(default, name)
        elif value == "off":
            levels[name] = None
        else:
            try:
                amount = Decimal(str(value))
            except InvalidOperation:
                amount = Decimal("NaN")
            if not amount.is_finite() or amount <= 0:
                raise SettingsError(f"{r.key(name)}: expected an amount more than 0 (or \"off\"), got {value!r}")
            levels[name] = amount
    set_levels = [v for v in levels.values() if v is not None]
    if set_levels != sorted(set_levels):
        raise SettingsError(f"{r.key('system_warning_usd')}: the thresholds must rise: warning <= critical <= emergency")
    keep = r.take("keep_rate_windows", str, None)
    budgets = BudgetSettings(
        **levels, kill_switch=r.take("kill_switch", bool, True), projection=r.take("projection", bool, True),
        keep_rate_windows=parse_duration(keep, r.key("keep_rate_windows")) if keep else default.keep_rate_windows)
    r.done()
    return budgets


def parse_tier(name: str, body: Any) -> TierSettings:
    r = Reader(body, f"tiers.{name}", None)
    action = r.take("action", str, "warn")
    if action not in TIER_ACTIONS:
        raise SettingsError(f"{r.key('action')}: expected one of {', '.join(TIER_ACTIONS)}, got {action!r}")
    warn_at = r.take("warn_at", list, [0.8, 1.0])
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x <= 10 for x in warn_at):
        raise SettingsError(f"{r.key('warn_at')}: expected fractions like [0.8, 1.0]")
    tier = TierSettings(
        name=name, action=action,
        daily_tokens=r.positive_int("daily_tokens"), daily_cost_usd=r.decimal("daily_cost_usd"),
        monthly_tokens=r.positive_int("monthly_tokens"), monthly_cost_usd=r.decimal("monthly_cost_usd"),
        requests_per_minute=r.positive_int("requests_per_minute"),
        requests_per_hour=r.positive_int("requests_per_hour"),
        requests_per_day=r.positive_int("requests_per_day"),
        requests_per_month=r.positive_int("requests_per_month"),
        warn_at=tuple(float(x) for x in sorted(warn_at)),
    )
    for key in ("daily_cost_usd", "monthly_cost_usd"):
        if getattr(tier, key) == 0:  # a 0 limit blocks everything (the seeds' NaN bug); leave it out for none
            raise SettingsError(f"{r.key(key)}: must be more than 0 (leave it out for no limit)")
    r.done()
    return tier
