"""Settings: settings.toml plus TOKENTALLY_* environment overrides.

Loading fails loudly: an unknown key, a wrong type or a bad value raises
:class:`SettingsError` naming the key (the CLI turns it into exit code 2).

Every scalar key can be overridden by an environment variable named after its
path: ``database.url`` -> ``TOKENTALLY_DATABASE_URL``, ``timezone`` ->
``TOKENTALLY_TIMEZONE``, ``ingest.batch_size`` -> ``TOKENTALLY_INGEST_BATCH_SIZE``.
``<NAME>_FILE`` names a file whose content is the value (for secrets). Arrays
of tables (``[[sources]]``, ``[[pricing.overrides]]``) come only from the file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "TOKENTALLY_"
DEFAULT_CONFIG = "settings.toml"
SOURCE_KINDS = ("jsonl", "csv", "table")
TIER_ACTIONS = ("warn", "block", "alert")
RECORD_TYPES = ("usage", "attempt")
DEFAULTABLE_FIELDS = ("model", "provider", "service", "account_id", "tenant_id")


class SettingsError(Exception):
    """A setting is missing, unknown or invalid; the message names the key."""


@dataclass(frozen=True)
class SourceSettings:
    name: str
    kind: str
    path: str | None = None  # glob, for jsonl/csv
    defaults: dict[str, str] = field(default_factory=dict)
    event_id_namespace: str = ""
    enabled: bool = True
    record_type: str = "usage"  # usage | attempt (every record is a call attempt, worker.attempts)
    expect_every: timedelta | None = None  # silent when nothing new arrived for longer (worker.silence)
    # kind = "table"
    url: str | None = None
    table: str | None = None
    cursor_column: str | None = None
    cursor_overlap: timedelta | int = 0
    batch_size: int | None = None


@dataclass(frozen=True)
class PriceOverride:
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    effective_from: date
    provider: str | None = None
    cached_input_per_mtok: Decimal | None = None


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


@dataclass(frozen=True)
class ReportSettings:
    archive_dir: str = "var/reports"
    top_accounts: int = 10
    base_url: str | None = None  # where the archive is served (links in Slack/email)
    # tenant -> ("channel", "target") contacts that receive that tenant's own reports
    tenants: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    timezone: str = "UTC"
    database_url: str = "sqlite:///var/tokentally.db"
    ingest_batch_size: int = 5000
    ingest_settle_seconds: int = 300
    log_level: str = "INFO"
    log_format: str = "auto"
    sources: tuple[SourceSettings, ...] = ()
    price_overrides: tuple[PriceOverride, ...] = ()
    default_tier: str | None = None
    tiers: dict[str, TierSettings] = field(default_factory=dict)
    budgets: BudgetSettings = field(default_factory=BudgetSettings)
    reports: ReportSettings = field(default_factory=ReportSettings)
    schedule: dict[str, str] = field(default_factory=dict)
    summaries_settle: timedelta = timedelta(hours=48)
    summaries_nightly_days: int = 3
    # kind -> configured channel (reports.channels); "file" is always there
    channels: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    routes: tuple[Any, ...] = ()  # routing.Route; () means routing.DEFAULT_ROUTES
    alerts: Any = None  # routing.AlertSettings
    delivery: Any = None  # routing.DeliverySettings
    integrity: Any = None  # integrity.IntegritySettings
    reconcile: Any = None  # reconcile.ReconcileSettings
    config_path: Path | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def source(self, name: str) -> SourceSettings:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none"
        raise SettingsError(f"sources: no source named {name!r} (configured: {known})")

    def pricing_fingerprint(self) -> str:
        """Changes whenever the price overrides change (stored with each priced event)."""
        text = repr(sorted(repr(o) for o in self.price_overrides))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- loading


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """--config, else TOKENTALLY_CONFIG, else ./settings.toml if present."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get(ENV_PREFIX + "CONFIG"):
        return Path(env)
    default = Path(DEFAULT_CONFIG)
    return default if default.exists() else None


