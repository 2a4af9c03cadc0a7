"""Backtests behind ``tokentally bench anomalies`` and ``bench forecast``: figures, never assertions.

``anomalies``: ``history_weeks`` weeks of warm-up and then 30 days of bench traffic
(``worker.anomalies.traffic``: weekly and daily rhythm), with spikes of 3x, 5x and 20x injected on
scopes with meaningful spend (services, and the accounts whose usual weekday peak hour costs at
least a quarter of ``anomalies.min_usd``, so that a 5x spike there clears the floor; a spike on a
$0.10-an-hour account is pennies and stays under the floor by design) at random hours (nights and
weekends included), 1 to 3 hours long. The detector runs every 15 minutes of the 30 days, in
sequence, raising and resolving its alerts as the job does. An alert episode (a scope going from
normal to anomalous) is true when the scope carries a spike's extra requests (the spiked account
or service, its tenant, model, the system...) while that spike lasts or in the hour after; every
other episode is a false alert. A spike is recalled when its own scope's alert is open in that
time (raised then, or still open for an overlapping spike that touches the scope); the delay is
from the spike's start to the first run that finds the scope anomalous in it. ``recall`` counts every spike;
``recall_above_floor`` only the spikes whose extra spend (the injected copies' cost) reaches
``anomalies.min_usd`` in at least one hour, and their delay (``delay_minutes_above_floor_max``) is
counted from the start of the first such hour: before it the spike is pennies by the floor's
definition.

``forecast``: the same traffic without spikes (the steady generator) over a calendar month and
the weeks before; the forecasts at the ends of days 10 and 20 against the month's actual end, per
scope (system, tenants, accounts, services): the absolute error as a fraction.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from sqlalchemy import Engine

from worker.anomalies import detect, forecast as fc
from worker.anomalies.history import Scope, scopes_of
from worker.anomalies.traffic import HOUR, Spike, book, hour_rows, make_accounts, mean_cost, rate
from worker.bench_data import MODELS, SERVICES
from worker.clock import local_day_bounds
from worker.settings import Settings

FACTORS = (3, 5, 20)
SPIKES_PER_FACTOR = (6, 3)  # accounts, services
RUN_EVERY = timedelta(minutes=15)
DAYS = 30
BATCH = 20_000


def _keys(row: dict[str, Any]) -> dict[str, str]:
    return {"tenant": row["tenant_id"], "service": row["service"], "model": row["model_used"],
            "account": row["account_id"]}


def generate(engine: Engine, accounts: list[Any], start: datetime, end: datetime, settings: Settings,
             spikes: list[Spike], seed: int, say: Callable[[str], None]) -> Generated:
    """Book the traffic of [start, end): its events, the scopes each spike's extra rows count for,
    the scopes seen and each spike's extra spend per hour."""
    rng = random.Random(seed * 7919 + 1)
    out = Generated(0, {s: set() for s in spikes}, set(), {s: {} for s in spikes})
    pending: list[dict[str, Any]] = []
    hour = start
    while hour < end:
        rows, extra = hour_rows(rng, accounts, hour, settings.tz, spikes, prefix=f"s{seed}")
        for spike, row in extra:
            out.touched[spike].update(scopes_of(_keys(row)))
            out.extra_cost[spike][hour] = out.extra_cost[spike].get(hour, Decimal(0)) + row["cost_usd"]
        if rows and not out.seen.issuperset(scopes_of(_keys(rows[0]))):
            for row in rows:
                out.seen.update(scopes_of(_keys(row)))
        pending.extend(rows)
        out.events += len(rows)
        if len(pending) >= BATCH:
            with engine.begin() as conn:
                book(conn, pending)
            pending = []
        hour += HOUR
    with engine.begin() as conn:
        book(conn, pending)
    say(f"booked {out.events:,} events")
    return out


@dataclass
class Generated:
    events: int
    touched: dict[Spike, set[Scope]]  # the scopes each spike's extra rows count for
    seen: set[Scope]
    extra_cost: dict[Spike, dict[datetime, Decimal]]  # each spike's injected cost per UTC hour

    def visible(self, spike: Spike, floor: Decimal) -> datetime | None:
        """The first hour the spike's extra spend reaches the floor (None: never, it is pennies)."""
        return min((h for h, c in self.extra_cost[spike].items() if c >= floor), default=None)

    def peak(self, spike: Spike) -> Decimal:
        return max(self.extra_cost[spike].values(), default=Decimal(0))


