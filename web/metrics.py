"""``GET /metrics``: the books' health in Prometheus text, computed from the database at each scrape.

A custom collector runs a handful of aggregate queries per scrape (nothing is kept in the
process, so every replica and ``tokentally web`` answer alike). Labels are bounded: sources
(configured, plus ``api`` and ``cli``), job ids, notification states, alert kinds and
severities. Never an account, a tenant or a path.

Who may scrape: an admin or auditor token (``Authorization: Bearer``; Prometheus'
``authorization`` setting), or anyone when ``[web] metrics_public = true``.
"""

from __future__ import annotations

import logging
from typing import Iterator

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from worker import clock
from worker.limits.budgets import system_cost
from worker.limits.killswitch import kill_switch
from worker.models import Alert, IngestReject, JobRun, Notification, SourceStatus
from worker.settings import Settings
from web.auth import Principal
from web.deps import optional_principal

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


class BooksCollector(Collector):
    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        now = clock.now()
        with self.engine.connect() as conn:
            sources = conn.execute(select(SourceStatus)).all()
            rejects = conn.execute(select(IngestReject.source, IngestReject.status, func.count())
                                   .group_by(IngestReject.source, IngestReject.status)).all()
            last_ok = conn.execute(select(JobRun.job, func.max(JobRun.id)).where(JobRun.status == "success")
                                   .group_by(JobRun.job)).all()
            ok_runs = {r.job: r for r in conn.execute(select(JobRun).where(JobRun.id.in_([i for _, i in last_ok])))}
            failures = conn.execute(select(JobRun.job, func.count()).where(JobRun.status == "failed")
                                    .group_by(JobRun.job)).all()
            outbox = dict(conn.execute(select(Notification.status, func.count()).group_by(Notification.status)).all())
            alerts = conn.execute(select(Alert.kind, Alert.severity, func.count()).where(Alert.state != "resolved")
                                  .group_by(Alert.kind, Alert.severity)).all()
            _, spend = system_cost(conn, self.settings, now)
            switch = kill_switch(conn) is not None

        events = CounterMetricFamily("tokentally_source_events", "Usage events booked, per source", labels=["source"])
        dups = CounterMetricFamily("tokentally_source_duplicates", "Records received again and not booked twice",
                                   labels=["source"])
        lag = GaugeMetricFamily("tokentally_source_ingest_lag_seconds",
                                "Seconds since the source's newest booked event happened", labels=["source"])
        synced = GaugeMetricFamily("tokentally_source_last_ingest_timestamp_seconds",
                                   "When the source last delivered new events (Unix time)", labels=["source"])
        for s in sources:
            events.add_metric([s.source], s.events)
            dups.add_metric([s.source], s.duplicates)
            lag.add_metric([s.source], max((now - s.newest_event_at).total_seconds(), 0.0))
            synced.add_metric([s.source], s.last_ingest_at.timestamp())
        yield from (events, dups, lag, synced)

        rejected = CounterMetricFamily("tokentally_source_rejects", "Records quarantined, per source and state",
                                       labels=["source", "state"])
        for source, state, count in rejects:
            rejected.add_metric([source, state], count)
        yield rejected

        success = GaugeMetricFamily("tokentally_job_last_success_timestamp_seconds",
                                    "When the job last finished successfully (Unix time)", labels=["job"])
        duration = GaugeMetricFamily("tokentally_job_last_success_duration_seconds",
                                     "How long the job's last successful run took", labels=["job"])
        for job, run in sorted(ok_runs.items()):
            if run.finished_at is not None:
                success.add_metric([job], run.finished_at.timestamp())
                duration.add_metric([job], (run.finished_at - run.started_at).total_seconds())
        failed = CounterMetricFamily("tokentally_job_failures", "Failed runs of the job", labels=["job"])
        for job, count in failures:
            failed.add_metric([job], count)
        yield from (success, duration, failed)

        notes = GaugeMetricFamily("tokentally_outbox_notifications", "Notifications in the outbox, by state",
                                  labels=["state"])
        for state in ("pending", "sending", "failed"):
            notes.add_metric([state], outbox.get(state, 0))
        yield notes

        open_alerts = GaugeMetricFamily("tokentally_alerts_open", "Open or acknowledged alerts",
                                        labels=["kind", "severity"])
        for kind, severity, count in alerts:
            open_alerts.add_metric([kind, severity], count)
        yield open_alerts

        yield GaugeMetricFamily("tokentally_system_spend_usd", "Today's system-wide cost so far (local day), USD",
                                value=float(spend))
        yield GaugeMetricFamily("tokentally_kill_switch", "1 while the kill switch is on", value=int(switch))


def metrics_registry(settings: Settings, engine: Engine) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BooksCollector(settings, engine))
    return registry


def scraper(request: Request) -> Principal | None:
    if request.app.state.settings.web.metrics_public:
        return None
    principal = optional_principal(request)
    if principal is None:
        raise HTTPException(401, "an admin or auditor token is needed for /metrics", headers={"WWW-Authenticate": "Bearer"})
    if principal.scope not in ("admin", "auditor"):
        raise HTTPException(403, f"a {principal.scope} token cannot read /metrics")
    return principal


@router.get("/metrics")
def metrics(request: Request, _: Principal | None = Depends(scraper)) -> Response:
    registry = getattr(request.app.state, "metrics", None)
    if registry is None:
        registry = request.app.state.metrics = metrics_registry(request.app.state.settings, request.app.state.engine)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