def load(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    cfg = config_path(path)
    raw: dict[str, Any] = {}
    if cfg is not None:
        if not cfg.exists():
            raise SettingsError(f"config file {cfg} does not exist")
        try:
            raw = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{cfg}: invalid TOML: {exc}") from None
    return _parse(raw, env, cfg)


class _Reader:
    """Takes keys out of one TOML table, checking types; leftovers are unknown keys.

    Public as ``TableReader`` for the parts that read their own tables (channels)."""

    def __init__(self, table: Any, path: str, env: dict[str, str] | None):
        if not isinstance(table, dict):
            raise SettingsError(f"{path or 'settings'}: expected a table")
        self.table = dict(table)
        self.path = path
        self.env = env  # None for arrays of tables: no env overrides there

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def take(self, name: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        key = self.key(name)
        value = self.table.pop(name, None)
        if self.env is not None:
            var = ENV_PREFIX + key.upper().replace(".", "_")
            if var in self.env:
                value = _from_env(self.env[var], kind, key)
            elif var + "_FILE" in self.env:
                try:
                    text = Path(self.env[var + "_FILE"]).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise SettingsError(f"{key}: cannot read {var}_FILE: {exc.strerror}") from None
                value = _from_env(text, kind, key)
        if value is None:
            if required:
                raise SettingsError(f"{key}: required")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise SettingsError(f"{key}: expected {_kind_name(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise SettingsError(f"{key}: expected {_kind_name(kinds)}, got {type(value).__name__} {value!r}")
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.take(name, (str, int, float), required=required)
        if value is None:
            return None
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise SettingsError(f"{self.key(name)}: not a decimal amount: {value!r}") from None
        if not amount.is_finite() or amount < 0:
            raise SettingsError(f"{self.key(name)}: must be a non-negative amount, got {value!r}")
        return amount

    def positive_int(self, name: str, default: int | None = None) -> int | None:
        value = self.take(name, int, default)
        if value is not None and value <= 0:
            raise SettingsError(f"{self.key(name)}: must be a positive integer, got {value!r}")
        return value

    def secret(self, name: str, *, required: bool = False) -> str | None:
        """A secret: only from TOKENTALLY_<KEY> or TOKENTALLY_<KEY>_FILE, never from the file."""
        var = ENV_PREFIX + self.key(name).upper().replace(".", "_")
        if name in self.table:
            raise SettingsError(f"{self.key(name)}: secrets are not read from the settings file; "
                                f"set {var} or {var}_FILE")
        value = _Reader({}, self.path, self.env or {}).take(name, str)
        if value is None and required:
            raise SettingsError(f"{self.key(name)}: required; set {var} or {var}_FILE")
        return value

    def done(self) -> None:
        if self.table:
            names = ", ".join(self.key(k) for k in sorted(self.table))
            raise SettingsError(f"unknown setting(s): {names}")


TableReader = _Reader


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true/false",
             dict: "a table", list: "an array", date: "a date"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _from_env(text: str, kind: type | tuple[type, ...], key: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if bool in kinds:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{key}: expected true/false from the environment, got {text!r}")
    if int in kinds and str not in kinds:
        try:
            return int(text)
        except ValueError:
            raise SettingsError(f"{key}: expected an integer from the environment, got {text!r}") from None
    return text


_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str, key: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise SettingsError(f"{key}: expected a duration like '30s', '5m', '2h' or '1d', got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _parse(raw: dict[str, Any], env: dict[str, str], cfg: Path | None) -> Settings:
    top = _Reader(raw, "", env)
    timezone = top.take("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"timezone: unknown time zone {timezone!r}") from None

    db = _Reader(top.take("database", dict, {}), "database", env)
    database_url = db.take("url", str, "sqlite:///var/tokentally.db")
    db.done()

    ing = _Reader(top.take("ingest", dict, {}), "ingest", env)
    batch_size = ing.positive_int("batch_size", 5000)
    settle = ing.take("settle_seconds", int, 300)
    ing.done()

    log = _Reader(top.take("logging", dict, {}), "logging", env)
    log_level = log.take("level", str, "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"logging.level: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
    log_format = log.take("format", str, "auto")
    if log_format not in ("auto", "text", "json"):
        raise SettingsError(f"logging.format: expected 'auto', 'text' or 'json', got {log_format!r}")
    log.done()

    sources = tuple(_source(item, i, env) for i, item in enumerate(top.take("sources", list, [])))
    names = [s.name for s in sources]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise SettingsError(f"sources: duplicate source name(s): {', '.join(dupes)}")

    pricing = _Reader(top.take("pricing", dict, {}), "pricing", env)
    overrides = tuple(
        _override(item, i) for i, item in enumerate(pricing.take("overrides", list, []))
    )
    pricing.done()

    tiers_raw = top.take("tiers", dict, {})
    tiers = {name: _tier(name, body) for name, body in tiers_raw.items()}
    default_tier = top.take("default_tier", str, None)
    if default_tier is not None and default_tier not in tiers:
        raise SettingsError(f"default_tier: {default_tier!r} is not a tier (tiers: {', '.join(tiers) or 'none'})")

    budgets = _budgets(_Reader(top.take("budgets", dict, {}), "budgets", env))

    summ = _Reader(top.take("summaries", dict, {}), "summaries", env)
    settle_hours = summ.take("settle_hours", int, 48)
    if settle_hours < 0:
        raise SettingsError(f"summaries.settle_hours: must be 0 or more, got {settle_hours}")
    nightly_days = summ.positive_int("nightly_days", 3)
    summ.done()

    sched = _Reader(top.take("schedule", dict, {}), "schedule", env)
    schedule = {}
    for name in list(sched.table):
        entry = sched.take(name, (str, dict))
        if isinstance(entry, dict):  # { schedule = "30 2 * * *", enabled = false }
            job = _Reader(entry, f"schedule.{name}", None)
            expr, enabled = job.take("schedule", str), job.take("enabled", bool, True)
            job.done()
            if not enabled:
                schedule[name] = "off"
            elif expr is not None:
                schedule[name] = expr
        else:
            schedule[name] = entry
    sched.done()

    channels = _channels(top.take("channels", dict, {}), env)
    from worker.settings.routing import parse_alerts, parse_delivery, parse_routes

    routes = parse_routes(top.table.pop("routes", None), channels)
    alerts = parse_alerts(top.take("alerts", dict, None), channels, env)
    delivery = parse_delivery(top.take("notify", dict, None), env)
    reports = _reports(_Reader(top.take("reports", dict, {}), "reports", env), channels)
    from worker.integrity.run import parse_integrity
    from worker.integrity.reconcile import parse_reconcile

    integrity = parse_integrity(top.take("integrity", dict, None), env)
    reconcile = parse_reconcile(top.take("reconcile", dict, None), env)

    top.done()
    return Settings(
        timezone=timezone, database_url=database_url, ingest_batch_size=batch_size,
        ingest_settle_seconds=settle, log_level=log_level, log_format=log_format,
        sources=sources, price_overrides=overrides, default_tier=default_tier, tiers=tiers,
        budgets=budgets,
        schedule=schedule, summaries_settle=timedelta(hours=settle_hours),
        summaries_nightly_days=nightly_days, channels=channels, routes=routes,
        alerts=alerts, delivery=delivery, reports=reports, integrity=integrity, reconcile=reconcile,
        config_path=cfg,
    )


def _channels(raw: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Build every configured channel (each checks its own table); the file channel always exists."""
    from reports.channels import CHANNELS, load_channel

    channels = {}
    for kind, table in raw.items():
        if kind not in CHANNELS:
            raise SettingsError(f"channels.{kind}: no such channel (channels: {', '.join(sorted(CHANNELS))})")
        channels[kind] = load_channel(kind, table, env)
    if "file" not in channels:
        channels["file"] = load_channel("file", {}, env)
    return channels


def _source(item: Any, index: int, env: dict[str, str]) -> SourceSettings:
    r = _Reader(item, f"sources[{index}]", None)
    name = r.take("name", str, required=True)
    r.path = f"sources[{name}]"
    kind = r.take("kind", str, required=True)
    if kind not in SOURCE_KINDS:
        raise SettingsError(f"{r.key('kind')}: expected one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    defaults = r.take("defaults", dict, {})
    for key, value in defaults.items():
        if key not in DEFAULTABLE_FIELDS:
            raise SettingsError(f"{r.key('defaults')}.{key}: unknown field (allowed: {', '.join(DEFAULTABLE_FIELDS)})")
        if not isinstance(value, str) or not value:
            raise SettingsError(f"{r.key('defaults')}.{key}: expected a non-empty string")
    record_type = r.take("record_type", str, "usage")
    if record_type not in RECORD_TYPES:
        raise SettingsError(f"{r.key('record_type')}: expected one of {', '.join(RECORD_TYPES)}, got {record_type!r}")
    every = r.take("expect_every", str)
    common = dict(name=name, kind=kind, defaults=defaults,
                  event_id_namespace=r.take("event_id_namespace", str, ""),
                  enabled=r.take("enabled", bool, True), record_type=record_type,
                  expect_every=parse_duration(every, r.key("expect_every")) if every else None)
    if kind in ("jsonl", "csv"):
        src = SourceSettings(**common, path=r.take("path", str, required=True))
    else:
        url = r.take("url", str)
        url_env = r.take("url_env", str)
        if url_env:
            url = env.get(url_env) or url
            if not url:
                raise SettingsError(f"{r.key('url_env')}: environment variable {url_env} is not set")
        if not url:
            raise SettingsError(f"{r.key('url')}: required for kind = 'table' (or url_env naming an env var)")
        table = r.take("table", str, required=True)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?", table):
            raise SettingsError(f"{r.key('table')}: expected a table name like 'llm_usage_logs' or 'schema.table'")
        overlap_raw = r.take("cursor_overlap", (str, int), 0)
        overlap = parse_duration(overlap_raw, r.key("cursor_overlap")) if isinstance(overlap_raw, str) else overlap_raw
        src = SourceSettings(**common, url=url, table=table,
                             cursor_column=r.take("cursor_column", str, required=True),
                             cursor_overlap=overlap, batch_size=r.positive_int("batch_size"))
    r.done()
    return src


def _override(item: Any, index: int) -> PriceOverride:
    r = _Reader(item, f"pricing.overrides[{index}]", None)
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


def _reports(r: _Reader, channels: dict[str, Any]) -> ReportSettings:
    from worker.settings.routing import parse_targets

    tenants_raw = r.take("tenants", dict, {})
    tenants = {str(tenant): parse_targets(items, channels, f"{r.key('tenants')}.{tenant}")
               for tenant, items in tenants_raw.items()}
    base_url = r.take("base_url", str, None)
    reports = ReportSettings(archive_dir=r.take("archive_dir", str, "var/reports"),
                             top_accounts=r.positive_int("top_accounts", 10),
                             base_url=base_url.rstrip("/") if base_url else None, tenants=tenants)
    r.done()
    return reports


def _budgets(r: _Reader) -> BudgetSettings:
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


def _tier(name: str, body: Any) -> TierSettings:
    r = _Reader(body, f"tiers.{name}", None)
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