@dataclass
class AnomalyBenchResult:
    dialect: str
    seed: int
    events: int
    days: int
    scopes: int
    recall: dict[str, float]
    recall_above_floor: dict[str, float | None]  # of the spikes whose extra spend reaches anomalies.min_usd
    spikes_above_floor: dict[str, int]
    false_alerts: int
    false_alerts_per_1000_scope_days: float
    delay_minutes: float  # mean, over the recalled spikes, from their start
    delay_minutes_max: float
    delay_minutes_by_factor: dict[str, float]
    delay_minutes_above_floor_max: float  # from the first hour the extra spend reaches the floor
    spikes: int
    missed: list[dict[str, Any]] = field(default_factory=list)
    false: list[dict[str, Any]] = field(default_factory=list)  # each false alert: what was judged unusual
    k: float = 0.0
    min_usd: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


def meaningful(accounts: list[Any], tz: Any, floor: Decimal) -> list[str]:
    """The accounts whose usual weekday peak hour costs at least a quarter of the floor (a 5x spike
    there adds the floor), by the rate and the mean cost of a call to their usual model."""
    peak = datetime(2026, 11, 2, 11).replace(tzinfo=tz)  # a Monday, mid-morning, local
    chosen = [a.account_id for a in accounts if Decimal(str(rate(a, peak, tz) * mean_cost(MODELS[a.model][1])))
              >= floor / 4]
    return chosen or [max(accounts, key=lambda a: rate(a, peak, tz) * mean_cost(MODELS[a.model][1])).account_id]


def run_anomalies(settings: Settings, engine: Engine, seed: int, n_accounts: int,
                  say: Callable[[str], None]) -> AnomalyBenchResult:
    began = time.perf_counter()
    rng = random.Random(seed)
    tz = settings.tz
    accounts = make_accounts(rng, n_accounts)
    month_start = local_day_bounds(datetime(2026, 11, 2).date(), tz)[0]  # a Monday
    month_end = month_start + timedelta(days=DAYS)
    warm = month_start - timedelta(weeks=settings.anomalies.history_weeks)
    targets = meaningful(accounts, tz, settings.anomalies.min_usd)
    spikes = []
    for factor in FACTORS:
        for kind, count in zip(("account", "service"), SPIKES_PER_FACTOR):
            for _ in range(count):
                name = rng.choice(targets) if kind == "account" else rng.choice(SERVICES)
                start = month_start + HOUR * rng.randrange(DAYS * 24 - 4)
                spikes.append(Spike(kind, name, start, rng.randint(1, 3), factor))
    say(f"generating {settings.anomalies.history_weeks} weeks + {DAYS} days of traffic, {len(spikes)} spikes "
        f"({len(targets)} accounts of meaningful spend)")
    made = generate(engine, accounts, warm, month_end, settings, spikes, seed, say)
    say(f"running the detector every {RUN_EVERY} over {DAYS} days")
    episodes: list[tuple[Scope, datetime]] = []
    details: dict[tuple[Scope, datetime], detect.Anomaly] = {}
    alerted: dict[Scope, list[datetime]] = {}  # the runs that found each scope anomalous
    open_now: set[Scope] = set()
    at = month_start + RUN_EVERY
    while at <= month_end:
        with engine.begin() as conn:
            found = detect.find(conn, settings, at)
            detect.apply(conn, settings, at, found)
        now_open = {a.scope for a in found}
        episodes.extend((scope, at) for scope in now_open - open_now)
        details.update({(a.scope, at): a for a in found if a.scope not in open_now})
        for scope in now_open:
            alerted.setdefault(scope, []).append(at)
        open_now = now_open
        at += RUN_EVERY
    return _score(settings, engine, seed, made, spikes, episodes, details, alerted, began)


