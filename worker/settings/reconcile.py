"""``[reconcile]`` and ``[reconcile.<provider>]``: comparing the ledger with the providers' own reports.

The admin keys come only from ``TOKENTALLY_RECONCILE_<NAME>_API_KEY`` (or ``_FILE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from worker.settings.reader import Reader, SettingsError

PROVIDER_NAMES = ("openai", "anthropic", "openrouter")  # worker.providers has one module each
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com",
                     "openrouter": "https://openrouter.ai"}


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    base_url: str
    api_key: str = field(repr=False)
    ledger_provider: str  # the ledger's provider id for its events (usually the same name)
    project_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReconcileSettings:
    """``[reconcile]`` and its ``[reconcile.<provider>]`` tables."""

    days: int = 3  # UTC days before today each run compares (providers finish a day late)
    tolerance: float = 0.02  # of the larger side
    min_requests: int = 5
    min_tokens: int = 1000
    min_cost_usd: Decimal = Decimal("0.01")
    timeout: float = 30.0
    max_retries: int = 4
    backoff: float = 1.0
    providers: dict[str, ProviderSettings] = field(default_factory=dict)  # the enabled ones


def parse_reconcile(raw: dict[str, Any] | None, env: dict[str, str]) -> ReconcileSettings:
    d = ReconcileSettings()
    r = Reader(raw or {}, "reconcile", env)
    providers = {}
    for name in [k for k in r.table if isinstance(r.table[k], dict)]:
        if name not in PROVIDER_NAMES:
            raise SettingsError(f"reconcile.{name}: no such provider (providers: {', '.join(sorted(PROVIDER_NAMES))})")
        p = Reader(r.take(name, dict), f"reconcile.{name}", env)
        enabled = p.take("enabled", bool, True)
        base_url = p.take("base_url", str, DEFAULT_BASE_URLS[name]).rstrip("/")
        ledger_provider = p.take("ledger_provider", str, name)
        projects = p.take("project_ids", list, [])
        if not all(isinstance(x, str) and x for x in projects):
            raise SettingsError(f"reconcile.{name}.project_ids: expected a list of project/workspace ids")
        key = p.secret("api_key", required=enabled)
        p.done()
        if enabled:
            providers[name] = ProviderSettings(name, base_url, key or "", ledger_provider, tuple(projects))
    tolerance = r.take("tolerance", (int, float), d.tolerance)
    if not 0 <= tolerance < 1:
        raise SettingsError(f"reconcile.tolerance: expected a fraction like 0.02, got {tolerance!r}")
    timeout = r.take("timeout_seconds", (int, float), d.timeout)
    backoff = r.take("backoff_seconds", (int, float), d.backoff)
    if timeout <= 0 or backoff < 0:
        raise SettingsError("reconcile.timeout_seconds / backoff_seconds: must be positive")
    retries = r.take("max_retries", int, d.max_retries)
    if retries < 0:
        raise SettingsError(f"reconcile.max_retries: must be 0 or more, got {retries}")
    min_requests = r.take("min_requests", int, d.min_requests)
    min_tokens = r.take("min_tokens", int, d.min_tokens)
    if min_requests < 0 or min_tokens < 0:
        raise SettingsError("reconcile.min_requests / min_tokens: must be 0 or more")
    min_cost = r.decimal("min_cost_usd")
    result = ReconcileSettings(days=r.positive_int("days", d.days), tolerance=float(tolerance),
                               min_requests=min_requests, min_tokens=min_tokens,
                               min_cost_usd=d.min_cost_usd if min_cost is None else min_cost,
                               timeout=float(timeout), max_retries=retries, backoff=float(backoff),
                               providers=providers)
    r.done()
    return result
