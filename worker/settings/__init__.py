"""Settings: settings.toml plus TOKENTALLY_* environment overrides, as typed, frozen sections.

This package is the ground floor: it imports nothing of tokentally above it. Each
section family has its module (``sources``, ``pricing``, ``limits``, ``reports``,
``routing``, ``channels``, ``integrity``, ``reconcile``, ``anomalies``) and every table is read
through :class:`~worker.settings.reader.Reader`, so loading fails loudly in one
way: an unknown key, a wrong type or a bad value raises :class:`SettingsError`
naming the key (the CLI turns it into exit code 2).

Every scalar key can be overridden by an environment variable named after its
path: ``database.url`` -> ``TOKENTALLY_DATABASE_URL``, ``timezone`` ->
``TOKENTALLY_TIMEZONE``, ``ingest.batch_size`` -> ``TOKENTALLY_INGEST_BATCH_SIZE``.
``<NAME>_FILE`` names a file whose content is the value (for secrets). Arrays
of tables (``[[sources]]``, ``[[pricing.overrides]]``) come only from the file.

:func:`load` reads every section; :func:`load_gate` only what an application's
gate needs (the database, the time zone, tiers and budgets), so an app that asks
the gate never needs the worker's SMTP password, Slack token or provider keys.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from worker.settings.anomalies import AnomalySettings, parse_anomalies
from worker.settings.channels import PARSERS as CHANNEL_PARSERS, ChannelSettings, parse_channel, parse_channels
from worker.settings.daemon import DaemonSettings, parse_daemon
from worker.settings.integrity import IntegritySettings, parse_integrity
from worker.settings.limits import BudgetSettings, TierSettings, parse_budgets, parse_tier
from worker.settings.pricing import PriceOverride, fingerprint as pricing_fingerprint, parse_override
from worker.settings.reader import ENV_PREFIX, Env, Reader, SettingsError, duration, parse_duration
from worker.settings.reconcile import PROVIDER_NAMES, ReconcileSettings, parse_reconcile
from worker.settings.reports import ReportSettings, parse_reports
from worker.settings.scopes import ScopeBudget, split_budgets
from worker.settings.routing import (DEFAULT_ROUTES, AlertSettings, DeliverySettings, Route, parse_alerts,
                                     parse_delivery, parse_routes)
from worker.settings.sources import SourceSettings, parse_source
from worker.settings.web import WebSettings, parse_web

__all__ = ["Settings", "SettingsError", "SourceSettings", "TierSettings", "BudgetSettings", "PriceOverride",
           "ReportSettings", "WebSettings", "IntegritySettings", "DaemonSettings", "AnomalySettings",
           "ReconcileSettings", "AlertSettings", "DeliverySettings", "Route", "ScopeBudget",
           "load", "load_gate", "config_path", "parse_duration", "ENV_PREFIX"]

DEFAULT_CONFIG = "settings.toml"
GATE_SECTIONS = frozenset({"timezone", "database", "tiers", "default_tier", "budgets"})
CHANNEL_KINDS = tuple(CHANNEL_PARSERS)
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "postgres")
# TOKENTALLY_* variables that are not settings keys: the settings file's path, and the
# test suite's PostgreSQL server (tests start workers with the suite's environment).
MAX_FUTURE = timedelta(days=36_500)  # ingest.max_future's bound: 100 years
MAX_RECORD_BYTES = 1 << 20  # ingest.max_record_bytes: 1 MiB
# at least the KiB an oversized record keeps; at most what parses whole (about 5x its size) within 256 MB of RSS
RECORD_BYTES_RANGE = (1 << 10, 16 << 20)
BATCH_BYTES = 16 << 20  # ingest.batch_bytes: 16 MiB
NOT_SETTINGS = frozenset({ENV_PREFIX + "CONFIG", ENV_PREFIX + "TEST_PG"})


@dataclass(frozen=True)
class Settings:
    timezone: str = "UTC"
    database_url: str = "sqlite:///var/tokentally.db"
    ingest_batch_size: int = 5000
    ingest_settle_seconds: int = 300
    ingest_lease_seconds: int = 600  # a file's lease: replicas read different files (worker.ingest.leases)
    ingest_max_future: timedelta = timedelta(days=1)  # a record dated later than now + this is quarantined
    ingest_max_record_bytes: int = MAX_RECORD_BYTES  # a longer record is quarantined, never read whole
    ingest_batch_bytes: int = BATCH_BYTES  # a batch also commits once its records' bytes reach this
    log_level: str = "INFO"
    log_format: str = "auto"
    log_libraries: str = "WARNING"  # the third-party loggers' level (worker.logs.LIBRARIES)
    sources: tuple[SourceSettings, ...] = ()
    price_overrides: tuple[PriceOverride, ...] = ()
    default_tier: str | None = None
    tiers: dict[str, TierSettings] = field(default_factory=dict)
    budgets: BudgetSettings = field(default_factory=BudgetSettings)
    # scope -> its [budgets."<scope>"] table (``tokentally budgets set`` stores more, in the database)
    scope_budgets: dict[str, ScopeBudget] = field(default_factory=dict)
    reports: ReportSettings = field(default_factory=ReportSettings)
    schedule: dict[str, str] = field(default_factory=dict)
    summaries_settle: timedelta = timedelta(hours=48)
    summaries_nightly_days: int = 3
    retention_ledger_months: int = 0  # 0: the ledger keeps every month
    retention_months_ahead: int = 2  # PostgreSQL partitions made ahead of the current month
    # kind -> its [channels.<kind>] section (reports.channels builds the channel); "file" is always there
    channels: dict[str, ChannelSettings] = field(default_factory=dict, repr=False, compare=False)
    routes: tuple[Route, ...] = DEFAULT_ROUTES
    alerts: AlertSettings = field(default_factory=AlertSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    integrity: IntegritySettings = field(default_factory=IntegritySettings)
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    web: WebSettings = field(default_factory=WebSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    anomalies: AnomalySettings = field(default_factory=AnomalySettings)
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
        return pricing_fingerprint(self.price_overrides)


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
    """Every section, checked: what the worker and the CLI run on."""
    checked = Env(dict(os.environ if env is None else env))
    cfg = config_path(path)
    raw = _read(cfg)
    settings = _parse(raw, checked, cfg)
    _look_up_unconfigured(raw, checked)
    if unknown := checked.unknown(NOT_SETTINGS):
        raise SettingsError(f"unknown setting(s) in the environment: {', '.join(unknown)} "
                            f"(a TOKENTALLY_* variable is named after a settings key, e.g. TOKENTALLY_INGEST_BATCH_SIZE)")
    return settings


def _look_up_unconfigured(raw: dict[str, Any], env: Env) -> None:
    """The variables a channel or provider would read if its table were there count as settings
    too (set in the environment for a table the file leaves out, they are not typos)."""
    for kind in CHANNEL_KINDS:
        if kind not in raw.get("channels", {}) and any(k.startswith(f"{ENV_PREFIX}CHANNELS_{kind.upper()}_")
                                                       for k in env):
            try:
                parse_channel(kind, {}, env)
            except SettingsError:
                pass  # only the names it looked for matter here
    for name in PROVIDER_NAMES:
        env.seen.update({f"{ENV_PREFIX}RECONCILE_{name.upper()}_API_KEY",
                         f"{ENV_PREFIX}RECONCILE_{name.upper()}_API_KEY_FILE"})
    for item in raw.get("sources", []):  # a table source's url_env names a variable of the user's choosing
        if isinstance(item, dict) and isinstance(item.get("url_env"), str):
            env.seen.add(item["url_env"])


def _read(cfg: Path | None) -> dict[str, Any]:
    if cfg is None:
        return {}
    if not cfg.exists():
        raise SettingsError(f"config file {cfg} does not exist")
    try:
        return tomllib.loads(cfg.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{cfg}: invalid TOML: {exc}") from None




def load_gate(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Only the sections the gate reads (``GATE_SECTIONS``), checked as :func:`load` checks them;
    every other table is left for the worker to check, and its secrets are never asked for."""
    env = dict(os.environ if env is None else env)
    cfg = config_path(path)
    raw = _read(cfg)
    return _parse({k: v for k, v in raw.items() if k in GATE_SECTIONS}, env, cfg)