def _score(settings: Settings, engine: Engine, seed: int, made: Generated, spikes: list[Spike],
           episodes: list[tuple[Scope, datetime]], details: dict[tuple[Scope, datetime], detect.Anomaly],
           alerted: dict[Scope, list[datetime]], began: float) -> AnomalyBenchResult:
    def window(s: Spike) -> tuple[datetime, datetime]:
        return s.start, s.start + HOUR * (s.hours + 1)

    floor = settings.anomalies.min_usd
    false = [(scope, at) for scope, at in episodes
             if not any(scope in made.touched[s] and window(s)[0] < at <= window(s)[1] for s in spikes)]
    caught: dict[int, list[float]] = {f: [] for f in FACTORS}
    above = {f: [0, 0] for f in FACTORS}  # (spikes over the floor, of them caught)
    visible_delays: list[float] = []
    missed = []
    for s in spikes:
        lo, hi = window(s)
        # the scope's alert open in the spike's time (raised then, or already open for an overlapping spike)
        hits = [at for at in alerted.get((s.kind, s.name), []) if lo < at <= hi]
        visible = made.visible(s, floor)
        if visible is not None:
            above[s.factor][0] += 1
            above[s.factor][1] += bool(hits)
            if hits:
                visible_delays.append(max(0.0, (min(hits) - visible) / timedelta(minutes=1)))
        if hits:
            caught[s.factor].append((min(hits) - s.start) / timedelta(minutes=1))
        else:
            missed.append({"scope": f"{s.kind}:{s.name}", "factor": s.factor, "start": s.start.isoformat(),
                           "hours": s.hours, "above_floor": visible is not None,
                           "peak_extra_usd": str(made.peak(s).quantize(Decimal("0.01")))})
    total = {f: sum(1 for s in spikes if s.factor == f) for f in FACTORS}
    delays = [d for f in FACTORS for d in caught[f]]
    scope_days = len(made.seen) * DAYS
    return AnomalyBenchResult(
        dialect=engine.dialect.name, seed=seed, events=made.events, days=DAYS, scopes=len(made.seen),
        recall={f"{f}x": round(len(caught[f]) / total[f], 3) for f in FACTORS},
        recall_above_floor={f"{f}x": round(above[f][1] / above[f][0], 3) if above[f][0] else None for f in FACTORS},
        spikes_above_floor={f"{f}x": above[f][0] for f in FACTORS}, false_alerts=len(false),
        false_alerts_per_1000_scope_days=1000 * len(false) / scope_days,
        delay_minutes=statistics.mean(delays) if delays else 0.0, delay_minutes_max=max(delays, default=0.0),
        delay_minutes_by_factor={f"{f}x": round(max(caught[f], default=0.0), 1) for f in FACTORS},
        delay_minutes_above_floor_max=max(visible_delays, default=0.0),
        spikes=len(spikes), missed=missed, false=[_false(scope, at, details[(scope, at)]) for scope, at in false],
        k=settings.anomalies.k, min_usd=str(floor),
        seconds=time.perf_counter() - began)


def _false(scope: Scope, at: datetime, a: detect.Anomaly) -> dict[str, Any]:
    usual = a.usual_cost
    return {"scope": f"{scope[0]}:{scope[1]}" if scope[1] else scope[0], "at": at.isoformat(),
            "hour": a.hour.isoformat(), "partial": a.partial, "measures": a.measures,
            "cost_usd": str(a.cost.quantize(Decimal("0.01"))), "requests": a.requests,
            "usual_usd": str(usual.median.quantize(Decimal("0.01"))) if usual else None,
            "high_usd": str(usual.high.quantize(Decimal("0.01"))) if usual else None}


@dataclass
class ForecastBenchResult:
    dialect: str
    seed: int
    events: int
    month: str
    error: dict[str, dict[str, float]]  # "day10" / "day20" -> system, and the median / max of each kind
    in_range: dict[str, float]  # the share of scopes whose actual month end is within the range
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


def run_forecast(settings: Settings, engine: Engine, seed: int, n_accounts: int,
                 say: Callable[[str], None]) -> ForecastBenchResult:
    began = time.perf_counter()
    tz = settings.tz
    weeks = settings.anomalies.history_weeks
    accounts = make_accounts(random.Random(seed), n_accounts)
    start, end = fc.month_bounds(datetime(2026, 11, 1).date(), tz)
    say(f"generating {weeks} weeks + November 2026 of steady traffic")
    events = generate(engine, accounts, start - timedelta(weeks=weeks), end, settings, [], seed, say).events
    with engine.connect() as conn:
        last = end - timedelta(microseconds=1)  # the month so far at its very end: the actual
        actual = {f.scope: f.so_far for f in fc.forecasts(conn, tz, weeks, last)}
        error: dict[str, dict[str, float]] = {}
        in_range: dict[str, float] = {}
        for day in (10, 20):
            as_of = local_day_bounds(datetime(2026, 11, day).date(), tz)[1]
            found = [f for f in fc.forecasts(conn, tz, weeks, as_of) if actual.get(f.scope)]
            errs: dict[str, list[float]] = {}
            for f in found:
                errs.setdefault(f.scope[0], []).append(float(abs(f.forecast - actual[f.scope]) / actual[f.scope]))
            error[f"day{day}"] = {"system": round(errs["system"][0], 4), **{
                f"{kind}_{stat}": round(fn(values), 4) for kind, values in errs.items() if kind != "system"
                for stat, fn in (("median", statistics.median), ("max", max))}}
            inside = [f.low <= actual[f.scope] <= f.high for f in found]
            in_range[f"day{day}"] = round(sum(inside) / len(inside), 3)
    return ForecastBenchResult(engine.dialect.name, seed, events, "2026-11", error, in_range,
                               time.perf_counter() - began)
