"""/healthz, /readyz and /metrics (Prometheus text, bounded labels, from the database)."""

from __future__ import annotations

import json
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, text

from worker import clock, db
from worker.alerts.state import raise_alert
from worker.limits.killswitch import trip
from worker.models import JobRun, Notification
from tests.helpers import record


def _samples(body: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def test_healthz_and_readyz_answer(web) -> None:
    assert web.client.get("/healthz").json() == {"status": "ok", "detail": None}
    ready = web.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


def test_readyz_is_503_when_the_schema_is_not_current(web) -> None:
    with web.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        ready = web.client.get("/readyz")
        assert ready.status_code == 503 and "tokentally migrate" in ready.json()["detail"]
    finally:
        with web.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": db.head_revision()})


def test_metrics_need_an_admin_or_auditor_token_unless_public(make_web) -> None:
    web = make_web()
    assert web.client.get("/metrics").status_code == 401
    assert web.client.get("/metrics", headers=web.auth("app")).status_code == 403
    assert web.client.get("/metrics", headers=web.auth("tenant:t1")).status_code == 403
    assert web.client.get("/metrics", headers=web.auth("auditor")).status_code == 200
    public = make_web("[web]\nmetrics_public = true\n")
    assert public.client.get("/metrics").status_code == 200


def test_metrics_tell_the_books_health(web) -> None:
    app = web.auth("app")
    at = clock.now() - timedelta(minutes=1)
    body = "".join(json.dumps(r) + "\n" for r in [record(at, event_id="m1", cost="0.25"), record(at, event_id="m2", cost="0.25")])
    web.client.post("/v1/events", content=body + "{}\n", headers=app)
    web.client.post("/v1/events", content=body, headers=app)
    now = clock.now()
    with web.engine.begin() as conn:
        conn.execute(insert(JobRun).values(job="ingest", trigger="schedule", started_at=now - timedelta(seconds=3),
                                           finished_at=now, status="success"))
        conn.execute(insert(JobRun).values(job="budgets", trigger="schedule", started_at=now, finished_at=now,
                                           status="failed", error="boom"))
        conn.execute(insert(Notification).values(
            key="n1", kind="budget.account", channel="file", target="x", status="failed", subject="s",
            body_text="b", data={}, attempts=8, next_attempt_at=now, created_at=now))
        raise_alert(conn, web.settings, kind="budget.account", scope="account", scope_id="a1", period="d",
                    severity="critical")
        trip(conn, now, period="d", by="operator:test", reason="stop")
    shown = web.client.get("/metrics", headers=web.auth("admin"))
    assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/plain; version=")
    samples = _samples(shown.text)
    assert samples[("tokentally_source_events_total", (("source", "api"),))] == 2
    assert samples[("tokentally_source_duplicates_total", (("source", "api"),))] == 2
    assert samples[("tokentally_source_rejects_total", (("source", "api"), ("state", "open")))] == 1
    lag = samples[("tokentally_source_ingest_lag_seconds", (("source", "api"),))]
    assert 50 < lag < 3600
    assert samples[("tokentally_job_last_success_duration_seconds", (("job", "ingest"),))] == 3
    assert samples[("tokentally_job_failures_total", (("job", "budgets"),))] == 1
    assert samples[("tokentally_outbox_notifications", (("state", "failed"),))] == 1
    assert samples[("tokentally_alerts_open", (("kind", "budget.account"), ("severity", "critical")))] == 1
    assert samples[("tokentally_kill_switch", ())] == 1
    assert samples[("tokentally_system_spend_usd", ())] == 0.5
    labels = {name for (_, pairs) in samples for name, _ in pairs}
    assert labels <= {"source", "state", "job", "kind", "severity"}  # never an account or a tenant
