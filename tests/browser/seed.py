"""What the browser tests put in the books, through the real paths (ingest, integrity, alerts, archive)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from reports.archive import archive
from reports.periods import period_containing
from tests.helpers import ingest, record
from worker import clock
from worker.alerts.state import raise_alert
from worker.ingest.ingestor import Ingestor
from worker.registry import registry
from worker.scheduler import run_job
from worker.settings import Settings


def usage(settings: Settings, engine: Engine, tmp_path: Path, days: int = 30) -> None:
    """A month of calls: two tenants, a few accounts, two models; today's too."""
    now = clock.now()
    rows = []
    for d in range(days):
        at = now - timedelta(days=d, minutes=5)
        for i, (account, tenant) in enumerate((("alice", "acme"), ("bob", "acme"), ("carol", "globex"))):
            rows.append(record(at - timedelta(minutes=i), account=account, tenant=tenant,
                               model="house-llm" if i % 2 == 0 else "house-mini",
                               prompt=2000 + 150 * ((d * 7 + i) % 11), completion=400 + 40 * (d % 5)))
    ingest(settings, engine, tmp_path, rows)
    run("summaries", settings, engine)


def run(job: str, settings: Settings, engine: Engine) -> Any:
    result = run_job(registry.get(job), settings, engine, trigger="manual")
    assert result is not None and result.status == "success", (result.status, result.error) if result else None
    return result


def attempt(settings: Settings, engine: Engine, tmp_path: Path, attempt_id: str, minutes_ago: int = 60) -> None:
    """An app's call attempt that started ``minutes_ago``, without its usage event."""
    at = clock.now() - timedelta(minutes=minutes_ago)
    path = tmp_path / f"attempt-{attempt_id}.jsonl"
    path.write_bytes(orjson.dumps({"record_type": "attempt", "attempt_id": attempt_id, "started_at": at.isoformat(),
                                   "user_id": "alice", "tenant_id": "acme", "service": "chat",
                                   "model": "house-llm", "estimated_tokens": 1500}) + b"\n")
    Ingestor(settings, engine).ingest_paths([path])


def logged(settings: Settings, engine: Engine, tmp_path: Path, attempt_id: str, minutes_ago: int = 60) -> None:
    """The usage event of that attempt, arriving late."""
    at = clock.now() - timedelta(minutes=minutes_ago)
    ingest(settings, engine, tmp_path, [record(at, account="alice", tenant="acme", event_id=attempt_id)])


def budget_alert(settings: Settings, engine: Engine, account: str = "alice") -> None:
    day = clock.now().astimezone(settings.tz).date().isoformat()
    with engine.begin() as conn:
        raise_alert(conn, settings, kind="budget.system", scope="system", period=day, severity="warning",
                    payload={"cost_usd": "12.5", "threshold_usd": "10", "threshold_severity": "warning", "day": day,
                             "thresholds": {"warning": "10"}, "kill_switch": False,
                             "kill_switch_tripped_now": False})


def report(settings: Settings, engine: Engine, tenant: str | None = None) -> Any:
    """Yesterday's daily report, archived (for the organisation or one tenant)."""
    yesterday = clock.now().astimezone(settings.tz).date() - timedelta(days=1)
    return archive(engine, settings, period_containing("daily", yesterday), tenant=tenant).row


def rejects(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    """Two lines that cannot be usage records: a timestamp that is not one, and markup."""
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"request_id": "r-9", "timestamp": "yesterday-ish", "user_id": "alice", "model": "house-llm", '
                     b'"prompt_tokens": 10}\n<script>alert("not a record")</script>\n')
    Ingestor(settings, engine).ingest_paths([path])


def everything(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    """A console with something on every page."""
    usage(settings, engine, tmp_path)
    for job in ("limits", "budgets"):
        run(job, settings, engine)
    attempt(settings, engine, tmp_path, "call-without-event")
    rejects(settings, engine, tmp_path)
    run("integrity", settings, engine)
    budget_alert(settings, engine)
    report(settings, engine)
    report(settings, engine, tenant="acme")