def _parse(raw: dict[str, Any], env: dict[str, str], cfg: Path | None) -> Settings:
    top = Reader(raw, "", env)
    timezone = top.take("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"timezone: unknown time zone {timezone!r}") from None

    db = Reader(top.take("database", dict, {}), "database", env)
    database_url = db.take("url", str, "sqlite:///var/tokentally.db")
    db.done()
    scheme = database_url.partition(":")[0].lower() if ":" in database_url else ""
    if scheme not in DATABASE_SCHEMES:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        raise SettingsError(f"database.url: expected sqlite:///PATH or postgresql://USER@HOST/DB, got {shown} "
                            f"(the URL itself is not shown: it may hold a password)")

    ing = Reader(top.take("ingest", dict, {}), "ingest", env)
    batch_size = ing.positive_int("batch_size", 5000, maximum=1_000_000)
    settle = ing.bounded_int("settle_seconds", 300, maximum=7 * 86400)
    lease_seconds = ing.bounded_int("lease_seconds", 600, minimum=10, maximum=86400)
    max_future = duration(ing, "max_future", timedelta(days=1))
    if max_future > MAX_FUTURE:  # now + it must stay a datetime (and the check mean something)
        raise SettingsError(f"ingest.max_future: at most {MAX_FUTURE.days}d, got {max_future.days}d")
    max_record_bytes = ing.bounded_int("max_record_bytes", MAX_RECORD_BYTES, minimum=RECORD_BYTES_RANGE[0],
                                       maximum=RECORD_BYTES_RANGE[1])
    batch_bytes = ing.positive_int("batch_bytes", BATCH_BYTES, maximum=1 << 30)
    ing.done()

    log = Reader(top.take("logging", dict, {}), "logging", env)
    log_level = log.take("level", str, "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"logging.level: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
    log_format = log.take("format", str, "auto")
    if log_format not in ("auto", "text", "json"):
        raise SettingsError(f"logging.format: expected 'auto', 'text' or 'json', got {log_format!r}")
    log_libraries = log.take("libraries", str, "WARNING").upper()
    if log_libraries not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"logging.libraries: expected DEBUG, INFO, WARNING or ERROR, got {log_libraries!r}")
    log.done()

    sources = tuple(parse_source(item, i, env) for i, item in enumerate(top.take("sources", list, [])))
    names = [s.name for s in sources]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise SettingsError(f"sources: duplicate source name(s): {', '.join(dupes)}")

    pricing = Reader(top.take("pricing", dict, {}), "pricing", env)
    overrides = tuple(
        parse_override(item, i) for i, item in enumerate(pricing.take("overrides", list, []))
    )
    pricing.done()

    tiers_raw = top.take("tiers", dict, {})
    tiers = {name: parse_tier(name, body) for name, body in tiers_raw.items()}
    default_tier = top.take("default_tier", str, None)
    if default_tier is not None and default_tier not in tiers:
        raise SettingsError(f"default_tier: {default_tier!r} is not a tier (tiers: {', '.join(tiers) or 'none'})")

    system_budgets, scope_budgets = split_budgets(top.take("budgets", dict, {}))
    budgets = parse_budgets(Reader(system_budgets, "budgets", env))

    summ = Reader(top.take("summaries", dict, {}), "summaries", env)
    settle_hours = summ.bounded_int("settle_hours", 48, maximum=24 * 366)
    nightly_days = summ.positive_int("nightly_days", 3)
    summ.done()

    keep = Reader(top.take("retention", dict, {}), "retention", env)
    ledger_months = keep.bounded_int("ledger_months", 0, minimum=0, maximum=1200)
    months_ahead = keep.bounded_int("months_ahead", 2, minimum=1, maximum=24)
    keep.done()

    sched = Reader(top.take("schedule", dict, {}), "schedule", env)
    schedule = {}
    for name in list(sched.table):
        entry = sched.take(name, (str, dict))
        if isinstance(entry, dict):  # { schedule = "30 2 * * *", enabled = false }
            job = Reader(entry, f"schedule.{name}", None)
            expr, enabled = job.take("schedule", str), job.take("enabled", bool, True)
            job.done()
            if not enabled:
                schedule[name] = "off"
            elif expr is not None:
                schedule[name] = expr
        else:
            schedule[name] = entry
    sched.done()

    channels = parse_channels(top.take("channels", dict, {}), env)
    routes = parse_routes(top.table.pop("routes", None), channels)
    alerts = parse_alerts(top.take("alerts", dict, None), channels, env)
    delivery = parse_delivery(top.take("notify", dict, None), env)
    reports = parse_reports(Reader(top.take("reports", dict, {}), "reports", env), channels)
    integrity = parse_integrity(top.take("integrity", dict, None), env)
    reconcile = parse_reconcile(top.take("reconcile", dict, None), env)
    web = parse_web(top.take("web", dict, None), env)
    daemon = parse_daemon(top.take("daemon", dict, None), env)
    anomalies = parse_anomalies(top.take("anomalies", dict, None), env)

    top.done()
    return Settings(
        timezone=timezone, database_url=database_url, ingest_batch_size=batch_size,
        ingest_settle_seconds=settle, ingest_lease_seconds=lease_seconds, ingest_max_future=max_future,
        ingest_max_record_bytes=max_record_bytes, ingest_batch_bytes=batch_bytes,
        log_level=log_level, log_format=log_format, log_libraries=log_libraries,
        sources=sources, price_overrides=overrides, default_tier=default_tier, tiers=tiers,
        budgets=budgets, scope_budgets=scope_budgets,
        schedule=schedule, summaries_settle=timedelta(hours=settle_hours),
        summaries_nightly_days=nightly_days, retention_ledger_months=ledger_months,
        retention_months_ahead=months_ahead, channels=channels, routes=routes,
        alerts=alerts, delivery=delivery, reports=reports, integrity=integrity, reconcile=reconcile,
        web=web, daemon=daemon, anomalies=anomalies, config_path=cfg,
    )


